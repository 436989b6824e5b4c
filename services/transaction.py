"""Where transactions begin and end. A service function that writes owns exactly one of these."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import current_app
from sqlalchemy import Connection, Engine, create_engine, event
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
    """Short reads, with no transaction left open when the block ends.

    On PostgreSQL they run on an autocommit connection: no BEGIN and no COMMIT round trip, each
    statement its own snapshot. Elsewhere (SQLite) they run in a transaction that ends with the
    block (COMMIT, not ROLLBACK: a rollback would expire loaded objects, and touching one later
    would open a new transaction).
    """
    engine = autocommit_engine()
    if engine is not None:
        with Session(engine, expire_on_commit=False) as session:
            yield session
        return
    with read_snapshot() as session:
        yield session


@contextmanager
def read_connection() -> Iterator[Connection]:
    """A Core connection for a hot-path read (no ORM session built): autocommit on PostgreSQL."""
    engine = autocommit_engine()
    if engine is not None:
        with engine.connect() as connection:
            yield connection
        return
    with read_snapshot() as session:
        yield session.connection()


def autocommit_engine() -> Engine | None:
    """PostgreSQL only: the engine whose connections are always in autocommit mode."""
    return current_app.extensions.get("telegive.autocommit_engine")


@contextmanager
def read_snapshot() -> Iterator[Session]:
    """Reads in one transaction (one snapshot, and server-side cursors for streamed results)."""
    session = db.session()
    try:
        yield session
    except BaseException:
        session.rollback()
        raise
    session.commit()


def init_app(app) -> None:
    """On PostgreSQL, a second engine whose pooled connections are always in autocommit mode.

    Sharing the main pool would switch a connection's isolation level at every checkout and back
    at every return (a measured 7 % of a registration's CPU). Each pool keeps up to DB_POOL_SIZE
    connections, opened as needed and kept (no overflow: see ``app.engine_options``).
    Disposing of the main engine (tests, forks) disposes of this one too.
    """
    with app.app_context():
        main = db.engine
        if main.dialect.name != "postgresql":
            return
        autocommit = create_engine(
            main.url,
            isolation_level="AUTOCOMMIT",
            pool_reset_on_return=None,  # no transaction is ever left open on these
            **app.config["SQLALCHEMY_ENGINE_OPTIONS"],
        )
        event.listen(main, "engine_disposed", lambda _engine: autocommit.dispose())
        app.extensions["telegive.autocommit_engine"] = autocommit
