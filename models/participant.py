"""Entries: one row per (giveaway, user), the heart of the service."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigIntPK, UTCDateTime


class Participant(Base):
    """A user's entry in a giveaway. The unique constraint is what makes "one entry" true."""

    __tablename__ = "participant_entries"
    __table_args__ = (
        UniqueConstraint("giveaway_id", "user_id"),
        # Dense per-giveaway numbering: page N of a list is a range of entry numbers.
        UniqueConstraint("giveaway_id", "entry_number"),
        Index("ix_participant_entries_user_history", "user_id", "participated_at", "id"),
        Index(
            "ix_participant_entries_winners",
            "giveaway_id",
            "winner_position",
            postgresql_where=text("is_winner"),
            sqlite_where=text("is_winner"),
        ),
        Index(
            "ix_participant_entries_unnumbered",
            "giveaway_id",
            "id",
            postgresql_where=text("entry_number IS NULL"),
            sqlite_where=text("entry_number IS NULL"),
        ),
        Index(
            "ix_participant_entries_not_active",
            "giveaway_id",
            postgresql_where=text("status <> 'active'"),
            sqlite_where=text("status <> 'active'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    giveaway_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    user_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    entry_number: Mapped[int | None] = mapped_column(BigInteger)
    username: Mapped[str | None] = mapped_column(String(256))
    first_name: Mapped[str | None] = mapped_column(String(256))
    last_name: Mapped[str | None] = mapped_column(String(256))
    participated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    subscription_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # active; pending (entered while Telegram was busy, subscription not confirmed yet); excluded
    # (a pending entry Telegram then said was not subscribed); unsubscribed (found gone by a draw).
    status: Mapped[str] = mapped_column(
        String(16), nullable=False, default="active", server_default=text("'active'")
    )
    is_winner: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=text("false")
    )
    winner_selected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    winner_position: Mapped[int | None] = mapped_column(Integer)
    delivered: Mapped[bool | None] = mapped_column(Boolean)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivery_attempts: Mapped[int] = mapped_column(
        Integer, nullable=False, default=0, server_default=text("0")
    )


class ParticipantUser(Base):
    """A Telegram user as this service knows them: the global captcha is passed once, here."""

    __tablename__ = "participant_users"

    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    captcha_completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    # The names sent with the registration that passed the captcha, so a retried answer (which
    # carries no names) still enters the user under their name.
    username: Mapped[str | None] = mapped_column(String(256))
    first_name: Mapped[str | None] = mapped_column(String(256))
    last_name: Mapped[str | None] = mapped_column(String(256))


class GiveawayState(Base):
    """What this service keeps per giveaway: how many entries are numbered, closure, and the
    draw commitment.

    ``next_seed`` stays secret until the draw that uses it reveals it; ``next_commitment`` is its
    SHA-256 and may be published at any time.
    """

    __tablename__ = "participant_giveaways"

    giveaway_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    # The giveaway's account, learnt from its first entry, so a draw need not ask the Giveaway
    # service (which is waiting on the draw: asking it back could deadlock the two services).
    account_id: Mapped[int | None] = mapped_column(BigInteger)
    entry_count: Mapped[int] = mapped_column(
        BigInteger, nullable=False, default=0, server_default=text("0")
    )
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_seed: Mapped[str] = mapped_column(String(64), nullable=False)
    next_commitment: Mapped[str] = mapped_column(String(64), nullable=False)
    committed_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    # The beacon round fixed for the next reroll when it was first requested, and for which
    # request (its idempotency key and fingerprint): a retry of that request uses the same round,
    # so the choice of round cannot move after the round is published.
    reroll_round: Mapped[int | None] = mapped_column(BigInteger)
    reroll_round_fixed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reroll_round_key: Mapped[str | None] = mapped_column(String(128))
    reroll_round_fingerprint: Mapped[str | None] = mapped_column(String(64))
