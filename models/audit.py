"""The append-only audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigIntPK, JSONDocument, UTCDateTime


class AuditEvent(Base):
    """One critical operation: what happened, to whom, who asked, and the facts."""

    __tablename__ = "participant_audit_events"
    __table_args__ = (
        Index("ix_participant_audit_events_giveaway", "giveaway_id", "id"),
        Index("ix_participant_audit_events_user", "user_id", "id"),
        Index("ix_participant_audit_events_type", "event_type", "id"),
        Index("ix_participant_audit_events_occurred_at", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    event_type: Mapped[str] = mapped_column(String(48), nullable=False)
    giveaway_id: Mapped[int | None] = mapped_column(BigInteger)
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    actor: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(128))
    facts: Mapped[dict[str, Any]] = mapped_column(JSONDocument, nullable=False, default=dict)
