"""The synthetic world the benchmarks run on: which giveaways and users exist, loaded with COPY
into a fresh ``participant_bench`` (or reused with ``--keep-db``), and the schema's invariants."""

from __future__ import annotations

import hashlib
import itertools
import json
import secrets
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
import redis

from bench.harness import DB_NAME, PG_ADMIN_DSN, REDIS_URL, BenchError, connect, log, migrate
from bench.scales import Scale

# Entrants are users 1_000_000_000 + k (every last digit: 20 % of them, ending in 0 or 9, are
# "not members" for the stand-in, so a draw's re-check skips some candidates, as in real life).
ENTRANT_BASE = 1_000_000_000
POOL_BASE = 5_000_000_000  # returning users for the throughput runs (ids ending in 1..8)
WARM_BASE = 5_900_000_000  # a few returning users for single warm-up registrations
CAPTCHA_BASE = 6_000_000_000  # new users (no row anywhere) for the register + captcha flow
HISTORY_BASE = 7_000_000_000  # heavy users: one entry in every filler giveaway

DRAW_IDS = (1101, 1102, 1103)  # draws at the three sizes of the cost curve
LIST_IDS = (1201, 1202, 1203)  # lists at the three sizes; the largest also serves (e), (f)
SLOW_DRAW_ID = 1301  # a draw whose re-check waits 100 ms per getChatMember
WARMUP_DRAW_BASE = 1401  # tiny giveaways: one warm-up draw before each measured draw
WARMUP_DRAW_COUNT = 12
FILLER_BASE = 3000
LOAD_GIVEAWAY_BASE = 5001  # fresh giveaways for the throughput runs and the captcha flow
T0 = 1_748_736_000  # 2025-06-01T00:00:00Z


def pool_user(index: int, base: int = POOL_BASE) -> int:
    """The index-th user id ending in 1..8 above ``base`` (the formula of register.lua)."""
    return base + (index // 8) * 10 + index % 8 + 1


# --- loading -------------------------------------------------------------------------------------


def create_database() -> None:
    """``participant_bench`` dropped (its sessions ended) and created empty."""
    admin = connect(PG_ADMIN_DSN)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (DB_NAME,)
        )
        cursor.execute(f"DROP DATABASE IF EXISTS {DB_NAME}")
        cursor.execute(f"CREATE DATABASE {DB_NAME}")
    admin.close()


class LineStream:
    """A file-like object over an iterator of text chunks, for psycopg2's copy_expert (streamed)."""

    def __init__(self, chunks: Iterator[str]) -> None:
        self._chunks = chunks
        self._buffer = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            try:
                self._buffer += next(self._chunks).encode()
            except StopIteration:
                break
        if size < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    readline = read


def batched_lines(lines: Iterable[str], batch: int = 20_000) -> Iterator[str]:
    """The lines joined ``batch`` at a time."""
    buffer: list[str] = []
    for line in lines:
        buffer.append(line)
        if len(buffer) >= batch:
            yield "".join(buffer)
            buffer.clear()
    if buffer:
        yield "".join(buffer)


def copy_rows(cursor, table: str, columns: str, lines: Iterable[str]) -> None:
    """COPY tab-separated ``lines`` into ``table``, streamed."""
    cursor.copy_expert(
        f"COPY {table} ({columns}) FROM STDIN", LineStream(batched_lines(lines)), size=1 << 20
    )


def _stamp(epoch_seconds: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch_seconds))


@dataclass
class Giveaway:
    """A giveaway to load: its entrants, in entry order, one every ``step_ms`` from ``start``."""

    giveaway_id: int
    users: list[int] | range
    start: int  # epoch seconds of its first entry
    step_ms: int = 10


