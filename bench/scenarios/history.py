"""(g) A heavy user's history (first page), in a table of millions of entries: latency under
a light steady load (wrk, 2 connections)."""

from __future__ import annotations

from bench.harness import SERVICE_PORT, WORK, Bench, BenchError, expect, fetch, log, run_wrk
from bench.measure import Profiler
from bench.scales import TARGETS, target
from devtools.backends import TOKENS


def run(bench: Bench) -> None:
    """(g) GET /api/participants/history/{user} of the heavy users, latency percentiles."""
    bench.stack.start_service("g", worker_class=bench.single_class)
    paths = WORK / "history-paths.txt"
    paths.write_text(
        "".join(f"/api/participants/history/{user}\n" for user in bench.world.history_users)
    )
    check = expect(
        fetch(
            "GET",
            f"/api/participants/history/{bench.world.history_users[0]}",
            token=TOKENS["dashboard"],
        ),
        200,
        "history",
    )
    participations = check["user_stats"]["total_participations"]
    run_wrk(
        port=SERVICE_PORT,
        script="get.lua",
        threads=1,
        connections=2,
        seconds=max(1, bench.scale.history_seconds // 3),
        args=[str(paths), TOKENS["dashboard"]],
        log_file=bench.logs / "wrk.log",
    )
    stats = run_wrk(
        port=SERVICE_PORT,
        script="get.lua",
        threads=1,
        connections=2,
        seconds=bench.scale.history_seconds,
        args=[str(paths), TOKENS["dashboard"]],
        log_file=bench.logs / "wrk.log",
    )
    if bench.profile:
        profiler = Profiler(bench.stack.workers(), WORK / "profile-g-history")
        run_wrk(
            port=SERVICE_PORT,
            script="get.lua",
            threads=1,
            connections=2,
            seconds=6,
            args=[str(paths), TOKENS["dashboard"]],
            log_file=bench.logs / "wrk.log",
        )
        bench.profiles["g-history"] = profiler.stop()
    bench.stack.stop_server()
    if stats["ok"] == 0 or (bench.scale.name == "smoke" and stats["other"]):
        raise BenchError(f"history: {stats['ok']} ok, {stats['other']} other")
    result = {
        "what": f"GET /api/participants/history/{{user}} (first page, 50) for {len(bench.world.history_users)} users with {participations} participations each, table of {bench.world.total_entries:,} entries; wrk 2 connections, {bench.single_class}",
        "participations_per_user": participations,
        "table_entries": bench.world.total_entries,
        "requests": stats["requests"],
        "rps": round(stats["requests"] / (stats["duration_us"] / 1e6), 1),
        "p50_ms": stats["p50_ms"],
        "p95_ms": stats["p95_ms"],
        "p99_ms": stats["p99_ms"],
        "errors": stats["other"] + stats["status_errors"],
        "targets": [target("p95 (ms)", stats["p95_ms"], TARGETS["g_p95_ms"], "<=")],
    }
    bench.results["g_history"] = result
    log(
        f"  g: p50 {stats['p50_ms']:.1f} ms, p95 {stats['p95_ms']:.1f} ms over {stats['requests']} requests"
    )
