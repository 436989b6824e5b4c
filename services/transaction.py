"""Where transactions begin and end. A service function that writes owns exactly one of these."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from extensions import db
from services.store import store


@contextmanager
def write_transaction() -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back on any error."""
    session = db.session()
    if session.in_transaction():
        # An implicit read transaction must never stretch into a write (or across an outgoing
        # call that happened between them).
        session.rollback()
    with session.begin():
        yield session


@contextmanager
def read_only() -> Iterator[Session]:
    """Short reads, with no transaction left open when the block ends (the store decides how:
    an autocommit connection on PostgreSQL, a transaction ended with the block on SQLite)."""
    with store().read_only() as session:
        yield session


@contextmanager
def read_snapshot() -> Iterator[Session]:
    """Reads in one transaction (one snapshot), ended when the block ends.

    It ends with COMMIT, not ROLLBACK: a rollback would expire loaded objects, and touching one
    later would open a new transaction.
    """
    session = db.session()
    try:
        yield session
    except BaseException:
        session.rollback()
        raise
    session.commit()