@dataclass
class World:
    """Everything loaded, so the benchmarks know which ids to use."""

    scale: Scale
    giveaways: dict[int, int] = field(default_factory=dict)  # id -> entrants
    history_users: list[int] = field(default_factory=list)
    total_entries: int = 0
    load_seconds: float = 0.0
    next_giveaway: int = LOAD_GIVEAWAY_BASE
    captcha_next: int = 0
    warmup_draws: list[int] = field(
        default_factory=lambda: list(range(WARMUP_DRAW_BASE, WARMUP_DRAW_BASE + WARMUP_DRAW_COUNT))
    )

    def fresh_giveaway(self) -> int:
        """A giveaway id no run has used yet."""
        self.next_giveaway += 1
        return self.next_giveaway - 1


def plan_world(scale: Scale) -> tuple[list[Giveaway], list[int]]:
    """The giveaways to load and the heavy history users."""
    giveaways: list[Giveaway] = []
    universe = scale.universe

    def entrants(gid: int, size: int, offset: int | None = None) -> range:
        if offset is None:
            offset = (gid * 7919) % max(1, universe - size)
        return range(ENTRANT_BASE + offset, ENTRANT_BASE + offset + size)

    for index, size in enumerate(scale.curve):
        giveaways.append(
            Giveaway(
                DRAW_IDS[index],
                entrants(DRAW_IDS[index], size, 0 if index == 2 else None),
                T0 + index * 3600,
            )
        )
        giveaways.append(
            Giveaway(
                LIST_IDS[index],
                entrants(LIST_IDS[index], size, universe - size if index == 2 else None),
                T0 + (3 + index) * 3600,
            )
        )
    giveaways.append(
        Giveaway(SLOW_DRAW_ID, entrants(SLOW_DRAW_ID, scale.slow_draw_entrants), T0 + 7 * 3600)
    )
    for index in range(WARMUP_DRAW_COUNT):
        gid = WARMUP_DRAW_BASE + index
        giveaways.append(
            Giveaway(gid, entrants(gid, scale.warmup_entrants), T0 + 8 * 3600 + index * 60)
        )
    history = [pool_user(index, HISTORY_BASE) for index in range(scale.history_users)]
    loaded = sum(len(g.users) for g in giveaways)
    per_filler = max(1, -(-(scale.table_target - loaded) // scale.filler_giveaways) - len(history))
    for index in range(scale.filler_giveaways):
        gid = FILLER_BASE + index
        users = list(entrants(gid, per_filler)) + history
        giveaways.append(Giveaway(gid, users, T0 + (24 + index) * 3600))
    return giveaways, history


def entry_lines(giveaways: list[Giveaway]) -> Iterator[str]:
    """COPY lines of ``participant_entries``: every giveaway's entrants, numbered 1..N."""
    for giveaway in giveaways:
        gid = giveaway.giveaway_id
        last_second, prefix = -1, ""
        for number, user_id in enumerate(giveaway.users, start=1):
            ms = number * giveaway.step_ms
            second = giveaway.start + ms // 1000
            if second != last_second:
                last_second, prefix = second, _stamp(second)
            stamp = f"{prefix}.{ms % 1000:03d}+00"
            yield f"{gid}\t{user_id}\t{number}\tu{user_id}\tName {user_id % 997}\t\\N\t{stamp}\t{stamp}\n"


def user_lines(user_ids: Iterable[int], completed: str) -> Iterator[str]:
    """COPY lines of ``participant_users``, each with the captcha completed at ``completed``."""
    for user_id in user_ids:
        yield f"{user_id}\t{completed}\t{completed}\tu{user_id}\tName {user_id % 997}\t\\N\n"


def load_world(scale: Scale) -> World:
    """Load the planned giveaways and users (and the ceiling app's table) into the empty database."""
    started = time.perf_counter()
    giveaways, history = plan_world(scale)
    world = World(scale=scale, history_users=history)
    conn = connect()
    with conn, conn.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
        states = []
        for giveaway in giveaways:
            seed = secrets.token_bytes(32)
            created = _stamp(giveaway.start - 60) + "+00"
            states.append(
                f"{giveaway.giveaway_id}\t42\t{len(giveaway.users)}\t{seed.hex()}\t"
                f"{hashlib.sha256(seed).hexdigest()}\t{created}\t{created}\n"
            )
            world.giveaways[giveaway.giveaway_id] = len(giveaway.users)
        copy_rows(
            cursor,
            "participant_giveaways",
            "giveaway_id, account_id, entry_count, next_seed, next_commitment, committed_at, created_at",
            states,
        )
        users = itertools.chain(
            range(ENTRANT_BASE, ENTRANT_BASE + scale.universe),
            (pool_user(i) for i in range(scale.pool_users)),
            (pool_user(i, WARM_BASE) for i in range(200)),
            history,
        )
        copy_rows(
            cursor,
            "participant_users",
            "user_id, captcha_completed_at, created_at, username, first_name, last_name",
            user_lines(users, _stamp(T0 - 86_400) + "+00"),
        )
        copy_rows(
            cursor,
            "participant_entries",
            "giveaway_id, user_id, entry_number, username, first_name, last_name, participated_at, subscription_verified_at",
            entry_lines(giveaways),
        )
        cursor.execute(
            "CREATE TABLE bench_ceiling_entries (id bigserial PRIMARY KEY, giveaway_id bigint NOT NULL, "
            "user_id bigint NOT NULL, username varchar(256), first_name varchar(256), "
            "last_name varchar(256), participated_at timestamptz NOT NULL DEFAULT now(), "
            "UNIQUE (giveaway_id, user_id))"
        )
    world.total_entries = sum(world.giveaways.values())
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) participant_entries")
        cursor.execute("VACUUM (ANALYZE) participant_users")
        cursor.execute("VACUUM (ANALYZE) participant_giveaways")
    conn.close()
    world.load_seconds = time.perf_counter() - started
    return world


def save_world(world: World) -> None:
    """Remember what was loaded in the database itself (``bench_meta``), for ``--keep-db``."""
    conn = connect()
    with conn, conn.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_meta (key text PRIMARY KEY, value text NOT NULL)")
        document = {
            "scale": world.scale.name,
            "giveaways": world.giveaways,
            "history_users": world.history_users,
            "total_entries": world.total_entries,
            "load_seconds": world.load_seconds,
        }
        cursor.execute("INSERT INTO bench_meta VALUES ('world', %s)", (json.dumps(document),))
    conn.close()


def undo_draws(cursor, giveaway_ids: list[int]) -> None:
    """Undo these giveaways' draws, closures and committed lists, so they can be drawn again."""
    # The draw tables refuse DELETE (append-only triggers): bypassed for this session only.
    cursor.execute("SET session_replication_role = replica")
    cursor.execute("DELETE FROM participant_draws WHERE giveaway_id = ANY(%s)", (giveaway_ids,))
    cursor.execute("SELECT to_regclass('participant_entrant_commitments') IS NOT NULL")
    if cursor.fetchone()[0]:  # a kept database from before revision 0007 has none
        cursor.execute(
            "DELETE FROM participant_entrant_commitments WHERE giveaway_id = ANY(%s)",
            (giveaway_ids,),
        )
    cursor.execute(
        "UPDATE participant_entries SET is_winner = false, winner_position = NULL, "
        "winner_selected_at = NULL, status = 'active' WHERE giveaway_id = ANY(%s) "
        "AND (is_winner OR status <> 'active')",
        (giveaway_ids,),
    )
    cursor.execute(
        "UPDATE participant_giveaways SET closed_at = NULL WHERE giveaway_id = ANY(%s)",
        (giveaway_ids,),
    )
    cursor.execute("SET session_replication_role = DEFAULT")


def undo_draw(giveaway_id: int) -> None:
    """Undo one giveaway's draw (to draw it again under other settings)."""
    conn = connect()
    try:
        with conn, conn.cursor() as cursor:
            undo_draws(cursor, [giveaway_id])
    finally:
        conn.close()


def reuse_world(scale: Scale) -> World | None:
    """The world of an earlier run of the same scale, its draws undone; None when there is none."""
    try:
        conn = connect()
    except psycopg2.Error:
        return None
    try:
        with conn, conn.cursor() as cursor:
            cursor.execute("SELECT value FROM bench_meta WHERE key = 'world'")
            document = json.loads(cursor.fetchone()[0])
            if document["scale"] != scale.name:
                return None
            drawn = [
                *DRAW_IDS,
                SLOW_DRAW_ID,
                *range(WARMUP_DRAW_BASE, WARMUP_DRAW_BASE + WARMUP_DRAW_COUNT),
            ]
            undo_draws(cursor, drawn)
            cursor.execute(
                "SELECT greatest(%s, (SELECT max(giveaway_id) FROM participant_giveaways), "
                "(SELECT max(giveaway_id) FROM bench_ceiling_entries))",
                (LOAD_GIVEAWAY_BASE,),
            )
            next_giveaway = cursor.fetchone()[0] + 1
            cursor.execute(
                "SELECT max(user_id) FROM participant_users WHERE user_id BETWEEN %s AND %s",
                (CAPTCHA_BASE, HISTORY_BASE),
            )
            top = cursor.fetchone()[0]
    except (psycopg2.Error, TypeError, KeyError):
        return None
    finally:
        conn.close()
    world = World(
        scale=scale,
        giveaways={int(k): v for k, v in document["giveaways"].items()},
        history_users=document["history_users"],
        total_entries=document["total_entries"],
        load_seconds=document["load_seconds"],
        next_giveaway=next_giveaway,
        captcha_next=0 if top is None else (top - CAPTCHA_BASE) // 10 * 8 + 8,
    )
    return world


# --- checking ------------------------------------------------------------------------------------


def check_invariants(giveaway_ids: Iterable[int]) -> list[str]:
    """The numbered entries are 1..entry_count, each once (entries are numbered lazily, in
    batches: the ones not numbered yet are allowed and counted apart)."""
    problems = []
    conn = connect()
    with conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT g.giveaway_id, g.entry_count, count(e.entry_number), count(DISTINCT e.entry_number), "
            "coalesce(min(e.entry_number), 0), coalesce(max(e.entry_number), 0) "
            "FROM participant_giveaways g LEFT JOIN participant_entries e USING (giveaway_id) "
            "WHERE g.giveaway_id = ANY(%s) GROUP BY g.giveaway_id, g.entry_count",
            (list(giveaway_ids),),
        )
        for gid, count, numbered, distinct, low, high in cursor.fetchall():
            if not (count == numbered == distinct == high and (numbered == 0 or low == 1)):
                problems.append(
                    f"giveaway {gid}: entry_count {count}, numbered rows {numbered}, "
                    f"distinct numbers {distinct}, range {low}..{high}"
                )
    conn.close()
    return problems


