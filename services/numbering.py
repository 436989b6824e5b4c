"""Entry numbers: dense per giveaway (1, 2, 3, ...), given in batches, off the registration path.

A registration inserts its entry unnumbered and commits in parallel with every other one; nothing
serialises them. Numbers are handed out afterwards, in id order, by whoever needs them (a list,
the export, a draw) and now and then by a registration (every ``NUMBER_EVERY``-th entry id): one
batch at a time per giveaway, under the giveaway's state row lock. After a crash, the entries of a
lost batch are simply numbered again.

Closing a giveaway's entries (the draw) must wait for registrations in flight and stop new ones:
``Store.exclude_registrations`` (an exclusive advisory lock against the registrations' shared one
on PostgreSQL; nothing on SQLite, which serialises writers).
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import Participant
from services.store import store

# A registration whose entry id is a multiple of this numbers the pending entries of its
# giveaway, so readers rarely find more than a few hundred to number.
NUMBER_EVERY = 256


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


def number_pending(giveaway_id: int, *, limit: int = 1_000_000) -> int:
    """Number the giveaway's unnumbered entries in id order, waiting for a numbering in progress
    elsewhere; returns how many were numbered."""
    return store().number_pending(giveaway_id, wait=True, limit=limit)


def number_some_now(giveaway_id: int, *, limit: int = 10_000) -> None:
    """A registration's share of the numbering: up to ``limit`` pending entries, unless another
    process is numbering this giveaway right now."""
    store().number_pending(giveaway_id, wait=False, limit=limit)


def exclude_registrations(session: Session, giveaway_id: int) -> None:
    """For the transaction closing entries: wait for registrations in flight, admit no new one."""
    store().exclude_registrations(session, giveaway_id)
