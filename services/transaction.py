"""Where transactions begin and end. A service function that writes owns exactly one of these."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from extensions import db


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
    """Reads that end their implicit transaction at once, so no outgoing call happens inside it.

    It ends with COMMIT (nothing is pending, so nothing is written) rather than ROLLBACK, because
    a rollback expires loaded objects and touching one afterwards would open a new transaction.
    """
    session = db.session()
    try:
        yield session
    except BaseException:
        session.rollback()
        raise
    session.commit()
