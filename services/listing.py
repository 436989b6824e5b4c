"""What the Giveaway service and the Dashboard read about a giveaway: pages, counts, stats, CSV.

Entries are numbered densely per giveaway (1, 2, 3, ... in the order they were accepted), so page
N of size L is the range of entry numbers ((N-1)·L, N·L]: an index range scan on (giveaway_id,
entry_number) that costs the same on page 1 and page 10,000. Rows are streamed from a server-side
cursor in chunks, never loaded whole and never as ORM objects.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, text

from extensions import db
from models import DrawRecord, GiveawayState, Participant
from services import captcha
from services.errors import ValidationFailed
from services.numbering import has_pending, number_pending, pending_entries
from services.transaction import read_only, read_snapshot
from utils.csv_export import csv_chunk
from utils.cursors import InvalidCursor, decode_cursor, encode_cursor
from utils.timeutil import isoformat

CHUNK_ROWS = 5_000
MAX_POSITION = 2**63 - 1
CURSOR_KIND = "entries"

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

EXPORT_HEADER = (
    "participant_id",
    "user_id",
    "username",
    "first_name",
    "last_name",
    "captcha_completed",
    "participated_at",
    "is_winner",
    "winner_position",
    "winner_selected_at",
    "status",
    "entry_number",
    "delivered",
    "delivered_at",
)
_EXPORT_TEXT_COLUMNS = (2, 3, 4)  # what users typed: neutralised against formula injection


@dataclass(frozen=True)
class GiveawayStats:
    """A giveaway's figures, each from one indexed lookup."""

    total: int
    captcha_pending: int
    winners: int
    unsubscribed: int
    delivered: int
    drawn: bool

    @property
    def captcha_completed(self) -> int:
        # Only users who passed the captcha can have an entry.
        return self.total

    @property
    def active(self) -> int:
        return self.total - self.unsubscribed


@dataclass(frozen=True)
class Page:
    """One page of a giveaway's entries: the figures up front, the rows as a stream of chunks."""

    total: int
    page: int | None
    limit: int
    total_pages: int
    next_cursor: str | None
    chunks: Iterator[str]  # JSON objects joined by commas


def count_participants(giveaway_id: int) -> int:
    """How many entries the giveaway has: those numbered, and the few not numbered yet."""
    with read_only() as session:
        return _entry_count(session, giveaway_id)


def giveaway_stats(giveaway_id: int) -> GiveawayStats:
    """Totals for the Giveaway service's five-minute poll and the Dashboard."""
    with read_only() as session:
        total = _entry_count(session, giveaway_id)
        winners, delivered = session.execute(
            select(func.count(), func.count().filter(Participant.delivered.is_(True)))
            .select_from(Participant)
            .where(Participant.giveaway_id == giveaway_id, Participant.is_winner)
        ).one()
        unsubscribed = session.scalar(
            select(func.count())
            .select_from(Participant)
            .where(Participant.giveaway_id == giveaway_id, Participant.status != "active")
        )
        drawn = session.scalar(
            select(DrawRecord.id).where(DrawRecord.giveaway_id == giveaway_id).limit(1)
        )
    return GiveawayStats(
        total=total,
        captcha_pending=captcha.pending_count(giveaway_id),
        winners=winners or 0,
        unsubscribed=unsubscribed or 0,
        delivered=delivered or 0,
        drawn=drawn is not None,
    )


def list_page(*, giveaway_id: int, page: int, limit: int, cursor: str | None = None) -> Page:
    """Entries ``(page-1)·limit + 1 .. page·limit`` (or after ``cursor``), in entry order."""
    total = _numbered_total(giveaway_id)
    if cursor:
        try:
            (after,) = decode_cursor(cursor, CURSOR_KIND, 1)
        except InvalidCursor:
            raise ValidationFailed(
                "Invalid input: check cursor.", details={"cursor": "not a cursor of this list"}
            ) from None
        if type(after) is not int or not 0 <= after <= MAX_POSITION - limit:
            raise ValidationFailed("Invalid input: check cursor.", details={"cursor": "malformed"})
        page_number = None
    else:
        after = (page - 1) * limit
        page_number = page
    last = after + limit
    return Page(
        total=total,
        page=page_number,
        limit=limit,
        total_pages=math.ceil(total / limit),
        next_cursor=encode_cursor(CURSOR_KIND, last) if last < total else None,
        chunks=_stream_rows(giveaway_id, after, last),
    )


def _stream_rows(giveaway_id: int, after: int, last: int) -> Iterator[str]:
    """The page's rows as JSON objects joined by commas, one chunk at a time."""
    if _on_postgres():
        yield from _postgres_json_chunks(giveaway_id, after, last)
        return
    for rows in _stream(giveaway_id, after, last):
        objects = [
            {
                "id": row[0],
                "user_id": row[1],
                "username": row[2],
                "first_name": row[3],
                "last_name": row[4],
                "captcha_completed": True,
                "participated_at": isoformat(row[5]),
                "is_winner": row[6],
                "winner_position": row[7],
                "winner_selected_at": isoformat(row[8]),
                "status": row[9],
                "entry_number": row[10],
            }
            for row in rows
        ]
        yield json.dumps(objects, ensure_ascii=False)[1:-1]


