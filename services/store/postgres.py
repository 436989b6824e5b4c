"""The store on PostgreSQL: the production database.

Hot-path statements (a registration's read and write, the numbering a registration triggers) are
prepared once per pooled connection (``services/store/prepared.py``) and run on a second engine
whose connections are always in autocommit mode: no BEGIN/COMMIT round trips, and a multi-statement
string runs as one transaction on the server. Lists, the export and the draw's entrant list are
written by PostgreSQL itself (JSON, CSV, "<id>\\n" text), a chunk at a time along an index, so no
Python object is built per row.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from services.store import EntryAttempt, EntryRequest, ExistingEntry, Standing
from services.store.prepared import Prepared, fetch_one

# The advisory lock namespace of this service in the shared database ("tg" + 0x1e).
LOCK_NAMESPACE = 0x7467_1E
# Rows per chunk of a list page, of the CSV export and of the draw's entrant list. A streamed
# list or export starts with FIRST_CHUNK_ROWS and doubles up to its full chunk: a client that asks
# for a whole giveaway and never reads costs a few small chunks (what fits its socket's buffers),
# and one that reads gets full chunks after a few round trips.
FIRST_CHUNK_ROWS = 100
PAGE_CHUNK_ROWS = 5_000
EXPORT_CHUNK_ROWS = 20_000
ENTRANTS_CHUNK_ROWS = 200_000
# Connections per worker for the chunks of streamed answers (see PostgresStore.streams).
STREAM_CONNECTIONS = 2

_STANDING = Prepared(
    "participant_standing",
    """
SELECT u.captcha_completed_at, u.username, u.first_name, u.last_name, e.id, e.participated_at,
       e.status
FROM participant_users u
LEFT JOIN participant_entries e ON e.user_id = u.user_id AND e.giveaway_id = %(giveaway_id)s
WHERE u.user_id = %(user_id)s
""",
    {"giveaway_id": "bigint", "user_id": "bigint"},
)

# A registration's shared advisory lock on its giveaway (a draw closing the giveaway takes it
# exclusively), sent in the same string as the write below, so it is held for its transaction.
_ENTER_LOCK = "SELECT pg_advisory_xact_lock_shared(%(lock_namespace)s, %(lock_key)s)"
# The whole registration write in one round trip, on a snapshot taken after the lock: Telegram's
# fresh "subscribed" answer remembered (when given), and the entry with its audit event, only if
# the captcha is done, a fresh or recent-enough "subscribed" answer exists and entries are open.
# The answer also says what was missing, and names an existing entry.
_ENTER = Prepared(
    "participant_enter",
    """
WITH captcha AS (
    SELECT 1 FROM participant_users
    WHERE user_id = %(user_id)s AND captcha_completed_at IS NOT NULL
), fresh AS (
    INSERT INTO participant_memberships (channel_id, user_id, status, verified_at)
    SELECT %(channel_id)s, %(user_id)s, %(status)s, %(verified_at)s
    WHERE %(verified_at)s IS NOT NULL
    ON CONFLICT (channel_id, user_id)
        DO UPDATE SET status = EXCLUDED.status, verified_at = EXCLUDED.verified_at
    RETURNING verified_at
), member AS (
    SELECT verified_at FROM fresh
    UNION ALL
    SELECT verified_at FROM participant_memberships
    WHERE channel_id = %(channel_id)s AND user_id = %(user_id)s AND verified_at > %(since)s
      AND %(verified_at)s IS NULL
), entry AS (
    INSERT INTO participant_entries
        (giveaway_id, user_id, username, first_name, last_name, participated_at,
         subscription_verified_at)
    SELECT %(giveaway_id)s, %(user_id)s, %(username)s, %(first_name)s, %(last_name)s, %(now)s,
           member.verified_at
    FROM member
    WHERE EXISTS (SELECT 1 FROM captcha)
      AND EXISTS (SELECT 1 FROM participant_giveaways
                  WHERE giveaway_id = %(giveaway_id)s AND closed_at IS NULL)
    ON CONFLICT (giveaway_id, user_id) DO NOTHING
    RETURNING id
), event AS (
    INSERT INTO participant_audit_events
        (occurred_at, event_type, giveaway_id, user_id, actor, request_id, facts)
    SELECT %(now)s, 'participation', %(giveaway_id)s, %(user_id)s, %(actor)s, %(request_id)s,
           jsonb_build_object('participant_id', entry.id)
    FROM entry
)
SELECT (SELECT id FROM entry), EXISTS (SELECT 1 FROM captcha), EXISTS (SELECT 1 FROM member),
       existing.id, existing.participated_at, existing.status
