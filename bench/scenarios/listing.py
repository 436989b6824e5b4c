"""(e) The whole-list request the Giveaway service makes (``?page=1&limit=<total>``): its seconds
and the worker's memory for the largest giveaway."""

from __future__ import annotations

from bench.harness import Bench, BenchError, expect, fetch, log
from bench.measure import measure_one_request
from bench.scales import TARGETS, target
from bench.world import LIST_IDS
from devtools.backends import TOKENS


def run(bench: Bench) -> None:
    """(e) the Giveaway service's whole-list request of the largest giveaway."""
    gid = LIST_IDS[2]
    result = list_once(bench, gid, bench.scale.list_limit, "e-list")
    bench.results["e_list"] = {
        "what": f"GET /api/participants/{{id}}?page=1&limit={bench.scale.list_limit} of a {bench.world.giveaways[gid]:,}-entrant giveaway, WEB_CONCURRENCY=1 {bench.single_class}",
        **result,
        "targets": [
            target("request (s)", result["seconds"], TARGETS["e_seconds"], "<="),
            target("worker RSS growth (MB)", result["peak_growth_mb"], TARGETS["e_rss_mb"], "<="),
        ],
    }


def list_once(bench: Bench, gid: int, limit: int, label: str) -> dict:
    """One measured list request of ``limit`` rows (after a warm-up list of another giveaway)."""
    entrants = bench.world.giveaways[gid]
    warm_gid = LIST_IDS[0]

    def warm() -> None:
        expect(
            fetch(
                "GET",
                f"/api/participants/{warm_gid}?page=1&limit=1000",
                token=TOKENS["giveaway"],
                keep_body=True,
            ),
            200,
            "warm-up list",
        )

    fetched, memory = measure_one_request(
        bench,
        label,
        lambda: fetch(
            "GET",
            f"/api/participants/{gid}?page=1&limit={limit}",
            token=TOKENS["giveaway"],
            count=b'"user_id"',
            keep_body=False,
        ),
        warm,
    )
    expected_rows = min(limit, entrants)
    if fetched.status != 200 or fetched.counted != expected_rows:
        raise BenchError(
            f"list {gid} limit {limit}: HTTP {fetched.status}, {fetched.counted} rows (expected {expected_rows})"
        )
    result = {
        "entrants": entrants,
        "limit": limit,
        "rows": fetched.counted,
        "seconds": round(fetched.seconds, 3),
        "first_byte_s": round(fetched.first_byte_seconds, 3),
        "mb": round(fetched.nbytes / 1e6, 1),
        **{k: v for k, v in memory.items() if k != "samples"},
    }
    log(
        f"  {label}: {fetched.counted:,} rows in {result['seconds']} s ({result['mb']} MB), peak growth {result['peak_growth_mb']} MB"
    )
    return result
