"""The registration use cases called directly: ``register_participant`` and ``answer_captcha``.

Each test walks one branch of the flow docs/contract.md §3 prescribes (giveaway active → already
registered → captcha → subscription → entry) with the siblings and Telegram mocked (``peers``).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import delete, select, update

from extensions import db
from models import AuditEvent, GiveawayState, Membership, Participant
from services import captcha, draws, registration
from services.errors import (
    CaptchaLocked,
    GiveawayNotActive,
    GiveawayNotFound,
    NotSubscribed,
    SubscriptionCheckUnavailable,
)
from services.registration import CaptchaRequired, Entry
from services.transaction import read_only
from tests.conftest import CHANNEL_ID, TELEGRAM_URL
from tests.factories import add_entries, complete_captcha
from utils.captcha import Decision, Outcome
from utils.timeutil import utcnow

USER = 5_000_000_001  # above 2^32, as real Telegram ids are
NAMES = {"username": "alice", "first_name": "Alice", "last_name": "Liddell"}


def register(giveaway_id: int = 1, user_id: int = USER, **names):
    return registration.register_participant(giveaway_id=giveaway_id, user_id=user_id, **names)


def answer(value: int, giveaway_id: int = 1, user_id: int = USER):
    return registration.answer_captcha(user_id=user_id, giveaway_id=giveaway_id, answer=value)


def right_answer(user_id: int = USER) -> int:
    return captcha.captcha_store().load(user_id).answer


def enter_with_captcha(giveaway_id: int = 1, user_id: int = USER, **names) -> Entry:
    """A first-time user's whole flow: register, get the question, answer it right."""
    assert isinstance(register(giveaway_id, user_id, **names), CaptchaRequired)
    entry = answer(right_answer(user_id), giveaway_id, user_id)
    assert isinstance(entry, Entry)
    return entry


def entries(giveaway_id: int | None = None) -> list:
    query = select(
        Participant.id,
        Participant.giveaway_id,
        Participant.user_id,
        Participant.username,
        Participant.first_name,
        Participant.last_name,
        Participant.entry_number,
        Participant.subscription_verified_at,
    ).order_by(Participant.id)
    if giveaway_id is not None:
        query = query.where(Participant.giveaway_id == giveaway_id)
    with read_only() as session:
        return session.execute(query).all()


def remembered_answers() -> list:
    with read_only() as session:
        return session.execute(select(Membership.channel_id, Membership.user_id)).all()


def audit_types(user_id: int = USER) -> list[str]:
    with read_only() as session:
        return list(
            session.scalars(
                select(AuditEvent.event_type)
                .where(AuditEvent.user_id == user_id)
                .order_by(AuditEvent.id)
            )
        )


def test_a_first_registration_gets_a_question_and_enters_nobody(app, peers):
    peers.standard()
    with app.app_context():
        result = register(**NAMES)
        assert isinstance(result, CaptchaRequired)
        assert result.challenge.state.question.startswith("What is ")
        assert result.challenge.attempts_remaining == 3
        # Asking again (the Bot retries) hands out the same question, not a new one.
        again = register(**NAMES)
        assert again.challenge.state.question == result.challenge.state.question
        assert entries() == []
    assert peers.calls_to(TELEGRAM_URL) == 0  # the subscription is checked after the captcha


def test_the_right_answer_enters_the_user_under_the_names_they_registered_with(app, peers):
    peers.standard()
    with app.app_context():
        entry = enter_with_captcha(**NAMES)
        assert entry.already_registered is False
        [row] = entries()
        assert row.id == entry.participant_id
        assert (row.giveaway_id, row.user_id) == (1, USER)
        assert (row.username, row.first_name, row.last_name) == ("alice", "Alice", "Liddell")
        assert audit_types() == ["captcha_issued", "captcha_passed", "participation"]
    assert peers.calls_to(TELEGRAM_URL) == 1


def test_a_repeat_of_either_call_returns_the_same_entry(app, peers):
    peers.standard()
    with app.app_context():
        first = enter_with_captcha()
        again = register()
        retried_answer = answer(-1)  # the Bot retries; the answer no longer matters
        for repeat in (again, retried_answer):
            assert isinstance(repeat, Entry)
            assert repeat.participant_id == first.participant_id
            assert repeat.already_registered is True
            assert repeat.participated_at == first.participated_at
        assert len(entries()) == 1


def test_wrong_answers_are_judged_without_entering_and_a_repeat_costs_nothing(app, peers):
    peers.standard()
    with app.app_context():
        register()
        wrong = right_answer() + 1
        first = answer(wrong)
        assert isinstance(first, Decision)
        assert (first.outcome, first.attempts_remaining) == (Outcome.WRONG, 2)
        repeated = answer(wrong)
        assert (repeated.outcome, repeated.attempts_remaining) == (Outcome.REPEATED, 2)
        assert entries() == []


def test_too_many_failed_questions_lock_the_user_out_of_both_calls(app, peers):
    peers.standard()
    with app.app_context():
        register()
        with pytest.raises(CaptchaLocked) as locked:
            for _ in range(3 * 3):  # every attempt of every question, each a new wrong answer
                state = captcha.captcha_store().load(USER)
                answer(state.answer + 1 + state.attempts_used)
        assert 0 < locked.value.retry_after <= 3600
        with pytest.raises(CaptchaLocked):
            register()
        with pytest.raises(CaptchaLocked):  # even the right answer is refused now
            answer(right_answer())
        assert entries() == []


