"""Entry numbers: dense per giveaway (1, 2, 3, ...), given in batches, off the registration path.

A registration inserts its entry unnumbered and commits in parallel with every other one; nothing
serialises them. Numbers are handed out afterwards, in id order, by whoever needs them (a list,
the export, a draw) and now and then by a registration: one batch at a time per giveaway, under
the giveaway's state row lock. The batch commits without waiting for the WAL flush (numbers can
always be given again: after a crash, the entries of a lost batch are simply numbered again).

Closing a giveaway's entries (the draw) must wait for registrations in flight and stop new ones:
on PostgreSQL registrations hold a shared advisory lock on the giveaway for their transaction (see
``_ENTER_POSTGRES`` in services/registration.py) and the draw takes it exclusively; SQLite
serialises every writer anyway (BEGIN IMMEDIATE), so it needs no lock.
"""

from __future__ import annotations

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from models import GiveawayState, Participant
from services import prepared
from services.prepared import Prepared
from services.transaction import autocommit_engine, write_transaction

# The advisory lock namespace of this service in the shared database ("tg" + 0x1e).
_LOCK_NAMESPACE = 0x7467_1E
_NUMBER_BATCH = text(
    "UPDATE participant_entries SET entry_number = :base + batch.position "
    "FROM (SELECT id, row_number() OVER (ORDER BY id) AS position FROM participant_entries "
    "      WHERE giveaway_id = :giveaway_id AND entry_number IS NULL ORDER BY id LIMIT :limit) "
    "AS batch WHERE participant_entries.id = batch.id"
)
# A registration whose entry id is a multiple of this numbers the pending entries of its
# giveaway, so readers rarely find more than a few hundred to number.
NUMBER_EVERY = 256
# The same batch as one prepared statement, for registrations on PostgreSQL: one round trip
# instead of six, so the registration that does it is not the slowest of its second. Skips the
# giveaway when another process is numbering it.
_NUMBER_NOW = Prepared(
    "participant_number_pending",
    """
WITH state AS (
    SELECT entry_count FROM participant_giveaways
    WHERE giveaway_id = %(giveaway_id)s
    FOR UPDATE SKIP LOCKED
), batch AS (
    SELECT e.id, state.entry_count + row_number() OVER (ORDER BY e.id) AS number
    FROM participant_entries e, state
    WHERE e.giveaway_id = %(giveaway_id)s AND e.entry_number IS NULL
    ORDER BY e.id
    LIMIT %(limit)s
), numbered AS (
    UPDATE participant_entries e SET entry_number = batch.number
    FROM batch WHERE e.id = batch.id
    RETURNING 1
)
UPDATE participant_giveaways SET entry_count = entry_count + (SELECT count(*) FROM numbered)
WHERE giveaway_id = %(giveaway_id)s AND EXISTS (SELECT 1 FROM state)
RETURNING entry_count
""",
    {"giveaway_id": "bigint", "limit": "bigint"},
)


def _is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def lock_key(giveaway_id: int) -> dict[str, int]:
    """The advisory lock of a giveaway's entries, as bind parameters."""
    return {"lock_namespace": _LOCK_NAMESPACE, "lock_key": giveaway_id % 2_147_483_647}


def exclude_registrations(session: Session, giveaway_id: int) -> None:
    """For the transaction closing entries: wait for registrations in flight, admit no new one."""
    if _is_postgres(session):
        session.execute(
            text("SELECT pg_advisory_xact_lock(:lock_namespace, :lock_key)"), lock_key(giveaway_id)
        )


def pending_entries(session: Session, giveaway_id: int) -> int:
    """Entries not numbered yet (a partial index keeps this cheap)."""
    return (
        session.scalar(
            select(func.count())
            .select_from(Participant)
            .where(Participant.giveaway_id == giveaway_id, Participant.entry_number.is_(None))
        )
        or 0
    )


def number_pending(giveaway_id: int, *, wait: bool = True, limit: int = 1_000_000) -> int:
    """Number the giveaway's unnumbered entries in id order; returns how many were numbered.

    ``wait=False`` skips the work when another process is numbering this giveaway right now.
    """
    with write_transaction() as session:
        if _is_postgres(session):
            session.execute(text("SET LOCAL synchronous_commit TO OFF"))
        query = (
            select(GiveawayState.entry_count)
            .where(GiveawayState.giveaway_id == giveaway_id)
            .with_for_update(skip_locked=not wait)
        )
        base = session.scalar(query)
        if base is None:
            return 0
        numbered = session.execute(
            _NUMBER_BATCH, {"base": base, "giveaway_id": giveaway_id, "limit": limit}
        ).rowcount
        if numbered:
            session.execute(
                GiveawayState.__table__.update()
                .where(GiveawayState.giveaway_id == giveaway_id)
                .values(entry_count=base + numbered)
            )
        return numbered


def number_some_now(giveaway_id: int, *, limit: int = 10_000) -> None:
    """A registration's share of the numbering: up to ``limit`` pending entries, unless another
    process is numbering this giveaway right now."""
    engine = autocommit_engine()
    if engine is None:
        number_pending(giveaway_id, wait=False, limit=limit)
        return
    prepared.fetch_one(
        engine,
        _NUMBER_NOW,
        {"giveaway_id": giveaway_id, "limit": limit},
        first="SET LOCAL synchronous_commit TO OFF",
    )


def has_pending(session: Session, giveaway_id: int) -> bool:
    """Whether any entry of the giveaway waits for its number."""
    return (
        session.scalar(
            select(Participant.id)
            .where(Participant.giveaway_id == giveaway_id, Participant.entry_number.is_(None))
            .limit(1)
        )
        is not None
    )
