"""The store on SQLite: the development default (``make run``) and the newcomer's test run.

Every write transaction takes SQLite's write lock up front (BEGIN IMMEDIATE, see ``app.py``), so
writers queue one behind the other: no advisory lock, no SKIP LOCKED and no snapshot subtleties
are needed, and each operation is the plain statement-by-statement form of its PostgreSQL twin.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, select, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from models import GiveawayState, Membership, Participant, ParticipantUser, PendingVerification
from services.audit import EventType, record_event
from services.store import EntryAttempt, EntryRequest, ExistingEntry, Standing
from services.subscription import remember_answer
from services.transaction import read_snapshot, write_transaction
from utils.csv_export import csv_chunk
from utils.timeutil import as_utc

CHUNK_ROWS = 5_000
ENTRANTS_CHUNK_ROWS = 65_536

_USERS = ParticipantUser.__table__
_ENTRIES = Participant.__table__
_STANDING = (
    select(
        _USERS.c.captcha_completed_at,
        _USERS.c.username,
        _USERS.c.first_name,
        _USERS.c.last_name,
        _ENTRIES.c.id,
        _ENTRIES.c.participated_at,
        _ENTRIES.c.status,
    )
    .select_from(
        _USERS.outerjoin(
            _ENTRIES,
            and_(
                _ENTRIES.c.user_id == _USERS.c.user_id,
                _ENTRIES.c.giveaway_id == bindparam("giveaway_id"),
            ),
        )
    )
    .where(_USERS.c.user_id == bindparam("user_id"))
)
_NUMBER_BATCH = text(
    "UPDATE participant_entries SET entry_number = :base + batch.position "
    "FROM (SELECT id, row_number() OVER (ORDER BY id) AS position FROM participant_entries "
    "      WHERE giveaway_id = :giveaway_id AND entry_number IS NULL ORDER BY id LIMIT :limit) "
    "AS batch WHERE participant_entries.id = batch.id"
)
_COLUMNS = (
    Participant.id,
    Participant.user_id,
    Participant.username,
    Participant.first_name,
    Participant.last_name,
    Participant.participated_at,
    Participant.is_winner,
    Participant.winner_position,
    Participant.winner_selected_at,
    Participant.status,
    Participant.entry_number,
    Participant.delivered,
    Participant.delivered_at,
)
_EXPORT_TEXT_COLUMNS = (2, 3, 4)  # what users typed: neutralised against formula injection


def _captcha_completed(session: Session, user_id: int) -> bool:
    completed_at = session.scalar(
        select(_USERS.c.captcha_completed_at).where(_USERS.c.user_id == user_id)
    )
    return completed_at is not None


def _existing(session: Session, giveaway_id: int, user_id: int) -> ExistingEntry | None:
    row = session.execute(
        select(_ENTRIES.c.id, _ENTRIES.c.participated_at, _ENTRIES.c.status).where(
            _ENTRIES.c.giveaway_id == giveaway_id, _ENTRIES.c.user_id == user_id
        )
    ).one_or_none()
    return None if row is None else ExistingEntry(*row)


def _insert_entry(session: Session, request: EntryRequest, **columns: Any) -> int:
    """Insert the request's entry (with ``columns`` besides its own) and its participation
    event; the entry's id. A pending entry's event says so (``subscription_pending``)."""
    participant_id = session.scalar(
        sqlite.insert(_ENTRIES)
        .values(
            giveaway_id=request.giveaway_id,
            user_id=request.user_id,
            username=request.username,
            first_name=request.first_name,
            last_name=request.last_name,
            participated_at=request.now,
            **columns,
        )
        .returning(_ENTRIES.c.id)
    )
    facts: dict[str, Any] = {"participant_id": participant_id}
    if columns.get("status") == "pending":
        facts["subscription_pending"] = True
    record_event(
        session,
        EventType.PARTICIPATION,
        giveaway_id=request.giveaway_id,
        user_id=request.user_id,
        facts=facts,
        occurred_at=request.now,
        actor=request.actor,
        request_id=request.request_id,
    )
    return participant_id


def _open(session: Session, giveaway_id: int) -> bool:
    """The giveaway's entries are open (its state row exists and no draw closed it)."""
    found = session.scalar(
        select(GiveawayState.giveaway_id).where(
            GiveawayState.giveaway_id == giveaway_id, GiveawayState.closed_at.is_(None)
        )
    )
    return found is not None


def _timestamp(value: datetime | None) -> str | None:
    """As PostgreSQL writes it for the list and the export: UTC, always six digits of fraction."""
    return None if value is None else as_utc(value).isoformat(timespec="microseconds")


