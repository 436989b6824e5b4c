"""The queue of entries admitted while Telegram was busy (see services/pending.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime


class PendingVerification(Base):
    """One entry whose channel subscription is still to be asked of Telegram.

    The row is the work; the entry itself (status ``pending``) is the participant's. The row goes
    when the entry is settled (verified or excluded), in the same transaction; the entry stays.
    ``claims`` counts the times a verifier took the row: a verifier writes its verdict only while
    the row still carries its own claim, so a verdict that comes after the row was taken again
    (the first verifier stalled past its lease) is dropped instead of recorded twice.
    """

    __tablename__ = "participant_pending_verifications"
    __table_args__ = (Index("ix_participant_pending_verifications_due", "next_attempt_at"),)

    # The entry's id. No foreign key: the row is only written in the transaction that writes its
    # entry, and entries are never deleted (migration 0007).
    participant_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    giveaway_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    user_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    # The giveaway's account: whose bot asks Telegram, about whose channel.
    account_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    enqueued_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    # When a verifier may take the row next: enqueued_at at first, then the end of a claim's
    # lease, or of the wait after a failed attempt.
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    claims: Mapped[int] = mapped_column(
        Integer, nullable=False, default=0, server_default=text("0")
    )
    # Attempts that ended in "cannot verify" (the back-off grows with them).
    failures: Mapped[int] = mapped_column(
        Integer, nullable=False, default=0, server_default=text("0")
    )
    last_error: Mapped[str | None] = mapped_column(String(64))
