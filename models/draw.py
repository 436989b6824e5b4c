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


class EntrantCommitment(Base):
    """A giveaway's entrant list as committed when entries close (``telegive-draw`` v2, step 2b).

    ``salt_key`` derives every entry's salt and is never published (a salt is shown only in that
    entry's own proof). The row is created when entries close, with the key, that moment and the
    beacon round it fixes; then written once, moments later, with the root, the count, the digest
    of the published list and the tree's chunk index (the first user id and the root of every
    chunk of ``utils.entrant_tree.CHUNK`` leaves, so one proof needs one chunk of the list). On
    PostgreSQL a trigger refuses any change once the root is set.
    """

    __tablename__ = "participant_entrant_commitments"

    giveaway_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    salt_key: Mapped[str] = mapped_column(String(64), nullable=False)
    entrant_root: Mapped[str | None] = mapped_column(String(64))
    entrant_count: Mapped[int | None] = mapped_column(BigInteger)
    entrants_hash: Mapped[str | None] = mapped_column(String(64))
    chunk_first_ids: Mapped[list[int] | None] = mapped_column(JSONDocument)
    chunk_roots: Mapped[list[str] | None] = mapped_column(JSONDocument)
    committed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    beacon_round: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
