"""(f) The CSV export of the largest giveaway: rows a second, and whether the worker's memory
stays flat while it streams."""

from __future__ import annotations

from bench.harness import Bench, BenchError, expect, fetch, log
from bench.measure import measure_one_request
from bench.scales import TARGETS, target
from bench.world import LIST_IDS
from devtools.backends import TOKENS


def run(bench: Bench) -> None:
    """(f) the CSV export of the largest list giveaway, its memory sampled by quarter."""
    gid = LIST_IDS[2]
    entrants = bench.world.giveaways[gid]

    def warm() -> None:
        expect(
            fetch("GET", f"/api/participants/export/{LIST_IDS[0]}", token=TOKENS["giveaway"]),
            200,
            "warm-up export",
        )

    fetched, memory = measure_one_request(
        bench,
        "f-export",
        lambda: fetch(
            "GET",
            f"/api/participants/export/{gid}",
            token=TOKENS["giveaway"],
            count=b"\n",
            keep_body=False,
        ),
        warm,
    )
    rows = fetched.counted - 1
    if fetched.status != 200 or rows != entrants:
        raise BenchError(f"export {gid}: HTTP {fetched.status}, {rows} rows (expected {entrants})")
    samples = memory["samples"]
    flat = _flatness(samples, memory["rss_before_mb"])
    result = {
        "what": f"CSV export of {entrants:,} entrants, WEB_CONCURRENCY=1 {bench.single_class}",
        "rows": rows,
        "seconds": round(fetched.seconds, 3),
        "rows_per_s": round(rows / fetched.seconds),
        "mb": round(fetched.nbytes / 1e6, 1),
        **{k: v for k, v in memory.items() if k != "samples"},
        "rss_growth_by_quarter_mb": flat,
        "targets": [
            target("rows/s", round(rows / fetched.seconds), TARGETS["f_rows_per_s"], ">="),
            target(
                "peak RSS growth (MB), flat",
                memory["peak_growth_mb"],
                TARGETS["f_flat_mb"],
                "<=",
            ),
        ],
    }
    bench.results["f_export"] = result
    log(
        f"  f-export: {rows:,} rows in {result['seconds']} s = {result['rows_per_s']:,} rows/s, peak growth {memory['peak_growth_mb']} MB, by quarter {flat}"
    )


def _flatness(samples: list[tuple[float, int]], before_mb: float) -> list[float]:
    """RSS growth (MB) at the end of each quarter of the request."""
    if not samples:
        return []
    end = samples[-1][0]
    out = []
    for quarter in (0.25, 0.5, 0.75, 1.0):
        upto = [rss for t, rss in samples if t <= end * quarter] or [samples[0][1]]
        out.append(round(upto[-1] / 1024 - before_mb, 1))
    return out