def rows_of(table: str, giveaway_id: int) -> set[int]:
    """The user ids entered in a giveaway (``participant_entries`` or the ceiling's table)."""
    conn = connect()
    with conn, conn.cursor() as cursor:
        cursor.execute(f"SELECT user_id FROM {table} WHERE giveaway_id = %s", (giveaway_id,))
        users = {row[0] for row in cursor.fetchall()}
    conn.close()
    return users


# --- the run's starting point --------------------------------------------------------------------


def prepare(scale: Scale, *, keep_db: bool, app_dir: Path) -> tuple[World, float]:
    """Redis flushed and the database ready: created, migrated and loaded, or with ``keep_db``
    an earlier run's kept (its draws undone) and migrated; the world and the migration's seconds."""
    redis.Redis.from_url(REDIS_URL).flushdb()
    world = reuse_world(scale) if keep_db else None
    if world is not None:
        migrate_seconds = migrate(app_dir)  # a kept database gets the migrations added since
        log(f"database {DB_NAME}: kept (--keep-db), draws reset; {world.total_entries:,} entries")
        return world, migrate_seconds
    log(f"database {DB_NAME}: create, migrate, load")
    create_database()
    migrate_seconds = migrate(app_dir)
    world = load_world(scale)
    save_world(world)
    problems = check_invariants(world.giveaways)
    if problems:
        raise BenchError("loaded data breaks the schema's invariants: " + "; ".join(problems[:5]))
    log(f"  {world.total_entries:,} entries loaded in {world.load_seconds:.1f} s")
    return world, migrate_seconds
