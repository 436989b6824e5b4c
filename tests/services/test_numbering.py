"""Entry numbers: given after the fact, densely, in id order, whoever asks first."""

from __future__ import annotations

from sqlalchemy import select

from extensions import db
from models import GiveawayState, Participant
from services import listing, numbering, registration
from services.store import store
from tests.conftest import DASHBOARD, GIVEAWAY


def enter(app, peers, users, giveaway_id=1):
    from services import captcha
    from utils.captcha import PendingRegistration

    with app.app_context():
        for user in users:
            pending = PendingRegistration(giveaway_id=giveaway_id)
            right = captcha.request_challenge(user_id=user, pending=pending).state.answer
            captcha.submit_answer(user_id=user, answer=right, pending=pending)
            registration.register_participant(giveaway_id=giveaway_id, user_id=user)


def numbers(app, giveaway_id=1):
    with app.app_context():
        return list(
            db.session.execute(
                select(Participant.id, Participant.entry_number)
                .where(Participant.giveaway_id == giveaway_id)
                .order_by(Participant.id)
            )
        )


def test_entries_wait_for_their_number_and_are_counted_meanwhile(app, client, peers):
    peers.standard()
    enter(app, peers, range(101, 111))
    assert {number for _, number in numbers(app)} == {None}
    count = client.get("/api/participants/1/count", headers=GIVEAWAY).get_json()
    assert count["total_participants"] == 10  # counted before they are numbered
    page = client.get("/api/participants/list/1?limit=4&page=2", headers=DASHBOARD).get_json()
    assert [p["entry_number"] for p in page["participants"]] == [5, 6, 7, 8]
    assert [number for _, number in numbers(app)] == list(range(1, 11))  # in id order


def test_later_entries_continue_the_numbering(app, peers):
    peers.standard()
    enter(app, peers, range(101, 104))
    with app.app_context():
        assert numbering.number_pending(1) == 3
        assert numbering.number_pending(1) == 0
    enter(app, peers, range(104, 106))
    with app.app_context():
        assert numbering.number_pending(1) == 2
        assert db.session.get(GiveawayState, 1).entry_count == 5
        assert listing.count_participants(1) == 5
    assert [number for _, number in numbers(app)] == [1, 2, 3, 4, 5]


def test_a_busy_numberer_is_not_waited_for_by_registrations(app, peers):
    peers.standard()
    enter(app, peers, range(101, 104))
    with app.app_context():
        # wait=False must not block when the state row is taken; here it is free, so it numbers.
        assert store().number_pending(1, wait=False, limit=2) == 2
        assert store().number_pending(1, wait=False, limit=10) == 1


def test_a_registrations_share_numbers_in_order_and_skips_a_giveaway_being_numbered(
    make_app, peers, database_url
):
    app = make_app()
    peers.standard()
    enter(app, peers, range(101, 106))
    with app.app_context():
        numbering.number_some_now(1, limit=2)
    assert [number for _, number in numbers(app)] == [1, 2, None, None, None]
    if database_url.startswith("postgresql"):
        # Another process holds the giveaway's state row: the registration does not wait.
        other = make_app()
        with other.app_context():
            db.session.execute(
                select(GiveawayState).where(GiveawayState.giveaway_id == 1).with_for_update()
            )
            with app.app_context():
                numbering.number_some_now(1)
            assert [number for _, number in numbers(app)] == [1, 2, None, None, None]
            db.session.rollback()
    with app.app_context():
        numbering.number_some_now(1)
        assert db.session.get(GiveawayState, 1).entry_count == 5
    assert [number for _, number in numbers(app)] == [1, 2, 3, 4, 5]
