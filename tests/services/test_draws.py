"""The draw use cases called directly: ``draw_winners``, ``reroll``, ``draw_document`` and the
chain check, with Telegram mocked for the winners' re-check (``peers``)."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import func, select, text, update

from extensions import db
from models import DrawRecord, GiveawayState, Participant
from services import draws, registration
from services.errors import (
    AlreadyDrawnDifferently,
    DrawNotFound,
    IdempotencyKeyReused,
    NotAWinner,
    NotDrawn,
    SubscriptionCheckUnavailable,
)
from services.transaction import read_only
from tests.conftest import DRAND_CHAIN
from tests.factories import ForeseenDraw, add_entries, complete_captcha
from utils import draw as algorithm

USERS = [1_000_000_000 + i for i in range(1, 21)]


def draw(count: int = 3, giveaway_id: int = 1) -> draws.DrawOutcome:
    return draws.draw_winners(giveaway_id=giveaway_id, winner_count=count)


def reroll(key: str = "k1", **request) -> draws.DrawOutcome:
    return draws.reroll(giveaway_id=1, reason="winner unreachable", idempotency_key=key, **request)


def user_ids(winners: list[draws.Winner]) -> list[int]:
    return [winner.user_id for winner in winners]


def record_count() -> int:
    with read_only() as session:
        return session.scalar(select(func.count()).select_from(DrawRecord))


def test_zero_entrants_is_a_draw_with_no_winners_and_everything_unclaimed(app, peers):
    peers.standard()
    with app.app_context():
        draws.commit_to_seed(1)
        outcome = draw(3)
        assert outcome.current_winners == [] and outcome.total_participants == 0
        assert outcome.record["unclaimed_count"] == 3
        assert draws.draw_document(1)["drawn"] is True


def test_the_draw_reveals_the_committed_seed_and_its_winners_follow_from_it(app, peers):
    peers.standard()
    add_entries(app, 1, USERS)
    with app.app_context():
        before = draws.draw_document(1)
        assert before["drawn"] is False and before["entries_closed"] is False
        assert before["entrant_count"] == len(USERS)
        outcome = draw(4)
        record = outcome.record
        assert hashlib.sha256(bytes.fromhex(record["seed"])).hexdigest() == before["commitment"]
        expected, _ = algorithm.select_winners(
            algorithm.draw_seed(record), sorted(USERS), 4, version=2
        )
        assert user_ids(outcome.current_winners) == expected
        assert [winner.position for winner in outcome.current_winners] == [1, 2, 3, 4]
        assert algorithm.verify_record(record, sorted(USERS)) == []
        after = draws.draw_document(1)
        # The round the close fixed, published before the draw, is the one the record used.
        assert record["beacon"]["round"] == after["entrant_commitment"]["beacon_round"]
        assert record["entrant_root"] == after["entrant_commitment"]["entrant_root"]
        assert algorithm.check_draw([record], None, [DRAND_CHAIN]).problems == []
        assert after["entries_closed"] is True
        assert after["records"] == [record]
        assert after["commitment"] == record["next_commitment"] != before["commitment"]


def test_a_draw_is_idempotent_and_another_winner_count_is_refused(app, peers):
    peers.standard()
    add_entries(app, 1, USERS)
    with app.app_context():
        first = draw(3)
        again = draw(3)
        assert first.already_done is False and again.already_done is True
        assert again.record["record_hash"] == first.record["record_hash"]
        assert again.current_winners == first.current_winners
        with pytest.raises(AlreadyDrawnDifferently) as refused:
            draw(4)
        assert refused.value.details == {"winner_count": 3, "requested": 4}
        assert record_count() == 1


def test_fewer_entrants_than_prizes_all_win_and_the_rest_is_unclaimed(app, peers):
    peers.standard()
    add_entries(app, 1, USERS[:2])
    with app.app_context():
        outcome = draw(5)
        assert sorted(user_ids(outcome.current_winners)) == USERS[:2]
        assert outcome.record["unclaimed_count"] == 3


def test_a_winner_who_left_is_skipped_and_marked_and_the_next_candidate_wins(
    app, peers, monkeypatch
):
    peers.standard()
    foreseen = ForeseenDraw(app, monkeypatch)
    add_entries(app, 1, USERS)
    with app.app_context():
        expected, _ = foreseen.winners(USERS, 3)
        peers.members[expected[0]] = "left"
        outcome = draw(3)
        assert user_ids(outcome.current_winners)[:2] == expected[1:]
        assert expected[0] not in user_ids(outcome.current_winners)
        assert [(s["user_id"], s["reason"], s["status"]) for s in outcome.record["skipped"]] == [
            (expected[0], "not_subscribed", "left")
        ]
        status = draws.winner_status(user_id=expected[0], giveaway_id=1)
        assert status.participated is True and status.is_winner is False
        with read_only() as session:
            marked = session.scalar(select(Participant.status).filter_by(user_id=expected[0]))
        assert marked == "unsubscribed"


def test_a_telegram_outage_records_nothing_and_the_retry_reveals_the_same_commitment(app, peers):
    peers.standard()
    add_entries(app, 1, USERS)
    with app.app_context():
        commitment = draws.draw_document(1)["commitment"]
        peers.telegram_answer = lambda _user: (502, {"ok": False, "error_code": 502})
        with pytest.raises(SubscriptionCheckUnavailable):
            draw(3)
        assert record_count() == 0
        assert draws.winner_status(user_id=USERS[0], giveaway_id=1).total_winners == 0
        peers.telegram_answer = None
        outcome = draw(3)
        assert outcome.record["commitment"] == commitment
        assert len(outcome.current_winners) == 3


def test_winner_status_answers_for_winners_losers_and_strangers(app, peers):
    peers.standard()
    add_entries(app, 1, USERS)
    with app.app_context():
        winners = draw(3).current_winners
        won = draws.winner_status(user_id=winners[0].user_id, giveaway_id=1)
        assert (won.participated, won.is_winner, won.position) == (True, True, 1)
        assert won.winner_selected_at is not None and won.total_winners == 3
        loser = next(u for u in USERS if u not in user_ids(winners))
        lost = draws.winner_status(user_id=loser, giveaway_id=1)
        assert (lost.participated, lost.is_winner, lost.winner_selected_at) == (True, False, None)
        stranger = draws.winner_status(user_id=5, giveaway_id=1)
        assert stranger.participated is False


def test_a_reroll_replaces_a_named_winner_at_their_position_with_someone_new(app, peers):
    peers.standard()
    add_entries(app, 1, USERS)
    with app.app_context():
        first = draw(3)
        replaced = first.current_winners[1]
        outcome = reroll(replace_user_id=replaced.user_id)
        [new] = outcome.new_winners
        assert new.position == replaced.position
        assert new.user_id not in user_ids(first.current_winners)
        assert replaced.user_id not in user_ids(outcome.current_winners)
        assert len(outcome.current_winners) == 3
        record = outcome.record
        assert (record["kind"], record["sequence"]) == ("reroll", 2)
        assert record["previous_hash"] == first.record["record_hash"]
        assert algorithm.verify_chain([first.record, record]) == []
        assert draws.winner_status(user_id=replaced.user_id, giveaway_id=1).is_winner is False


def test_rerolls_never_pick_a_past_winner_until_nobody_is_left(app, peers):
    peers.standard()
    add_entries(app, 1, USERS[:5])
    with app.app_context():
        winners = user_ids(draw(2).current_winners)
        ever = set(winners)
        for attempt in range(3):
            outcome = reroll(f"r{attempt}", replace_user_id=winners[0])
            assert not set(user_ids(outcome.new_winners)) & ever
            winners = user_ids(outcome.current_winners)
            ever |= set(winners)
        assert ever == set(USERS[:5])
        exhausted = reroll("last", replace_user_id=winners[0])
        assert exhausted.new_winners == [] and exhausted.record["unclaimed_count"] == 1


def test_a_reroll_can_add_winners_after_the_last_position(app, peers):
    peers.standard()
    add_entries(app, 1, USERS)
    with app.app_context():
        first = draw(2)
        outcome = reroll(add_count=2)
        assert [winner.position for winner in outcome.new_winners] == [3, 4]
        assert not set(user_ids(outcome.new_winners)) & set(user_ids(first.current_winners))
        assert len(outcome.current_winners) == 4


def test_a_reroll_key_returns_the_same_record_and_refuses_another_request(app, peers):
    peers.standard()
    add_entries(app, 1, USERS)
    with app.app_context():
        target = draw(3).current_winners[0].user_id
        once = reroll("same", replace_user_id=target)
        twice = reroll("same", replace_user_id=target)
        assert twice.already_done is True
        assert twice.record["record_hash"] == once.record["record_hash"]
        assert twice.current_winners == once.current_winners
        with pytest.raises(IdempotencyKeyReused):
            reroll("same", add_count=1)
        with pytest.raises(IdempotencyKeyReused):  # the reason is part of the request too
            draws.reroll(
                giveaway_id=1, reason="another", idempotency_key="same", replace_user_id=target
            )
        assert record_count() == 2


def test_a_reroll_before_the_draw_or_of_a_non_winner_is_refused_and_changes_nothing(app, peers):
    peers.standard()
    add_entries(app, 1, USERS)
    with app.app_context():
        with pytest.raises(NotDrawn):
            reroll(replace_user_id=USERS[0])
        winners = draw(3).current_winners
        loser = next(u for u in USERS if u not in user_ids(winners))
        with pytest.raises(NotAWinner):
            reroll("k2", replace_user_id=loser)
        assert record_count() == 1
        assert draws.current_winners(1) == winners


def test_the_draw_document_needs_a_commitment_and_counts_entries_not_numbered_yet(app, peers):
    peers.standard(78)
    complete_captcha(app, USERS[:3])
    with app.app_context():
        with pytest.raises(DrawNotFound):
            draws.draw_document(77)
        committed = draws.commit_to_seed(77)
        assert committed["drawn"] is False and committed["entrant_count"] == 0
        assert draws.commit_to_seed(77)["commitment"] == committed["commitment"]
        for user_id in USERS[:3]:  # registrations leave their entries to be numbered later
            registration.register_participant(giveaway_id=78, user_id=user_id)
        assert draws.draw_document(78)["entrant_count"] == 3


def test_the_chain_check_passes_a_real_chain_and_finds_tampered_winner_flags(app, peers):
    peers.standard()
    add_entries(app, 1, USERS)
    with app.app_context():
        first = draw(3)
        reroll(replace_user_id=first.current_winners[0].user_id)
        assert draws.verify_all_chains() == {1: []}
        loser = next(u for u in USERS if u not in user_ids(draws.current_winners(1)))
        db.session.execute(
            update(Participant).where(Participant.user_id == loser).values(is_winner=True)
        )
        db.session.commit()
        problems = draws.verify_all_chains(1)[1]
        assert problems == ["the winners marked on the entries differ from what the records say"]


def test_the_chain_check_derives_exclusions_a_re_hashed_record_cannot_hide(app, peers):
    """Forgery (A) of issue 13 on the stored chain: a reroll's exclusions emptied, re-hashed."""
    peers.standard()
    add_entries(app, 1, USERS)
    with app.app_context():
        draw(3)
        reroll(add_count=2)
        with read_only() as session:
            forged = dict(
                session.scalars(select(DrawRecord.record).where(DrawRecord.sequence == 2)).one(),
                exclusions=[],
            )
        forged["record_hash"] = algorithm.record_digest(forged)
        if db.engine.dialect.name == "postgresql":
            db.session.execute(text("SET LOCAL session_replication_role = replica"))  # the trigger
        db.session.execute(
            update(DrawRecord)
            .where(DrawRecord.sequence == 2)
            .values(record=forged, record_hash=forged["record_hash"])
        )
        db.session.commit()
        problems = draws.verify_all_chains(1)[1]
    assert any(p.startswith("record 2: exclusions should be everyone who won") for p in problems)


def test_a_big_list_closes_just_after_a_round_so_its_tree_is_built_in_the_wait(
    app, peers, beacon_clock
):
    """The close waits for a round when the next one is nearer than the tree's build: the first
    round after the close is then a whole period away. A small list closes at once."""
    peers.standard()
    add_entries(app, 1, USERS)
    chain = DRAND_CHAIN
    with app.app_context():
        draws._close_after_a_round(1)
        assert beacon_clock.sleeps == []  # 20 entrants: nothing to wait for
        db.session.execute(
            update(GiveawayState)
            .where(GiveawayState.giveaway_id == 1)
            .values(entry_count=3_000_000)
        )
        db.session.commit()
        now = beacon_clock.time()
        next_round_at = chain.time_of(chain.first_round_after(now))
        draws._close_after_a_round(1)
        assert beacon_clock.sleeps == [pytest.approx(next_round_at - now + 0.01)]
        assert chain.time_of(chain.first_round_after(beacon_clock.time())) - beacon_clock.time() > (
            chain.period - 0.02
        )
