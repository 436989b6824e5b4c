"""(j) Telegram's limits (issue 15): a burst of first-time users against a Telegram that allows one
bot 30 getChatMember calls in any second (429 with retry_after beyond) and answers in 100 ms,
with the service's defaults (TELEGRAM_CALLS_PER_SECOND 20, SUBSCRIPTION_OVERFLOW=defer) and the
pending verifier running beside it (`flask verify-pending --loop`); then the draw at once, while
entries are still pending; then the verifier drains the queue for a bounded time.

Reported: the calls Telegram answered each second (at or under the budget), its 429s (target
0), the outcomes (entered, pending, refused), the registrations' p50/p99, the draw's seconds,
and the time after the burst until no entry is pending (measured when the queue drained in the
window, else projected from the rate it drained at, and said so)."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.request
from contextlib import suppress

from bench.harness import (
    HOST,
    SERVICE_PORT,
    STANDIN_LIMITED_PORT,
    TELEGRAM_LIMIT_PER_SECOND,
    VENV_BIN,
    WORK,
    Bench,
    BenchError,
    connect,
    expect,
    fetch,
    log,
    run_wrk,
    service_env,
)
from bench.scales import target
from bench.world import POOL_BASE
from devtools.backends import TOKENS
from devtools.drand_chain import DEV_CHAIN

BUDGET_PER_SECOND = 20  # the service's default TELEGRAM_CALLS_PER_SECOND
WRK_THREADS = 4


def run(bench: Bench) -> None:
    """(j) the burst of first-time users against a limiting Telegram, then the draw and the drain."""
    scale = bench.scale
    connections, burst_seconds, drain_window = (
        (256, 60, 120) if scale.name == "full" else (32, 4, 15)
    )
    settings = {
        "telegram_port": STANDIN_LIMITED_PORT,
        "workers": 2,
        "worker_class": bench.single_class,
        "subscription_cache_seconds": 0,
        "env": (("TELEGRAM_CALLS_PER_SECOND", str(BUDGET_PER_SECOND)),),
    }
    bench.stack.start_service("j-telegram-limits", **settings)
    _empty_queue()
    gid = bench.world.fresh_giveaway()
    before = _telegram_counts()
    verifier = _start_verifier(settings, bench)
    sampler = PendingSampler(gid)
    burst_started = time.time()
    sampler.start()
    try:
        per_thread = scale.pool_users // WRK_THREADS
        stats = run_wrk(
            port=SERVICE_PORT,
            script="register.lua",
            threads=WRK_THREADS,
            connections=connections,
            seconds=burst_seconds,
            args=[
                "/api/participants/register",
                str(gid),
                str(POOL_BASE),
                str(per_thread),
                TOKENS["bot"],
                str(WORK / f"j-confirmed-{gid}"),
            ],
            log_file=bench.logs / "wrk.log",
        )
        burst_ended = time.time()
        time.sleep(1)  # registrations cut off at wrk's deadline finish
        outcomes = _outcomes(gid)
        draw_started = time.time()
        drawn = fetch(
            "POST",
            f"/api/participants/{gid}/select-winners",
            token=TOKENS["giveaway"],
            body={"winner_count": scale.winners},
            timeout=60,
        )
        body = expect(drawn, 200, f"draw of giveaway {gid} after the burst")
        drain = _drain(gid, burst_ended, drain_window)
    finally:
        sampler.stop()
        _stop(verifier)
    after = _telegram_counts()
    timeline = _timeline(before, after, burst_started, sampler.pending_by_second)
    answered = [point["answered"] for point in timeline]
    refused_429 = after["refused_429"] - before["refused_429"]
    record = body["draw"]
    wait = _beacon_wait_of(record, draw_started)
    bench.results["j_telegram"] = {
        "what": f"{connections} connections of first-time users for {burst_seconds} s, every registration a getChatMember; the stand-in's Telegram answers in 100 ms and allows one bot {TELEGRAM_LIMIT_PER_SECOND} calls in any second (429 beyond); TELEGRAM_CALLS_PER_SECOND={BUDGET_PER_SECOND} (default), SUBSCRIPTION_OVERFLOW=defer (default), `flask verify-pending --loop` running; then the draw of {scale.winners} at once, then the queue drained for at most {drain_window} s",
        "mode": "defer",
        "connections": connections,
        "seconds": burst_seconds,
        "budget_per_second": BUDGET_PER_SECOND,
        "telegram_limit_per_second": TELEGRAM_LIMIT_PER_SECOND,
        "registrations": {**outcomes, "refused": stats["other"], "wrk_created": stats["created"]},
        "p50_ms": stats["p50_ms"],
        "p99_ms": stats["p99_ms"],
        "get_chat_member_calls": after["calls"] - before["calls"],
        "max_calls_in_a_second": max(answered, default=0),
        "refused_429": refused_429,
        "drain_seconds": drain["seconds"],
        "drain_measured": drain["measured"],
        "pending_after_window": drain["left"],
        "draw_seconds": round(drawn.seconds, 3),
        "draw_seconds_beyond_beacon_wait": round(drawn.seconds - wait, 3),
        "draw_winners": len(body["winners"]),
        "draw_skipped": len(body["skipped"]),
        "timeline": timeline,
        "targets": [
            target("429s from Telegram", refused_429, 0, "<="),
            target("registrations refused (defer)", stats["other"], 0, "<="),
            target(
                "most getChatMember calls answered in one second",
                max(answered, default=0),
                BUDGET_PER_SECOND + 1,
                "<=",
            ),
            target(
                "draw (s) beyond the wait for the beacon round",
                round(drawn.seconds - wait, 3),
                30.0,
                "<=",
                informative=True,
            ),
        ],
    }
    log(
        f"  j: {outcomes['entered']} entered, {outcomes['pending']} pending, {stats['other']} refused; "
        f"p99 {stats['p99_ms']:.0f} ms; {max(answered, default=0)} calls in the busiest second, "
        f"{refused_429} 429s; draw {drawn.seconds:.2f} s; drained in {drain['seconds']} s"
        f"{'' if drain['measured'] else ' (projected)'}"
    )
    bench.stack.stop_server()


class PendingSampler(threading.Thread):
    """The giveaway's pending entries, once a second."""

    def __init__(self, giveaway_id: int) -> None:
        super().__init__(daemon=True)
        self.giveaway_id = giveaway_id
        self.pending_by_second: dict[int, int] = {}
        self._halt = threading.Event()

    def run(self) -> None:
        with connect() as connection:
            connection.autocommit = True
            cursor = connection.cursor()
            while not self._halt.is_set():
                self.pending_by_second[int(time.time())] = _pending(cursor, self.giveaway_id)
                self._halt.wait(1.0)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)


