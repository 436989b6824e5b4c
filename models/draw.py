"""Draw records: append-only, chained by hash per giveaway."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigIntPK, JSONDocument, UTCDateTime


class DrawRecord(Base):
    """One draw (sequence 1) or reroll (2, 3, ...) of a giveaway.

    ``record`` is the published document (see ``utils/draw.py``); the other columns repeat what
    queries need. The unique (giveaway, sequence) constraint is what makes "exactly one draw" true
    when several instances draw at once.
    """

    __tablename__ = "participant_draws"
    __table_args__ = (
        UniqueConstraint("giveaway_id", "sequence"),
        UniqueConstraint("giveaway_id", "idempotency_key"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    giveaway_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    sequence: Mapped[int] = mapped_column(Integer, nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    requested_count: Mapped[int] = mapped_column(Integer, nullable=False)
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    request_fingerprint: Mapped[str | None] = mapped_column(String(64))
    record: Mapped[dict[str, Any]] = mapped_column(JSONDocument, nullable=False)
    record_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    previous_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    actor: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(128))
