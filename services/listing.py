"""What the Giveaway service and the Dashboard read about a giveaway: pages, counts, stats, CSV.

Entries are numbered densely per giveaway (1, 2, 3, ... in the order they were accepted), so page
N of size L is the range of entry numbers ((N-1)·L, N·L]: an index range scan on (giveaway_id,
entry_number) that costs the same on page 1 and page 10,000. The store reads the range in chunks,
one query each, and the rows are sent as they come: never loaded whole, never as ORM objects.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain

from sqlalchemy import func, select

from models import DrawRecord, GiveawayState, Participant
from services import captcha
from services.errors import InvalidCursorError, Unavailable
from services.numbering import number_pending, pending_entries
from services.store import store
from services.telegram_budget import LocalPacer
from services.transaction import read_only
from utils.csv_export import csv_chunk
from utils.cursors import MAX_POSITION, InvalidCursor, decode_cursor, encode_cursor
from utils.iterators import started, stream_turn
from utils.pacing import Verdict

CURSOR_KIND = "entries"

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


@dataclass(frozen=True)
class EntryCounts:
    """How many entries a giveaway has, and how many of them are pending verification
    (entered while Telegram was busy) or excluded (found not subscribed then)."""

    total: int
    subscription_pending: int
    excluded: int


@dataclass(frozen=True)
class GiveawayStats:
    """A giveaway's figures, each from one indexed lookup."""

    total: int
    captcha_pending: int
    winners: int
    unsubscribed: int
    delivered: int
    drawn: bool
    subscription_pending: int = 0
    excluded: int = 0

    @property
    def captcha_completed(self) -> int:
        # Only users who passed the captcha can have an entry.
        return self.total

    @property
    def active(self) -> int:
        """Entries that may still win: pending ones count (they are confirmed before they win);
        those found unsubscribed by a draw or excluded by the verifier do not."""
        return self.total - self.unsubscribed - self.excluded


@dataclass(frozen=True)
class Page:
    """One page of a giveaway's entries: the figures up front, the rows as a stream of chunks
    (the first one already read)."""

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


# A process starts at most this many big streams (a list of more than BIG_STREAM_ROWS entries,
# an export) a second; the others wait their turn holding nothing, at most BIG_STREAM_WAIT_SECONDS,
# then get 503 with retry_after. A hundred clients asking for whole giveaways at once would
# otherwise all start in the same second, and every other request of that second would wait for
# them (RELIABILITY.md 3a). The Dashboard's pages are far below BIG_STREAM_ROWS.
BIG_STREAM_ROWS = 1_000
BIG_STREAM_STARTS_PER_SECOND = 8
BIG_STREAM_WAIT_SECONDS = 20.0
_big_starts: dict[int, LocalPacer] = {}


def count_entries(giveaway_id: int) -> EntryCounts:
    """The entry count, with the pending and excluded entries among them."""
    with read_only() as session:
        total = _entry_count(session, giveaway_id)
        statuses = _not_active(session, giveaway_id)
    return EntryCounts(
        total=total,
        subscription_pending=statuses.get("pending", 0),
        excluded=statuses.get("excluded", 0),
    )


def giveaway_stats(giveaway_id: int) -> GiveawayStats:
    """Totals for the Giveaway service's five-minute poll and the Dashboard."""
    with read_only() as session:
        total = _entry_count(session, giveaway_id)
        winners, delivered = session.execute(
            select(func.count(), func.count().filter(Participant.delivered.is_(True)))
            .select_from(Participant)
            .where(Participant.giveaway_id == giveaway_id, Participant.is_winner)
        ).one()
        statuses = _not_active(session, giveaway_id)
        drawn = session.scalar(
            select(DrawRecord.id).where(DrawRecord.giveaway_id == giveaway_id).limit(1)
        )
    return GiveawayStats(
        total=total,
        captcha_pending=captcha.pending_count(giveaway_id),
        winners=winners or 0,
        unsubscribed=statuses.get("unsubscribed", 0),
        delivered=delivered or 0,
        drawn=drawn is not None,
        subscription_pending=statuses.get("pending", 0),
        excluded=statuses.get("excluded", 0),
    )


