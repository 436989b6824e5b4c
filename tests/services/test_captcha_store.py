"""Both captcha stores (database and Redis) behave the same; each test runs on both."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from extensions import db
from models import AuditEvent, ParticipantUser
from services import captcha
from services.captcha_store import RedisCaptchaStore
from services.errors import CaptchaLocked
from utils.captcha import Outcome, PendingRegistration
from utils.timeutil import utcnow

USER = 7_000_000_001
PENDING = PendingRegistration(giveaway_id=5, username="bob", first_name="Bob")


def test_a_challenge_survives_between_requests_and_is_handed_out_again(store_app):
    with store_app.app_context():
        first = captcha.request_challenge(user_id=USER, pending=PENDING)
        second = captcha.request_challenge(user_id=USER, pending=PENDING)
        assert first.outcome is Outcome.ISSUED and second.outcome is Outcome.PENDING
        assert second.state.question == first.state.question
        assert captcha.captcha_store().load(USER).pending == PENDING


def test_the_right_answer_completes_the_user_and_forgets_the_challenge(store_app):
    with store_app.app_context():
        right = captcha.request_challenge(user_id=USER, pending=PENDING).state.answer
        decision = captcha.submit_answer(user_id=USER, answer=right, pending=PENDING)
        assert decision.outcome is Outcome.PASSED
        assert decision.state.pending == PENDING
        user = db.session.get(ParticipantUser, USER)
        assert user.captcha_completed_at is not None
        assert captcha.captcha_store().load(USER).question is None


def test_a_passed_state_is_kept_so_a_duplicate_answer_cannot_reissue_a_question(store_app):
    with store_app.app_context():
        right = captcha.request_challenge(user_id=USER, pending=PENDING).state.answer
        captcha.submit_answer(user_id=USER, answer=right, pending=PENDING)
        # A duplicate request that read "not completed" before the first one committed:
        again = captcha.submit_answer(user_id=USER, answer=right + 1, pending=PENDING)
        asked = captcha.request_challenge(user_id=USER, pending=PENDING)
        assert again.outcome is Outcome.PASSED
        assert asked.outcome is Outcome.PASSED
        assert captcha.pending_count(PENDING.giveaway_id) == 0


def test_attempts_lockout_and_retry_after_hold_in_the_store(store_app):
    with store_app.app_context():
        captcha.request_challenge(user_id=USER, pending=PENDING)
        with pytest.raises(CaptchaLocked) as locked:
            for _ in range(3):
                right = captcha.captcha_store().load(USER).answer
                for offset in (1, 2, 3):
                    captcha.submit_answer(user_id=USER, answer=right + offset, pending=PENDING)
        assert locked.value.retry_after == 3600
        assert captcha.lock_status(USER) is not None
        with pytest.raises(CaptchaLocked):
            captcha.request_challenge(user_id=USER, pending=PENDING)
        events = db.session.scalars(
            select(AuditEvent.event_type).where(AuditEvent.user_id == USER)
        ).all()
        assert events.count("captcha_failed") == 9
        assert events.count("captcha_locked") == 1


def test_pending_registrations_are_counted_per_giveaway(store_app):
    with store_app.app_context():
        for user in (1, 2, 3):
            captcha.request_challenge(user_id=user, pending=PENDING)
        captcha.request_challenge(user_id=4, pending=PendingRegistration(giveaway_id=6))
        assert captcha.pending_count(5) == 3
        assert captcha.pending_count(6) == 1
        # A user who moves on to another giveaway is pending there only.
        captcha.request_challenge(user_id=3, pending=PendingRegistration(giveaway_id=6))
        assert (captcha.pending_count(5), captcha.pending_count(6)) == (2, 2)
        right = captcha.captcha_store().load(1).answer
        captcha.submit_answer(user_id=1, answer=right, pending=PENDING)
        assert captcha.pending_count(5) == 1


def test_expired_challenges_are_cleaned_up(store_app):
    with store_app.app_context():
        store = captcha.captcha_store()
        captcha.request_challenge(user_id=USER, pending=PENDING)
        assert captcha.clean_expired_challenges() == 0
        assert store.load(USER).question is not None
        if isinstance(store, RedisCaptchaStore):
            # Redis forgets by itself: the key lives exactly as long as the question.
            ttl = store.client.pttl(store._key(USER))
            assert 9 * 60_000 < ttl <= 10 * 60_000
        else:
            assert store.cleanup(utcnow() + timedelta(minutes=11)) == 1
            assert store.load(USER).question is None


def test_repeated_identical_wrong_answers_use_one_attempt(store_app):
    with store_app.app_context():
        wrong = captcha.request_challenge(user_id=USER, pending=PENDING).state.answer + 1
        decisions = [
            captcha.submit_answer(user_id=USER, answer=wrong, pending=PENDING) for _ in range(5)
        ]
        assert [d.attempts_remaining for d in decisions] == [2, 2, 2, 2, 2]
        assert captcha.captcha_store().load(USER).attempts_used == 1
        failed = db.session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.event_type == "captcha_failed")
        )
        assert failed == 1
