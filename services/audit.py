"""The append-only audit log: every critical operation, written in the transaction of its change."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from models import AuditEvent
from utils.request_context import current_caller, current_request_id
from utils.timeutil import utcnow


class EventType(StrEnum):
    PARTICIPATION = "participation"
    CAPTCHA_ISSUED = "captcha_issued"
    CAPTCHA_PASSED = "captcha_passed"
    CAPTCHA_FAILED = "captcha_failed"
    CAPTCHA_LOCKED = "captcha_locked"
    SUBSCRIPTION_REFUSED = "subscription_refused"
    COMMITMENT = "commitment"
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
) -> None:
    """Add an event to the session's transaction, with the acting caller and the request id."""
    session.add(
        AuditEvent(
            occurred_at=occurred_at or utcnow(),
            event_type=str(event_type),
            giveaway_id=giveaway_id,
            user_id=user_id,
            actor=current_caller(),
            request_id=current_request_id(),
            facts=facts or {},
        )
    )