def test_the_captcha_is_global_and_a_remembered_subscription_spares_telegram(app, peers):
    peers.standard(1, 2)
    with app.app_context():
        first = enter_with_captcha(1)
        entry = register(2)  # no question: the captcha is done for every giveaway
        assert isinstance(entry, Entry) and entry.already_registered is False
        one, two = entries(1)[0], entries(2)[0]
        assert two.subscription_verified_at == one.subscription_verified_at
        assert entry.participant_id != first.participant_id
    assert peers.calls_to(TELEGRAM_URL) == 1  # the answer given for giveaway 1 was relied upon


def test_a_remembered_answer_older_than_the_cache_window_is_asked_again(app, peers):
    peers.standard(1, 2)
    with app.app_context():
        enter_with_captcha(1)
        db.session.execute(update(Membership).values(verified_at=utcnow() - timedelta(seconds=301)))
        db.session.commit()
        peers.members[USER] = "left"
        with pytest.raises(NotSubscribed):
            register(2)
        assert entries(2) == []
    assert peers.calls_to(TELEGRAM_URL) == 2


@pytest.mark.parametrize("status", ["left", "kicked"])
def test_a_user_telegram_says_is_not_in_the_channel_is_told_which_to_join(app, peers, status):
    peers.standard()
    complete_captcha(app, [USER])
    peers.members[USER] = status
    with app.app_context():
        with pytest.raises(NotSubscribed) as refused:
            register()
        assert refused.value.details == {
            "channel_username": "@telegive_news",
            "channel_title": "Telegive News",
        }
        assert "@telegive_news" in refused.value.message
        assert refused.value.extra["channel_info"]["channel_id"] == CHANNEL_ID
        assert entries() == []
        assert remembered_answers() == []
        assert audit_types() == ["subscription_refused"]


def test_not_subscribed_after_the_right_answer_keeps_the_captcha_done_for_the_retry(app, peers):
    peers.standard()
    peers.members[USER] = "left"
    with app.app_context():
        register(**NAMES)
        with pytest.raises(NotSubscribed) as refused:
            answer(right_answer())
        assert refused.value.extra["captcha_completed"] is True
        # They join and the Bot retries with any answer: no new question, and they are in under
        # the names they registered with (the answer carries no names).
        peers.members[USER] = "member"
        entry = answer(12345)
        assert isinstance(entry, Entry) and entry.already_registered is False
        [row] = entries()
        assert (row.username, row.first_name) == ("alice", "Alice")


def test_telegram_unavailable_is_retryable_and_never_enters(app, peers):
    peers.standard()
    complete_captcha(app, [USER])
    peers.telegram_answer = lambda _user: (502, {"ok": False, "error_code": 502})
    with app.app_context():
        with pytest.raises(SubscriptionCheckUnavailable):
            register()
        assert entries() == []
        assert remembered_answers() == []
        peers.telegram_answer = None
        assert isinstance(register(), Entry)


@pytest.mark.parametrize("status", ["finished", "draft"])
def test_a_giveaway_that_is_not_active_refuses_everyone(app, peers, status):
    peers.standard()
    peers.giveaway(1, status=status)
    complete_captcha(app, [USER])
    with app.app_context():
        with pytest.raises(GiveawayNotActive) as refused:
            register()
        assert refused.value.details == {"giveaway_id": 1, "status": status}
        assert entries() == []
    assert peers.calls_to(TELEGRAM_URL) == 0


def test_an_unknown_giveaway_is_not_found_and_nothing_is_written(app, peers):
    peers.mock.get(
        "http://giveaway.test/api/giveaways/9",
        status=404,
        json={"success": False, "error_code": "GIVEAWAY_NOT_FOUND"},
    )
    with app.app_context():
        with pytest.raises(GiveawayNotFound):
            register(9)
        assert captcha.captcha_store().load(USER).question is None  # no question was issued
        assert entries() == []
        assert audit_types() == []


def test_after_the_draw_closed_entries_newcomers_are_refused_and_entrants_keep_theirs(app, peers):
    peers.standard()
    add_entries(app, 1, [USER])
    complete_captcha(app, [USER + 1])
    with app.app_context():
        draws.draw_winners(giveaway_id=1, winner_count=1)
        with pytest.raises(GiveawayNotActive) as refused:
            register(user_id=USER + 1)
        assert refused.value.details == {"giveaway_id": 1, "reason": "entries_closed"}
        kept = register()
        assert isinstance(kept, Entry) and kept.already_registered is True
        assert [row.user_id for row in entries()] == [USER]


def test_entries_are_numbered_by_the_registration_whose_id_is_a_multiple(app, peers, monkeypatch):
    monkeypatch.setattr(registration, "NUMBER_EVERY", 2)
    peers.standard()
    complete_captcha(app, [USER, USER + 1, USER + 2])
    with app.app_context():
        register(user_id=USER)
        assert [row.entry_number for row in entries()] == [None]
        for user_id in (USER + 1, USER + 2):
            register(user_id=user_id)
        rows = entries()
        assert [row.id for row in rows] == [1, 2, 3]  # each test starts from empty tables
        # Entry 2 numbered itself and entry 1, in id order; entry 3 waits for the next multiple.
        assert [row.entry_number for row in rows] == [1, 2, None]


def test_a_giveaway_whose_state_row_vanished_is_set_up_again_rather_than_refusing(app, peers):
    peers.standard()
    complete_captcha(app, [USER, USER + 1])
    with app.app_context():
        assert isinstance(register(user_id=USER), Entry)
        db.session.execute(delete(GiveawayState))
        db.session.commit()
        entry = register(user_id=USER + 1)
        assert isinstance(entry, Entry) and entry.already_registered is False
        assert db.session.get(GiveawayState, 1) is not None
        assert [row.user_id for row in entries()] == [USER, USER + 1]