def _empty_queue() -> None:
    """No entry pending from an earlier run of a kept database: the verifier would take those
    (the oldest) first, and this run's drain would measure theirs."""
    with connect() as connection, connection.cursor() as cursor:
        cursor.execute("DELETE FROM participant_pending_verifications")
        cursor.execute("UPDATE participant_entries SET status = 'active' WHERE status = 'pending'")


def _pending(cursor, giveaway_id: int) -> int:
    cursor.execute(
        "SELECT count(*) FROM participant_entries WHERE giveaway_id = %s AND status = 'pending'",
        (giveaway_id,),
    )
    return cursor.fetchone()[0]


def _outcomes(giveaway_id: int) -> dict[str, int]:
    with connect() as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT status, count(*) FROM participant_entries WHERE giveaway_id = %s "
            "GROUP BY status",
            (giveaway_id,),
        )
        counts = dict(cursor.fetchall())
    return {
        "entered": counts.get("active", 0),
        "pending": counts.get("pending", 0),
        "excluded": counts.get("excluded", 0),
    }


def _drain(giveaway_id: int, burst_ended: float, window: float) -> dict:
    """Seconds after the burst until no entry is pending: measured within ``window``, else
    projected from the rate the queue drained at."""
    with connect() as connection:
        connection.autocommit = True
        cursor = connection.cursor()
        start_count, started = _pending(cursor, giveaway_id), time.time()
        left = start_count
        while left and time.time() - started < window:
            time.sleep(1)
            left = _pending(cursor, giveaway_id)
        now = time.time()
    if not left:
        return {"seconds": round(now - burst_ended, 1), "measured": True, "left": 0}
    rate = (start_count - left) / max(now - started, 1e-9)
    if rate <= 0:
        return {"seconds": None, "measured": False, "left": left}
    return {"seconds": round(now - burst_ended + left / rate, 1), "measured": False, "left": left}


def _telegram_counts() -> dict:
    with urllib.request.urlopen(
        f"http://{HOST}:{STANDIN_LIMITED_PORT}/_standin/telegram", timeout=10
    ) as answer:
        return json.load(answer)


def _timeline(before: dict, after: dict, started: float, pending: dict[int, int]) -> list[dict]:
    """Per second since the burst started: getChatMember answered, 429s, pending entries."""
    first = int(started)
    answered = _since(before["answered_by_second"], after["answered_by_second"])
    refused = _since(before["refused_by_second"], after["refused_by_second"])
    last = max([first, *answered, *refused, *pending])
    return [
        {
            "second": second - first,
            "answered": answered.get(second, 0),
            "refused_429": refused.get(second, 0),
            "pending": pending.get(second),
        }
        for second in range(first, last + 1)
    ]


def _since(before: dict[str, int], after: dict[str, int]) -> dict[int, int]:
    return {int(k): v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def _beacon_wait_of(record: dict, started: float) -> float:
    """How long of the draw lay before its beacon round's publication."""
    if record.get("beacon") is None:
        return 0.0
    return max(0.0, DEV_CHAIN.time_of(record["beacon"]["round"]) - started)


def _start_verifier(settings: dict, bench: Bench) -> subprocess.Popen:
    env = service_env(
        telegram_port=settings["telegram_port"],
        subscription_cache_seconds=settings["subscription_cache_seconds"],
        env=settings["env"],
    )
    log_file = open(bench.logs / "j-verify-pending.log", "w")  # noqa: SIM115 - closed by _stop
    process = subprocess.Popen(
        [str(VENV_BIN / "flask"), "verify-pending", "--loop", "--interval", "1"],
        cwd=bench.stack.app_dir,
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    process.log_file = log_file  # type: ignore[attr-defined]
    time.sleep(1.0)
    if process.poll() is not None:
        raise BenchError(f"flask verify-pending exited at once: see {bench.logs}")
    return process


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)
    if process.poll() is None:
        process.kill()
    process.log_file.close()  # type: ignore[attr-defined]
