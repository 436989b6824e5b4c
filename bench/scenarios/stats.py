"""(h) A giveaway's statistics (what the Giveaway service polls every 5 minutes) for the largest
giveaway: the first request and the steady latency."""

from __future__ import annotations

from bench.harness import Bench, expect, fetch, log, percentile
from bench.scales import TARGETS, target
from bench.world import DRAW_IDS
from devtools.backends import TOKENS


def run(bench: Bench) -> None:
    """(h) GET /api/participants/{id}/stats of the largest giveaway, sequential requests."""
    gid = DRAW_IDS[2]
    bench.stack.start_service("h", worker_class=bench.single_class)
    first = fetch("GET", f"/api/participants/{gid}/stats", token=TOKENS["giveaway"])
    body = expect(first, 200, "stats")
    times = []
    for _ in range(bench.scale.stats_requests):
        fetched = fetch("GET", f"/api/participants/{gid}/stats", token=TOKENS["giveaway"])
        expect(fetched, 200, "stats")
        times.append(fetched.seconds * 1000)
    bench.stack.stop_server()
    result = {
        "what": f"GET /api/participants/{{id}}/stats of a {bench.world.giveaways[gid]:,}-entrant giveaway (after its draw), sequential requests, {bench.single_class}",
        "total_participants": body["stats"]["total_participants"],
        "first_ms": round(first.seconds * 1000, 2),
        "p50_ms": round(percentile(times, 50), 2),
        "p95_ms": round(percentile(times, 95), 2),
        "max_ms": round(max(times), 2),
        "requests": len(times),
        "targets": [
            target("p95 (ms)", round(percentile(times, 95), 2), TARGETS["h_ms"], "<="),
            target("first request (ms)", round(first.seconds * 1000, 2), TARGETS["h_ms"], "<="),
        ],
    }
    bench.results["h_stats"] = result
    log(f"  h: first {result['first_ms']} ms, p95 {result['p95_ms']} ms")