FROM (VALUES (1)) AS one
LEFT JOIN participant_entries existing
       ON existing.giveaway_id = %(giveaway_id)s AND existing.user_id = %(user_id)s
""",
    {
        "giveaway_id": "bigint",
        "user_id": "bigint",
        "username": "text",
        "first_name": "text",
        "last_name": "text",
        "now": "timestamptz",
        "channel_id": "bigint",
        "status": "text",
        "verified_at": "timestamptz",
        "since": "timestamptz",
        "actor": "text",
        "request_id": "text",
    },
)

# The same write for a registration Telegram could not answer in time (SUBSCRIPTION_OVERFLOW=
# defer): the entry as 'pending', its row in the queue of pending verifications and its audit
# event, in one round trip, if the captcha is done and entries are open (no subscription needed).
_ENTER_PENDING = Prepared(
    "participant_enter_pending",
    """
WITH captcha AS (
    SELECT 1 FROM participant_users
    WHERE user_id = %(user_id)s AND captcha_completed_at IS NOT NULL
), entry AS (
    INSERT INTO participant_entries
        (giveaway_id, user_id, username, first_name, last_name, participated_at, status)
    SELECT %(giveaway_id)s, %(user_id)s, %(username)s, %(first_name)s, %(last_name)s, %(now)s,
           'pending'
    WHERE EXISTS (SELECT 1 FROM captcha)
      AND EXISTS (SELECT 1 FROM participant_giveaways
                  WHERE giveaway_id = %(giveaway_id)s AND closed_at IS NULL)
    ON CONFLICT (giveaway_id, user_id) DO NOTHING
    RETURNING id
), queued AS (
    INSERT INTO participant_pending_verifications
        (participant_id, giveaway_id, user_id, account_id, enqueued_at, next_attempt_at)
    SELECT entry.id, %(giveaway_id)s, %(user_id)s, %(account_id)s, %(now)s, %(now)s
    FROM entry
), event AS (
    INSERT INTO participant_audit_events
        (occurred_at, event_type, giveaway_id, user_id, actor, request_id, facts)
    SELECT %(now)s, 'participation', %(giveaway_id)s, %(user_id)s, %(actor)s, %(request_id)s,
           jsonb_build_object('participant_id', entry.id, 'subscription_pending', true)
    FROM entry
)
SELECT (SELECT id FROM entry), EXISTS (SELECT 1 FROM captcha), false,
       existing.id, existing.participated_at, existing.status
FROM (VALUES (1)) AS one
LEFT JOIN participant_entries existing
       ON existing.giveaway_id = %(giveaway_id)s AND existing.user_id = %(user_id)s
""",
    {
        "giveaway_id": "bigint",
        "user_id": "bigint",
        "username": "text",
        "first_name": "text",
        "last_name": "text",
        "now": "timestamptz",
        "account_id": "bigint",
        "actor": "text",
        "request_id": "text",
    },
)

# Number up to ``limit`` unnumbered entries in id order under the state row's lock, skipping the
# giveaway when another transaction holds that lock. The lock is re-read without locking too: if
# the two disagree, a numbering committed between this statement's snapshot and its lock, so the
# unnumbered entries it sees are stale and nothing is done (the next call numbers them).
_NUMBER_PENDING = Prepared(
    "participant_number_pending",
    """
