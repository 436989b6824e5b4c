"""Pending captcha challenges, used when no Redis is configured (the database store)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime


class CaptchaChallenge(Base):
    """One row per user with a live question, a lockout or recent failures."""

    __tablename__ = "participant_captcha_challenges"
    __table_args__ = (
        Index("ix_participant_captcha_challenges_pending", "pending_giveaway_id", "expires_at"),
        Index("ix_participant_captcha_challenges_keep_until", "keep_until"),
    )

    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    question: Mapped[str | None] = mapped_column(String(64))
    answer: Mapped[int | None] = mapped_column(Integer)
    session_id: Mapped[str | None] = mapped_column(String(64))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts_used: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    wrong_answers: Mapped[str] = mapped_column(Text, nullable=False, default="")
    pending_giveaway_id: Mapped[int | None] = mapped_column(BigInteger)
    pending_username: Mapped[str | None] = mapped_column(String(256))
    pending_first_name: Mapped[str | None] = mapped_column(String(256))
    pending_last_name: Mapped[str | None] = mapped_column(String(256))
    failed_questions: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    passed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    keep_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
