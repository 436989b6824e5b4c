"""The append-only audit log: every critical operation, written in the transaction of its change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from models import AuditEvent
from services.errors import InvalidCursorError
from services.transaction import read_only
from utils.cursors import InvalidCursor, decode_cursor, encode_cursor
from utils.request_context import current_caller, current_request_id
from utils.timeutil import utcnow


class EventType(StrEnum):
    PARTICIPATION = "participation"
    CAPTCHA_ISSUED = "captcha_issued"
    CAPTCHA_PASSED = "captcha_passed"
    CAPTCHA_FAILED = "captcha_failed"
    CAPTCHA_LOCKED = "captcha_locked"
    SUBSCRIPTION_REFUSED = "subscription_refused"
    # An entry pending verification settled: confirmed subscribed, or excluded (not subscribed).
    SUBSCRIPTION_VERIFIED = "subscription_verified"
    ENTRY_EXCLUDED = "entry_excluded"
    COMMITMENT = "commitment"
    ENTRANTS_COMMITTED = "entrants_committed"
    REROLL_ROUND_FIXED = "reroll_round_fixed"
    DRAW = "draw"
    REROLL = "reroll"
    DELIVERY_UPDATE = "delivery_update"


def record_event(
    session: Session,
    event_type: EventType | str,
    *,
    giveaway_id: int | None = None,
    user_id: int | None = None,
    facts: dict[str, Any] | None = None,
    occurred_at: datetime | None = None,
    actor: str | None = None,
    request_id: str | None = None,
) -> None:
    """Write an event in the session's transaction, with the acting caller and the request id
    (those of the current request unless given)."""
    session.execute(
        insert(AuditEvent.__table__).values(
            occurred_at=occurred_at or utcnow(),
            event_type=str(event_type),
            giveaway_id=giveaway_id,
            user_id=user_id,
            actor=actor or current_caller(),
            request_id=request_id or current_request_id(),
            facts=facts or {},
        )
    )


@dataclass(frozen=True)
class AuditFilter:
    """What the audit log is narrowed to; None means "any"."""

    giveaway_id: int | None = None
    user_id: int | None = None
    event_type: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class AuditPage:
    events: list[AuditEvent]
    next_cursor: str | None


AUDIT_CURSOR = "audit"


def list_events(*, where: AuditFilter, limit: int, cursor: str | None = None) -> AuditPage:
    """Events matching the filter, newest first (keyset on id)."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit + 1)
    if where.giveaway_id is not None:
        query = query.where(AuditEvent.giveaway_id == where.giveaway_id)
    if where.user_id is not None:
        query = query.where(AuditEvent.user_id == where.user_id)
    if where.event_type is not None:
        query = query.where(AuditEvent.event_type == where.event_type)
    if where.since is not None:
        query = query.where(AuditEvent.occurred_at >= where.since)
    if where.until is not None:
        query = query.where(AuditEvent.occurred_at < where.until)
    if cursor:
        try:
            (before,) = decode_cursor(cursor, AUDIT_CURSOR, int)
        except InvalidCursor:
            raise InvalidCursorError() from None
        query = query.where(AuditEvent.id < before)
    with read_only() as session:
        events = list(session.scalars(query))
    more = len(events) > limit
    events = events[:limit]
    next_cursor = encode_cursor(AUDIT_CURSOR, events[-1].id) if more and events else None
    return AuditPage(events=events, next_cursor=next_cursor)
