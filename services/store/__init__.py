"""The persistence seam: every statement whose spelling differs between PostgreSQL and SQLite.

The use cases (registration, numbering, listing, draws) say *what* they need from the database
through the ``Store`` interface below; ``postgres.py`` and ``sqlite.py`` beside this file say *how*,
side by side. ``init_app`` chooses one implementation when the application is built, from the
configured database; nothing else in the service asks which database it runs on. Statements that
read the same on both databases (SQLAlchemy Core or ORM queries) stay in the use cases.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from flask import Flask, current_app
from sqlalchemy.orm import Session

from extensions import db
from services.store.pools import count_connections


@dataclass(frozen=True)
class ExistingEntry:
    """A user's entry in a giveaway, as stored."""

    participant_id: int
    participated_at: datetime
    status: str = "active"  # models/participant.py lists the statuses


@dataclass(frozen=True)
class Standing:
    """What the database knows of a user before a registration: their captcha, the names they
    gave when they passed it, and their entry in this giveaway."""

    captcha_completed: bool
    username: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    entry: ExistingEntry | None = None

    @classmethod
    def from_row(cls, row: Any) -> Standing:
        """From (captcha_completed_at, username, first_name, last_name, entry id,
        participated_at, entry status), or None for a user the database does not know."""
        if row is None:
            return cls(captcha_completed=False)
        completed_at, username, first_name, last_name, entry_id, participated_at, status = row
        return cls(
            captcha_completed=completed_at is not None,
            username=username,
            first_name=first_name,
            last_name=last_name,
            entry=None if entry_id is None else ExistingEntry(entry_id, participated_at, status),
        )


@dataclass(frozen=True)
class EntryRequest:
    """Everything one registration write needs.

    ``fresh_status`` / ``fresh_verified_at`` carry Telegram's answer of this request (remembered
    with the entry); without it only an answer remembered after ``remembered_since`` will do.
    ``account_id`` is the giveaway's account, which an entry pending verification keeps in the
    queue (``Store.enter_pending``).
    """

    giveaway_id: int
    user_id: int
    username: str | None
    first_name: str | None
    last_name: str | None
    now: datetime
    channel_id: int | None
    fresh_status: str | None
    fresh_verified_at: datetime | None
    remembered_since: datetime
    actor: str | None
    request_id: str | None
    account_id: int | None = None


@dataclass(frozen=True)
class EntryAttempt:
    """What one registration write did: the new entry's id, or the user's existing entry, or
    what was missing (the captcha, a known subscription; else entries were closed)."""

    participant_id: int | None
    captcha_completed: bool
    subscribed: bool
    existing: ExistingEntry | None


class Store(Protocol):
    """What the use cases need from the database where PostgreSQL and SQLite differ."""

    def read_only(self) -> AbstractContextManager[Session]:
        """A session for short reads that leaves no transaction open when the block ends."""

    def insert(self, table: Any) -> Any:
        """An INSERT construct that supports ``on_conflict_do_nothing`` / ``_do_update``."""

    def standing(self, *, user_id: int, giveaway_id: int) -> Standing:
        """The user's captcha, names and entry in the giveaway, in one read."""

    def enter(self, request: EntryRequest) -> EntryAttempt:
        """Insert the entry with its audit event in one transaction, if the captcha is done, a
        subscription is known and entries are open; otherwise say what was missing."""

    def enter_pending(self, request: EntryRequest) -> EntryAttempt:
        """Insert the entry as pending verification (status ``pending``), its row in the queue
        of pending verifications (``request.account_id``) and its audit event in one
        transaction, if the captcha is done and entries are open; otherwise say what was
        missing. No subscription is needed: that is what the queue is for."""

    def exclude_registrations(self, session: Session, giveaway_id: int) -> None:
        """In the transaction closing entries: wait for registrations in flight, admit none."""

    def number_pending(self, giveaway_id: int, *, wait: bool, limit: int) -> int:
        """Number unnumbered entries in id order; ``wait=False`` skips a giveaway being
        numbered elsewhere. Returns how many were numbered."""

    # The three streams below read each chunk in a short read of its own (a pooled connection
    # is taken and given back before the chunk is yielded), so a client that reads slowly
    # holds no connection; entry numbers and user ids are the keys from one chunk to the next.

    def stream_reads(self) -> AbstractContextManager[Session]:
        """``read_only``, for the reads a stream makes before its chunks (its count): on the
        streams' connections where they have their own, so that a crowd of lists and exports
        starting at once does not queue registrations behind it."""

    def page_json(self, giveaway_id: int, after: int, last: int) -> Iterator[str]:
        """Entries numbered (after, last] as JSON objects joined by commas, chunk by chunk."""

    def export_csv(self, giveaway_id: int, total: int) -> Iterator[str]:
        """Entries numbered 1..total as CSV lines (no header), chunk by chunk."""

    def entrant_chunks(self, giveaway_id: int) -> Iterator[str]:
        """The published entrant list, "<user id>\\n" per entrant, ascending, chunk by chunk."""


def init_app(app: Flask) -> None:
    """Choose the store once, from the configured database."""
    with app.app_context():
        engine = db.engine
    if engine.dialect.name == "postgresql":
        from services.store.postgres import PostgresStore

        postgres = PostgresStore(engine, app.config["SQLALCHEMY_ENGINE_OPTIONS"])
        chosen: Store = postgres
        pools = {
            "transactions": engine,
            "autocommit": postgres.autocommit,
            "streams": postgres.streams,
        }
    else:
        from services.store.sqlite import SqliteStore

        chosen = SqliteStore()
        pools = {"transactions": engine}
    count_connections(pools)
    app.extensions["telegive.store"] = chosen


def store() -> Store:
    """The application's store."""
    return current_app.extensions["telegive.store"]
