"""Correctness under concurrency, on the real PostgreSQL (and Redis): many threads, many
connections, one moment. These are the guarantees the unique constraint and the row locks give."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from extensions import db
from models import Participant
from services import captcha, registration
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
    ids = {result.entry.participant_id for result in results}
    assert len(ids) == 1
    assert sum(not result.entry.already_registered for result in results) == 1
    with app.app_context():
        rows = db.session.scalars(select(Participant).where(Participant.user_id == USER)).all()
    assert len(rows) == 1
    assert rows[0].entry_number == 1


def test_parallel_registrations_of_many_users_are_numbered_densely(app, peers):
    peers.standard()
    users = [USER + i for i in range(16)]
    for user in users:
        complete_captcha(app, user)
    in_parallel(
        app, 16, lambda i: registration.register_participant(giveaway_id=1, user_id=users[i])
    )
    with app.app_context():
        numbers = sorted(db.session.scalars(select(Participant.entry_number)))
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
