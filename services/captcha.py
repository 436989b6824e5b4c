"""The global captcha as use cases: hand out a challenge, judge an answer, report a user's status.

The rules live in ``utils.captcha``; the state lives in the configured store (Redis or database);
this module decides what is recorded alongside each transition.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import Flask, current_app
from sqlalchemy.orm import Session

from config import Settings
from models import ParticipantUser
from services.audit import EventType, record_event
from services.captcha_store import CaptchaStore, DatabaseCaptchaStore, RedisCaptchaStore
from services.errors import CaptchaLocked
from services.store import store
from utils import captcha
from utils.captcha import CaptchaPolicy, Decision, Outcome, PendingRegistration
from utils.metrics import CAPTCHA_LOCKOUTS, CAPTCHA_OUTCOMES
from utils.timeutil import utcnow


def init_app(app: Flask, settings: Settings) -> None:
    """Choose the store once per application: Redis when configured, else the database."""
    policy = CaptchaPolicy(
        timeout=timedelta(minutes=settings.captcha_timeout_minutes),
        max_attempts=settings.captcha_max_attempts,
        max_questions=settings.captcha_max_questions,
        lockout=timedelta(minutes=settings.captcha_lockout_minutes),
    )
    client = app.extensions.get("telegive.redis")
    store: CaptchaStore = (
        RedisCaptchaStore(client, policy) if client is not None else DatabaseCaptchaStore(policy)
    )
    app.extensions["telegive.captcha_store"] = store
    app.extensions["telegive.captcha_policy"] = policy


def captcha_store() -> CaptchaStore:
    """The application's captcha store."""
    return current_app.extensions["telegive.captcha_store"]


def captcha_policy() -> CaptchaPolicy:
    """The application's captcha limits."""
    return current_app.extensions["telegive.captcha_policy"]


def request_challenge(*, user_id: int, pending: PendingRegistration) -> Decision:
    """The user's live question (or a new one) for a registration that needs the captcha."""
    now = utcnow()
    policy = captcha_policy()
    decision = captcha_store().transition(
        user_id,
        lambda state: captcha.request_challenge(state, now=now, policy=policy, pending=pending),
        lambda session, decision: _record(session, decision, user_id, pending.giveaway_id, now),
    )
    _count(decision)
    if decision.outcome is Outcome.LOCKED:
        raise CaptchaLocked(retry_after=decision.retry_after)
    return decision


def submit_answer(*, user_id: int, answer: int, pending: PendingRegistration) -> Decision:
    """Judge an answer; on the right one the user's captcha is completed for every giveaway."""
    now = utcnow()
    policy = captcha_policy()
    decision = captcha_store().transition(
        user_id,
        lambda state: captcha.submit_answer(
            state, answer=answer, now=now, policy=policy, pending=pending
        ),
        lambda session, decision: _record(session, decision, user_id, pending.giveaway_id, now),
    )
    _count(decision)
    if decision.outcome in (Outcome.LOCKED, Outcome.NOW_LOCKED):
        raise CaptchaLocked(retry_after=decision.retry_after)
    return decision


def _count(decision: Decision) -> None:
    CAPTCHA_OUTCOMES.labels(str(decision.outcome)).inc()
    if decision.outcome is Outcome.NOW_LOCKED:
        CAPTCHA_LOCKOUTS.inc()


def lock_status(user_id: int) -> int | None:
    """Seconds until a locked-out user may answer again, or None."""
    state = captcha_store().load(user_id)
    return captcha.lock_status(state, now=utcnow(), policy=captcha_policy())


def pending_count(giveaway_id: int) -> int:
    """Users with a live question for this giveaway (registrations waiting on the captcha)."""
    return captcha_store().pending_count(giveaway_id, utcnow())


def clean_expired_challenges() -> int:
    """Forget challenges, lockouts and failures that no longer matter; returns how many."""
    return captcha_store().cleanup(utcnow())


def _record(
    session: Session, decision: Decision, user_id: int, giveaway_id: int, now: datetime
) -> None:
    """Write what accompanies a transition: the user's completed captcha and the audit events."""
    if decision.outcome is Outcome.PASSED:
        pending = decision.state.pending
        statement = (
            store()
            .insert(ParticipantUser)
            .values(
                user_id=user_id,
                captcha_completed_at=now,
                created_at=now,
                username=pending.username if pending else None,
                first_name=pending.first_name if pending else None,
                last_name=pending.last_name if pending else None,
            )
        )
        excluded = statement.excluded
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["user_id"],
                set_={
                    "captcha_completed_at": excluded.captcha_completed_at,
                    "username": excluded.username,
                    "first_name": excluded.first_name,
                    "last_name": excluded.last_name,
                },
                where=ParticipantUser.captcha_completed_at.is_(None),
            )
        )
    facts = {
        "outcome": str(decision.outcome),
        "attempts_remaining": decision.attempts_remaining,
    }
    if decision.retry_after is not None:
        facts["locked_for_seconds"] = decision.retry_after
    for event in decision.events:
        record_event(
            session,
            EventType(event),
            giveaway_id=giveaway_id,
            user_id=user_id,
            facts=facts,
            occurred_at=now,
        )
