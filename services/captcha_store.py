"""Where captcha state lives: Redis when REDIS_URL is set, the database otherwise.

Both stores apply a transition from ``utils.captcha`` atomically per user, so parallel answers
count attempts exactly: the database store holds the user's row lock (``SELECT ... FOR UPDATE``;
SQLite serialises writers), the Redis store uses an optimistic WATCH/MULTI transaction and retries.

``persist`` writes what accompanies a transition in the database (the audit events and, on a
right answer, the user's completed captcha). The database store runs it in the same transaction
as the state change. The Redis store runs it right after: a passed state stays in Redis (as in the
database) for an hour, so a retry after a database failure completes it; audit events of a
transition whose database write failed are written to the error log instead.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, replace
from datetime import datetime
from typing import Protocol

import redis
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import CaptchaChallenge
from services.cache import KEY_PREFIX
from services.errors import RedisUnavailable
from services.transaction import read_only, write_transaction
from utils.captcha import CaptchaPolicy, CaptchaState, Decision, PendingRegistration
from utils.timeutil import utcnow

log = logging.getLogger("telegive.captcha")
Step = Callable[[CaptchaState], Decision]
Persist = Callable[[Session, Decision], None]


class CaptchaStore(Protocol):
    def transition(self, user_id: int, step: Step, persist: Persist) -> Decision: ...
    def load(self, user_id: int) -> CaptchaState: ...
    def pending_count(self, giveaway_id: int, now: datetime) -> int: ...
    def cleanup(self, now: datetime) -> int: ...


class DatabaseCaptchaStore:
    """Captcha state in ``participant_captcha_challenges``, one row per user."""

    def __init__(self, policy: CaptchaPolicy) -> None:
        self.policy = policy

    def transition(self, user_id: int, step: Step, persist: Persist) -> Decision:
        for attempt in range(2):
            try:
                with write_transaction() as session:
                    row = session.scalars(
                        select(CaptchaChallenge)
                        .where(CaptchaChallenge.user_id == user_id)
                        .with_for_update()
                        .execution_options(populate_existing=True)
                    ).one_or_none()
                    decision = step(_row_to_state(row))
                    self._save(session, user_id, row, decision)
                    persist(session, decision)
                return decision
            except IntegrityError:
                # Two first-ever transitions for one user raced to insert the row; the loser
                # retries and now finds (and locks) the winner's row.
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _save(
        self, session: Session, user_id: int, row: CaptchaChallenge | None, decision: Decision
    ) -> None:
        state = decision.state
        if state.is_empty:
            if row is not None:
                session.delete(row)
            return
        if row is None:
            row = CaptchaChallenge(user_id=user_id)
            session.add(row)
        pending = state.pending
        row.question = state.question
        row.answer = state.answer
        row.session_id = state.session_id
        row.expires_at = state.expires_at
        row.attempts_used = state.attempts_used
        row.wrong_answers = ",".join(str(answer) for answer in state.wrong_answers)
        row.pending_giveaway_id = pending.giveaway_id if pending else None
        row.pending_username = pending.username if pending else None
        row.pending_first_name = pending.first_name if pending else None
        row.pending_last_name = pending.last_name if pending else None
        row.failed_questions = state.failed_questions
        row.last_failed_at = state.last_failed_at
        row.locked_until = state.locked_until
        row.passed_at = state.passed_at
        row.keep_until = state.keep_until(self.policy)

    def load(self, user_id: int) -> CaptchaState:
        with read_only() as session:
            return _row_to_state(session.get(CaptchaChallenge, user_id))

    def pending_count(self, giveaway_id: int, now: datetime) -> int:
        with read_only() as session:
            return (
                session.scalar(
                    select(func.count())
                    .select_from(CaptchaChallenge)
                    .where(
                        CaptchaChallenge.pending_giveaway_id == giveaway_id,
                        CaptchaChallenge.expires_at > now,
                        CaptchaChallenge.question.is_not(None),
                    )
                )
                or 0
            )

    def cleanup(self, now: datetime) -> int:
        with write_transaction() as session:
            result = session.execute(
                delete(CaptchaChallenge).where(
                    CaptchaChallenge.keep_until.is_not(None), CaptchaChallenge.keep_until < now
                )
            )
            return result.rowcount or 0


def _row_to_state(row: CaptchaChallenge | None) -> CaptchaState:
    if row is None:
        return CaptchaState()
    pending = None
    if row.pending_giveaway_id is not None:
        pending = PendingRegistration(
            giveaway_id=row.pending_giveaway_id,
            username=row.pending_username,
            first_name=row.pending_first_name,
            last_name=row.pending_last_name,
        )
    return CaptchaState(
        question=row.question,
        answer=row.answer,
        session_id=row.session_id,
        expires_at=row.expires_at,
        attempts_used=row.attempts_used,
        wrong_answers=tuple(int(part) for part in row.wrong_answers.split(",") if part),
        pending=pending,
        failed_questions=row.failed_questions,
        last_failed_at=row.last_failed_at,
        locked_until=row.locked_until,
        passed_at=row.passed_at,
    )


class RedisCaptchaStore:
    """Captcha state as one JSON value per user, expiring when nothing in it matters any more."""

    MAX_RETRIES = 50

    def __init__(self, client: redis.Redis, policy: CaptchaPolicy) -> None:
        self.client = client
        self.policy = policy

    @staticmethod
    def _key(user_id: int) -> str:
        return f"{KEY_PREFIX}captcha:{user_id}"

    @staticmethod
    def _pending_key(giveaway_id: int) -> str:
        return f"{KEY_PREFIX}captcha_pending:{giveaway_id}"

    def transition(self, user_id: int, step: Step, persist: Persist) -> Decision:
        key = self._key(user_id)
        try:
            decision = self._apply(key, user_id, step)
        except redis.RedisError:
            raise RedisUnavailable() from None
        try:
            with write_transaction() as session:
                persist(session, decision)
        except Exception:
            # Redis and the database are two commits: the state change stands, its audit events
            # did not make it. Keep them in the log rather than lose them silently.
            log.error(
                "captcha audit events not recorded",
                extra={
                    "user_id": user_id,
                    "outcome": str(decision.outcome),
                    "events": list(decision.events),
                },
            )
            raise
        return decision

    def _apply(self, key: str, user_id: int, step: Step) -> Decision:
        for _ in range(self.MAX_RETRIES):
            with self.client.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(key)
                    before = _decode(pipe.get(key))
                    decision = step(before)
                    pipe.multi()
                    self._write(pipe, key, user_id, before, decision.state)
                    pipe.execute()
                    return decision
                except redis.WatchError:
                    continue
        raise RedisUnavailable("The captcha store is too busy for this user; please try again.")

    def _write(
        self,
        pipe: redis.client.Pipeline,
        key: str,
        user_id: int,
        before: CaptchaState,
        after: CaptchaState,
    ) -> None:
        if before.pending and (
            after.pending is None
            or after.pending.giveaway_id != before.pending.giveaway_id
            or after.question is None
        ):
            pipe.zrem(self._pending_key(before.pending.giveaway_id), user_id)
        if after.is_empty:
            pipe.delete(key)
            return
        pipe.set(key, _encode(after), px=_ttl_ms(after, self.policy))
        if after.pending and after.question is not None and after.expires_at is not None:
            pending_key = self._pending_key(after.pending.giveaway_id)
            pipe.zadd(pending_key, {str(user_id): after.expires_at.timestamp()})
            pipe.expire(pending_key, int(self.policy.timeout.total_seconds()) + 60)

    def load(self, user_id: int) -> CaptchaState:
        try:
            return _decode(self.client.get(self._key(user_id)))
        except redis.RedisError:
            raise RedisUnavailable() from None

    def pending_count(self, giveaway_id: int, now: datetime) -> int:
        try:
            return int(
                self.client.zcount(self._pending_key(giveaway_id), f"({now.timestamp()}", "+inf")
            )
        except redis.RedisError:
            raise RedisUnavailable() from None

    def cleanup(self, now: datetime) -> int:
        # Values expire by themselves; only the per-giveaway pending sets keep stale members.
        removed = 0
        try:
            for pending_key in self.client.scan_iter(f"{KEY_PREFIX}captcha_pending:*", count=500):
                removed += int(self.client.zremrangebyscore(pending_key, "-inf", now.timestamp()))
        except redis.RedisError:
            raise RedisUnavailable() from None
        return removed


def _ttl_ms(state: CaptchaState, policy: CaptchaPolicy) -> int:
    keep_until = state.keep_until(policy)
    if keep_until is None:
        return 1000
    return max(1000, int((keep_until - utcnow()).total_seconds() * 1000))


def _encode(state: CaptchaState) -> str:
    data = asdict(state)
    for name in ("expires_at", "last_failed_at", "locked_until", "passed_at"):
        value = getattr(state, name)
        data[name] = None if value is None else value.isoformat()
    return json.dumps(data)


def _decode(raw: str | None) -> CaptchaState:
    if not raw:
        return CaptchaState()
    data = json.loads(raw)
    for name in ("expires_at", "last_failed_at", "locked_until", "passed_at"):
        if data.get(name):
            data[name] = datetime.fromisoformat(data[name])
    pending = data.pop("pending", None)
    state = CaptchaState(**{**data, "wrong_answers": tuple(data.get("wrong_answers") or ())})
    return replace(state, pending=PendingRegistration(**pending) if pending else None)
