"""Correctness under concurrency, on the real PostgreSQL (and Redis): many threads, many
connections, one moment. These are the guarantees the unique constraint and the row locks give."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from extensions import db
from models import Participant
from services import captcha, listing, numbering, registration
from services.errors import CaptchaLocked
from utils.captcha import Outcome, PendingRegistration

pytestmark = pytest.mark.postgres
USER = 9_000_000_001


def in_parallel(app, count: int, work):
    """Run ``work(i)`` in ``count`` threads released at the same instant; return the results."""
    barrier = threading.Barrier(count)

    def run(index: int):
        with app.app_context():
            barrier.wait()
            try:
                return work(index)
            except Exception as error:  # noqa: BLE001 - the test inspects what each thread got
                return error
            finally:
                db.session.remove()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def complete_captcha(app, user_id: int) -> None:
    with app.app_context():
        pending = PendingRegistration(giveaway_id=1)
        right = captcha.request_challenge(user_id=user_id, pending=pending).state.answer
        captcha.submit_answer(user_id=user_id, answer=right, pending=pending)


def test_parallel_registrations_of_one_user_leave_exactly_one_entry(app, peers):
    peers.standard()
    complete_captcha(app, USER)
    results = in_parallel(
        app, 16, lambda _i: registration.register_participant(giveaway_id=1, user_id=USER)
    )
    ids = {result.participant_id for result in results}
    assert len(ids) == 1
    assert sum(not result.already_registered for result in results) == 1
    with app.app_context():
        rows = db.session.scalars(select(Participant).where(Participant.user_id == USER)).all()
    assert len(rows) == 1


def test_parallel_registrations_of_many_users_are_numbered_densely(app, peers):
    peers.standard()
    users = [USER + i for i in range(16)]
    for user in users:
        complete_captcha(app, user)
    in_parallel(
        app, 16, lambda i: registration.register_participant(giveaway_id=1, user_id=users[i])
    )
    # Readers number the pending entries, several at once here: each number is given once.
    in_parallel(app, 4, lambda _i: numbering.number_pending(1))
    with app.app_context():
        numbers = sorted(db.session.scalars(select(Participant.entry_number)))
        assert listing.count_participants(1) == 16
    assert numbers == list(range(1, 17))


@pytest.mark.parametrize("use_redis", [False, True], ids=["database-store", "redis-store"])
def test_parallel_answers_count_attempts_exactly(make_app, use_redis):
    app = make_app(redis=use_redis, CAPTCHA_MAX_ATTEMPTS="100")
    pending = PendingRegistration(giveaway_id=1)
    with app.app_context():
        captcha.request_challenge(user_id=USER, pending=pending)
    # 20 different wrong answers at once (answers are always positive, so negatives are wrong).
    results = in_parallel(
        app, 20, lambda i: captcha.submit_answer(user_id=USER, answer=-(i + 1), pending=pending)
    )
    assert all(result.outcome is Outcome.WRONG for result in results)
    assert sorted(result.attempts_remaining for result in results) == list(range(80, 100))
    with app.app_context():
        assert captcha.captcha_store().load(USER).attempts_used == 20


@pytest.mark.parametrize("use_redis", [False, True], ids=["database-store", "redis-store"])
def test_parallel_answers_cannot_get_past_the_lockout(make_app, use_redis):
    app = make_app(redis=use_redis)
    pending = PendingRegistration(giveaway_id=1)
    with app.app_context():
        captcha.request_challenge(user_id=USER, pending=pending)
    results = in_parallel(
        app, 30, lambda i: captcha.submit_answer(user_id=USER, answer=-(i + 1), pending=pending)
    )
    outcomes = Counter(
        "locked" if isinstance(result, CaptchaLocked) else str(result.outcome) for result in results
    )
    # 3 attempts x 3 questions = 9 counted answers; everything after the lockout is refused.
    assert outcomes == {"wrong": 6, "new_question": 2, "locked": 22}


def test_parallel_draws_produce_exactly_one_draw_and_all_answer_with_it(app, peers):
    from models import DrawRecord
    from services import draws
    from tests.factories import add_entries

    peers.standard()
    add_entries(app, 1, range(1_000, 1_200))
    results = in_parallel(app, 12, lambda _i: draws.draw_winners(giveaway_id=1, winner_count=5))
    assert not [r for r in results if isinstance(r, Exception)], results
    hashes = {result.record["record_hash"] for result in results}
    assert len(hashes) == 1
    assert sum(not result.already_done for result in results) >= 1
    assert {tuple(w.user_id for w in r.current_winners) for r in results} == {
        tuple(w.user_id for w in results[0].current_winners)
    }
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(DrawRecord)) == 1
        assert (
            db.session.scalar(
                select(func.count()).select_from(Participant).where(Participant.is_winner)
            )
            == 5
        )


def test_an_entry_is_either_in_the_draw_or_refused_never_lost(app, peers):
    """Registrations racing a draw: whatever got in is exactly what the draw counted. Several
    rounds with the draw starting at different moments among the registrations."""
    from services import draws
    from services.errors import GiveawayNotActive

    users = [USER + i for i in range(24)]
    for user in users:
        complete_captcha(app, user)
    for round_number, draw_at in enumerate((0, 6, 12, 18, 23), start=1):
        peers.standard(round_number)

        def work(index: int, giveaway_id=round_number, draw_at=draw_at):
            time.sleep(index * 0.002)  # spread the registrations around the draw
            if index == draw_at:
                return draws.draw_winners(giveaway_id=giveaway_id, winner_count=3)
            return registration.register_participant(giveaway_id=giveaway_id, user_id=users[index])

        results = in_parallel(app, 24, work)
        drawn = results[draw_at]
        entered = [r for r in results if isinstance(r, registration.Entry)]
        refused = [r for r in results if isinstance(r, GiveawayNotActive)]
        assert len(entered) + len(refused) == 23, results
        with app.app_context():
            rows = db.session.scalar(
                select(func.count())
                .select_from(Participant)
                .where(Participant.giveaway_id == round_number)
            )
        assert rows == len(entered) == drawn.record["entrant_count"]