WITH state AS (
    SELECT entry_count FROM participant_giveaways
    WHERE giveaway_id = %(giveaway_id)s
    FOR UPDATE SKIP LOCKED
), seen AS (
    SELECT entry_count FROM participant_giveaways WHERE giveaway_id = %(giveaway_id)s
), batch AS (
    SELECT e.id, state.entry_count + row_number() OVER (ORDER BY e.id) AS number
    FROM participant_entries e, state, seen
    WHERE e.giveaway_id = %(giveaway_id)s AND e.entry_number IS NULL
      AND state.entry_count = seen.entry_count
    ORDER BY e.id
    LIMIT %(limit)s
), numbered AS (
    UPDATE participant_entries e SET entry_number = batch.number
    FROM batch WHERE e.id = batch.id
    RETURNING 1
)
UPDATE participant_giveaways SET entry_count = entry_count + (SELECT count(*) FROM numbered)
WHERE giveaway_id = %(giveaway_id)s AND EXISTS (SELECT 1 FROM state)
RETURNING (SELECT count(*) FROM numbered)
""",
    {"giveaway_id": "bigint", "limit": "bigint"},
)
# Numbers can always be given again after a crash: the batch need not wait for the WAL flush.
_NUMBERING_DURABILITY = "SET LOCAL synchronous_commit TO OFF"
# Waiting for the state row in a statement of its own: the numbering statement after it then
# takes its snapshot holding the lock.
_NUMBERING_WAIT = (
    "SELECT 1 FROM participant_giveaways WHERE giveaway_id = %(giveaway_id)s FOR UPDATE"
)

_EXCLUDE_REGISTRATIONS = text("SELECT pg_advisory_xact_lock(:lock_namespace, :lock_key)")

_UTC_TEXT = """to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')"""
# A cell a spreadsheet would run as a formula gets a leading quote (utils/csv_export.neutralise).
_NEUTRALISED = (
    """CASE WHEN left({0}, 1) IN ('=', '+', '-', '@', chr(9), chr(13), chr(10)) """
    """THEN chr(39) || {0} ELSE {0} END"""
)
# A text cell as CSV: quoted, quotes doubled (NULL stays an empty cell).
_CSV_TEXT = """CASE WHEN {0} IS NULL THEN '' ELSE '"' || replace({0}, '"', '""') || '"' END"""
# Built from constants only; the values are bound parameters.
_PAGE_CHUNK = text(
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
_EXPORT_CHUNK = text(
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
# The published entrant list ("<id>\n" per entrant) along the (giveaway_id, user_id) index.
_ENTRANTS_CHUNK = text(
    "SELECT string_agg(user_id::text || chr(10), '' ORDER BY user_id) FROM "
    "(SELECT user_id FROM participant_entries WHERE giveaway_id = :giveaway_id "
    "AND user_id > :after ORDER BY user_id LIMIT :rows) AS chunk"
)


def _growing(start: int, stop: int, largest: int) -> Iterator[tuple[int, int]]:
    """(after, last] ranges covering (start, stop]: FIRST_CHUNK_ROWS long, then each twice the one
    before, up to ``largest``."""
    size = min(FIRST_CHUNK_ROWS, largest)
    while start < stop:
        end = min(start + size, stop)
        yield start, end
        start, size = end, min(2 * size, largest)


def lock_key(giveaway_id: int) -> dict[str, int]:
    """The advisory lock of a giveaway's entries, as bind parameters."""
    return {"lock_namespace": LOCK_NAMESPACE, "lock_key": giveaway_id % 2_147_483_647}


class PostgresStore:
    """The ``Store`` on PostgreSQL."""

    def __init__(self, engine: Engine, engine_options: dict[str, Any]) -> None:
        # A second engine whose pooled connections are always in autocommit mode: sharing the
        # main pool would switch a connection's isolation level at every checkout and back.
        # Disposing of the main engine (tests, forks) disposes of this one too.
        self.autocommit = create_engine(
            engine.url,
            isolation_level="AUTOCOMMIT",
            pool_reset_on_return=None,  # no transaction is ever left open on these
            **engine_options,
        )
        # The chunks of lists, exports and entrant lists take turns on a pool of their own, a
        # few connections a worker: a hundred clients reading whole giveaways at once then queue
        # for these, and registrations keep their pools (and most of the database's CPU).
        self.streams = create_engine(
            engine.url,
            isolation_level="AUTOCOMMIT",
            pool_reset_on_return=None,
            **{**engine_options, "pool_size": STREAM_CONNECTIONS, "pool_timeout": 10},
        )
        for extra in (self.autocommit, self.streams):
            event.listen(engine, "engine_disposed", lambda _engine, extra=extra: extra.dispose())

    @contextmanager
    def read_only(self) -> Iterator[Session]:
        """Reads on an autocommit connection: each statement its own snapshot, no round trip
        to begin or end a transaction."""
        with Session(self.autocommit, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def stream_reads(self) -> Iterator[Session]:
        with Session(self.streams, expire_on_commit=False) as session:
            yield session

    def insert(self, table: Any) -> Any:
        return postgresql.insert(table)

    def standing(self, *, user_id: int, giveaway_id: int) -> Standing:
        row = fetch_one(
            self.autocommit, _STANDING, {"giveaway_id": giveaway_id, "user_id": user_id}
        )
        return Standing.from_row(row)

    def enter(self, request: EntryRequest) -> EntryAttempt:
        parameters = _entry_parameters(
            request,
            channel_id=request.channel_id,
            status=request.fresh_status,
            verified_at=request.fresh_verified_at,
            since=request.remembered_since,
        )
        return _attempt(fetch_one(self.autocommit, _ENTER, parameters, first=_ENTER_LOCK))

    def enter_pending(self, request: EntryRequest) -> EntryAttempt:
        parameters = _entry_parameters(request, account_id=request.account_id)
        row = fetch_one(self.autocommit, _ENTER_PENDING, parameters, first=_ENTER_LOCK)
        return _attempt(row)

    def exclude_registrations(self, session: Session, giveaway_id: int) -> None:
        session.execute(_EXCLUDE_REGISTRATIONS, lock_key(giveaway_id))

    def number_pending(self, giveaway_id: int, *, wait: bool, limit: int) -> int:
        first = f"{_NUMBERING_DURABILITY};\n{_NUMBERING_WAIT}" if wait else _NUMBERING_DURABILITY
        row = fetch_one(
            self.autocommit,
            _NUMBER_PENDING,
            {"giveaway_id": giveaway_id, "limit": limit},
            first=first,
        )
        return row[0] if row else 0

    def page_json(self, giveaway_id: int, after: int, last: int) -> Iterator[str]:
        for start, end in _growing(after, last, PAGE_CHUNK_ROWS):
            chunk = self._scalar(_PAGE_CHUNK, giveaway_id=giveaway_id, after=start, last=end)
            if not chunk:
                return
            yield chunk

    def export_csv(self, giveaway_id: int, total: int) -> Iterator[str]:
        for start, end in _growing(0, total, EXPORT_CHUNK_ROWS):
            chunk = self._scalar(_EXPORT_CHUNK, giveaway_id=giveaway_id, after=start, last=end)
            if chunk:
                yield chunk

    def entrant_chunks(self, giveaway_id: int) -> Iterator[str]:
        after = 0
        while True:
            chunk = self._scalar(
                _ENTRANTS_CHUNK, giveaway_id=giveaway_id, after=after, rows=ENTRANTS_CHUNK_ROWS
            )
            if not chunk:
                return
            yield chunk
            after = int(chunk[:-1].rsplit("\n", 1)[-1])  # the chunk's last user id

    def _scalar(self, statement: Any, **parameters: Any) -> Any:
        """One chunk's statement on a stream connection, given back before returning."""
        with self.streams.connect() as connection:
            return connection.execute(statement, parameters).scalar()


def _entry_parameters(request: EntryRequest, **extra: Any) -> dict[str, Any]:
    """The bind parameters both registration writes share, with ``extra``, and the lock's."""
    return {
        "giveaway_id": request.giveaway_id,
        "user_id": request.user_id,
        "username": request.username,
        "first_name": request.first_name,
        "last_name": request.last_name,
        "now": request.now,
        "actor": request.actor,
        "request_id": request.request_id,
        **extra,
        **lock_key(request.giveaway_id),
    }


def _attempt(row: tuple) -> EntryAttempt:
    """An entry write's answer: (new id, captcha done, subscription known, existing entry's id,
    time and status)."""
    participant_id, captcha_completed, subscribed, existing_id, existing_at, status = row
    return EntryAttempt(
        participant_id=participant_id,
        captcha_completed=captcha_completed,
        subscribed=subscribed,
        existing=None if existing_id is None else ExistingEntry(existing_id, existing_at, status),
    )