class SqliteStore:
    """The ``Store`` on SQLite."""

    def read_only(self) -> AbstractContextManager[Session]:
        return read_snapshot()

    def stream_reads(self) -> AbstractContextManager[Session]:
        return read_snapshot()

    def insert(self, table: Any) -> Any:
        return sqlite.insert(table)

    def standing(self, *, user_id: int, giveaway_id: int) -> Standing:
        with read_snapshot() as session:
            row = session.execute(
                _STANDING, {"giveaway_id": giveaway_id, "user_id": user_id}
            ).one_or_none()
        return Standing.from_row(row)

    def enter(self, request: EntryRequest) -> EntryAttempt:
        giveaway_id, user_id = request.giveaway_id, request.user_id
        with write_transaction() as session:
            verified_at = request.fresh_verified_at
            if verified_at is not None:
                remember_answer(
                    session,
                    channel_id=request.channel_id,
                    user_id=user_id,
                    status=request.fresh_status,
                    verified_at=verified_at,
                )
            elif request.channel_id is not None:
                verified_at = session.scalar(
                    select(Membership.verified_at).where(
                        Membership.channel_id == request.channel_id,
                        Membership.user_id == user_id,
                        Membership.verified_at > request.remembered_since,
                    )
                )
            subscribed = verified_at is not None
            completed = _captcha_completed(session, user_id)
            existing = _existing(session, giveaway_id, user_id)
            if existing is not None:
                return EntryAttempt(None, completed, subscribed, existing)
            if not (completed and subscribed and _open(session, giveaway_id)):
                return EntryAttempt(None, completed, subscribed, None)
            participant_id = _insert_entry(session, request, subscription_verified_at=verified_at)
            return EntryAttempt(participant_id, True, True, None)

    def enter_pending(self, request: EntryRequest) -> EntryAttempt:
        giveaway_id, user_id = request.giveaway_id, request.user_id
        with write_transaction() as session:
            completed = _captcha_completed(session, user_id)
            existing = _existing(session, giveaway_id, user_id)
            if existing is not None:
                return EntryAttempt(None, completed, False, existing)
            if not (completed and _open(session, giveaway_id)):
                return EntryAttempt(None, completed, False, None)
            participant_id = _insert_entry(session, request, status="pending")
            session.execute(
                sqlite.insert(PendingVerification.__table__).values(
                    participant_id=participant_id,
                    giveaway_id=giveaway_id,
                    user_id=user_id,
                    account_id=request.account_id,
                    enqueued_at=request.now,
                    next_attempt_at=request.now,
                )
            )
            return EntryAttempt(participant_id, True, False, None)

    def exclude_registrations(self, session: Session, giveaway_id: int) -> None:
        """Nothing to take: the closing transaction already holds SQLite's only write lock."""

    def number_pending(self, giveaway_id: int, *, wait: bool, limit: int) -> int:
        with write_transaction() as session:
            base = session.scalar(
                select(GiveawayState.entry_count).where(GiveawayState.giveaway_id == giveaway_id)
            )
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

    def page_json(self, giveaway_id: int, after: int, last: int) -> Iterator[str]:
        for rows in self._rows(giveaway_id, after, last):
            objects = [
                {
                    "id": row[0],
                    "user_id": row[1],
                    "username": row[2],
                    "first_name": row[3],
                    "last_name": row[4],
                    "captcha_completed": True,
                    "participated_at": _timestamp(row[5]),
                    "is_winner": row[6],
                    "winner_position": row[7],
                    "winner_selected_at": _timestamp(row[8]),
                    "status": row[9],
                    "entry_number": row[10],
                }
                for row in rows
            ]
            yield json.dumps(objects, ensure_ascii=False)[1:-1]

    def export_csv(self, giveaway_id: int, total: int) -> Iterator[str]:
        for rows in self._rows(giveaway_id, 0, total):
            yield csv_chunk(
                (
                    (
                        row[0],
                        row[1],
                        row[2],
                        row[3],
                        row[4],
                        "true",
                        _timestamp(row[5]),
                        "true" if row[6] else "false",
                        row[7],
                        _timestamp(row[8]),
                        row[9],
                        row[10],
                        None if row[11] is None else ("true" if row[11] else "false"),
                        _timestamp(row[12]),
                    )
                    for row in rows
                ),
                text_columns=_EXPORT_TEXT_COLUMNS,
            )

    def entrant_chunks(self, giveaway_id: int) -> Iterator[str]:
        after = 0
        while True:
            with read_snapshot() as session:
                user_ids = session.scalars(
                    select(Participant.user_id)
                    .where(Participant.giveaway_id == giveaway_id, Participant.user_id > after)
                    .order_by(Participant.user_id)
                    .limit(ENTRANTS_CHUNK_ROWS)
                ).all()
            if not user_ids:
                return
            yield "".join(f"{user_id}\n" for user_id in user_ids)
            after = user_ids[-1]

    @staticmethod
    def _rows(giveaway_id: int, after: int, last: int) -> Iterator[list[Any]]:
        """Raw rows of the entry-number range (after, last], CHUNK_ROWS at a time."""
        for start in range(after, last, CHUNK_ROWS):
            with read_snapshot() as session:
                rows = session.execute(
                    select(*_COLUMNS)
                    .where(
                        Participant.giveaway_id == giveaway_id,
                        Participant.entry_number > start,
                        Participant.entry_number <= min(start + CHUNK_ROWS, last),
                    )
                    .order_by(Participant.entry_number)
                ).all()
            if not rows:
                return
            yield rows