def export_csv(giveaway_id: int) -> Iterator[str]:
    """Every entry as CSV text, header first, streamed in chunks."""
    total = _numbered_total(giveaway_id)
    yield csv_chunk([EXPORT_HEADER], text_columns=())
    if _on_postgres():
        yield from _postgres_csv_chunks(giveaway_id, total)
        return
    for rows in _stream(giveaway_id, 0, None):
        yield csv_chunk(
            (
                (
                    row[0],
                    row[1],
                    row[2],
                    row[3],
                    row[4],
                    "true",
                    isoformat(row[5]),
                    "true" if row[6] else "false",
                    row[7],
                    isoformat(row[8]),
                    row[9],
                    row[10],
                    "" if row[11] is None else ("true" if row[11] else "false"),
                    isoformat(row[12]),
                )
                for row in rows
            ),
            text_columns=_EXPORT_TEXT_COLUMNS,
        )


def _stream(giveaway_id: int, after: int, last: int | None) -> Iterator[list[Any]]:
    """Raw rows of the entry-number range (after, last], CHUNK_ROWS at a time."""
    query = (
        select(*_COLUMNS)
        .where(Participant.giveaway_id == giveaway_id, Participant.entry_number > after)
        .order_by(Participant.entry_number)
        .execution_options(stream_results=True, yield_per=CHUNK_ROWS)
    )
    if last is not None:
        query = query.where(Participant.entry_number <= last)
    with read_snapshot() as session:
        yield from session.execute(query).partitions()


# --- PostgreSQL writes the JSON and the CSV itself: no Python object per row -------------------

_UTC_TEXT = """to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')"""
# A cell a spreadsheet would run as a formula gets a leading quote (utils/csv_export.neutralise).
_NEUTRALISED = (
    """CASE WHEN left({0}, 1) IN ('=', '+', '-', '@', chr(9), chr(13), chr(10)) """
    """THEN chr(39) || {0} ELSE {0} END"""
)
# Built from constants only; the values are bound parameters.
_JSON_CHUNK = text(
    "SELECT string_agg(json_build_object("  # noqa: S608
    "'id', id, 'user_id', user_id, 'username', username, 'first_name', first_name, "
    "'last_name', last_name, 'captcha_completed', true, "
    f"'participated_at', {_UTC_TEXT.format('participated_at')}, "
    "'is_winner', is_winner, 'winner_position', winner_position, "
    f"'winner_selected_at', {_UTC_TEXT.format('winner_selected_at')}, "
    "'status', status, 'entry_number', entry_number)::text, ',' ORDER BY entry_number) "
    "FROM participant_entries WHERE giveaway_id = :giveaway_id "
    "AND entry_number > :after AND entry_number <= :last"
)
# A text cell as CSV: quoted, quotes doubled (NULL stays an empty cell).
_CSV_TEXT = """CASE WHEN {0} IS NULL THEN '' ELSE '"' || replace({0}, '"', '""') || '"' END"""
_CSV_CHUNK = text(
    "SELECT string_agg(concat_ws(',', id, user_id, "  # noqa: S608 - constants only
    f"{_CSV_TEXT.format(_NEUTRALISED.format('username'))}, "
    f"{_CSV_TEXT.format(_NEUTRALISED.format('first_name'))}, "
    f"{_CSV_TEXT.format(_NEUTRALISED.format('last_name'))}, 'true', "
    f"coalesce({_UTC_TEXT.format('participated_at')}, ''), "
    "CASE WHEN is_winner THEN 'true' ELSE 'false' END, coalesce(winner_position::text, ''), "
    f"coalesce({_UTC_TEXT.format('winner_selected_at')}, ''), status, entry_number, "
    "CASE WHEN delivered IS NULL THEN '' WHEN delivered THEN 'true' ELSE 'false' END, "
    f"coalesce({_UTC_TEXT.format('delivered_at')}, '')) || chr(10), '' ORDER BY entry_number) "
    "FROM participant_entries WHERE giveaway_id = :giveaway_id "
    "AND entry_number > :after AND entry_number <= :last"
)
COPY_ROWS = 20_000


def _on_postgres() -> bool:
    return db.engine.dialect.name == "postgresql"


def _postgres_json_chunks(giveaway_id: int, after: int, last: int) -> Iterator[str]:
    with read_snapshot() as session:
        for start in range(after, last, CHUNK_ROWS):
            chunk = session.scalar(
                _JSON_CHUNK,
                {"giveaway_id": giveaway_id, "after": start, "last": min(start + CHUNK_ROWS, last)},
            )
            if not chunk:
                return
            yield chunk


def _postgres_csv_chunks(giveaway_id: int, total: int) -> Iterator[str]:
    """CSV lines written by PostgreSQL, COPY_ROWS entries at a time (memory stays flat).

    Plain queries rather than COPY, which psycopg2 refuses under gevent's wait callback.
    """
    with read_snapshot() as session:
        for start in range(0, total, COPY_ROWS):
            last = min(start + COPY_ROWS, total)
            chunk = session.scalar(
                _CSV_CHUNK, {"giveaway_id": giveaway_id, "after": start, "last": last}
            )
            if chunk:
                yield chunk


def _entry_count(session, giveaway_id: int) -> int:
    numbered = session.scalar(
        select(GiveawayState.entry_count).where(GiveawayState.giveaway_id == giveaway_id)
    )
    if numbered is None:
        return 0
    return numbered + pending_entries(session, giveaway_id)


def _numbered_total(giveaway_id: int) -> int:
    """Number whatever is pending, then the count: a page is then a range of numbers."""
    with read_only() as session:
        pending = has_pending(session, giveaway_id)
    if pending:
        number_pending(giveaway_id)
    with read_only() as session:
        return _entry_count(session, giveaway_id)