def list_page(*, giveaway_id: int, page: int, limit: int, cursor: str | None = None) -> Page:
    """Entries ``(page-1)·limit + 1 .. page·limit`` (or after ``cursor``), in entry order."""
    if limit > BIG_STREAM_ROWS:
        _wait_for_a_big_start()
    total = _numbered_total(giveaway_id)
    if cursor:
        try:
            (after,) = decode_cursor(cursor, CURSOR_KIND, int)
        except InvalidCursor:
            raise InvalidCursorError() from None
        page_number = None
    else:
        after = (page - 1) * limit
        page_number = page
    last = min(after + limit, MAX_POSITION)
    return Page(
        total=total,
        page=page_number,
        limit=limit,
        total_pages=math.ceil(total / limit),
        next_cursor=encode_cursor(CURSOR_KIND, last) if last < total else None,
        chunks=started(store().page_json(giveaway_id, after, last)),
    )


def export_csv(giveaway_id: int) -> Iterator[str]:
    """Every entry as CSV text, header first, streamed in chunks; the count and the first chunk
    are read before this returns."""
    _wait_for_a_big_start()
    total = _numbered_total(giveaway_id)
    header = csv_chunk([EXPORT_HEADER], text_columns=range(len(EXPORT_HEADER)))
    return chain((header,), started(store().export_csv(giveaway_id, total)))


def _wait_for_a_big_start() -> None:
    """Wait for this process's next start of a big stream (``BIG_STREAM_STARTS_PER_SECOND``),
    holding nothing; 503 with ``retry_after`` when it is further away than
    ``BIG_STREAM_WAIT_SECONDS``."""
    pid = os.getpid()
    pacer = _big_starts.get(pid)
    if pacer is None:  # made in the worker, after gevent has patched threading
        pacer = _big_starts.setdefault(pid, LocalPacer(max_bots=1))
    slot = pacer.reserve(
        "big streams", rate=BIG_STREAM_STARTS_PER_SECOND, max_wait=BIG_STREAM_WAIT_SECONDS
    )
    if slot.verdict is not Verdict.GRANTED:
        raise Unavailable(
            "Too many whole lists and exports are starting at once; try again shortly.",
            retry_after=slot.retry_after,
        )
    if slot.wait:
        time.sleep(slot.wait)


def _not_active(session, giveaway_id: int) -> dict[str, int]:
    """Entries per status other than ``active`` (the partial index of those entries)."""
    rows = session.execute(
        select(Participant.status, func.count())
        .where(Participant.giveaway_id == giveaway_id, Participant.status != "active")
        .group_by(Participant.status)
    ).all()
    return dict(rows)


def _entry_count(session, giveaway_id: int) -> int:
    numbered = session.scalar(
        select(GiveawayState.entry_count).where(GiveawayState.giveaway_id == giveaway_id)
    )
    if numbered is None:
        return 0
    return numbered + pending_entries(session, giveaway_id)


def _numbered_total(giveaway_id: int) -> int:
    """Number whatever is pending, then the count: a page is then a range of numbers. One
    statement when nothing waits for its number (the usual case), made in the stream's turn on
    the streams' connections: a crowd of whole-list requests must not cost the database three
    statements each, nor make registrations queue for a connection behind them."""
    unnumbered = (
        select(func.count())
        .select_from(Participant)
        .where(Participant.giveaway_id == giveaway_id, Participant.entry_number.is_(None))
        .scalar_subquery()
    )
    with stream_turn(), store().stream_reads() as session:
        row = session.execute(
            select(GiveawayState.entry_count, unnumbered).where(
                GiveawayState.giveaway_id == giveaway_id
            )
        ).one_or_none()
    if row is None:
        return 0
    if not row[1]:
        return row[0]
    number_pending(giveaway_id)
    with read_only() as session:
        return _entry_count(session, giveaway_id)
