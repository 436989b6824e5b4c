"""Telegram's last "subscribed" answer per channel and user (see services/subscription.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime


class Membership(Base):
    """When Telegram last said this user is in this channel; gone when it said otherwise."""

    __tablename__ = "participant_memberships"

    channel_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    status: Mapped[str] = mapped_column(String(32), nullable=False)
    verified_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
