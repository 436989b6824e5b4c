"""(d) The draw: its seconds and the worker's memory for the largest giveaway, with the
subscription re-check on; and the re-check's cost when Telegram answers in 100 ms."""

from __future__ import annotations

from bench.harness import (
    STANDIN_FAST_PORT,
    STANDIN_SLOW_PORT,
    TELEGRAM_SLOW_MS,
    Bench,
    BenchError,
    expect,
    fetch,
    log,
)
from bench.measure import measure_one_request
from bench.scales import TARGETS, target
from bench.world import DRAW_IDS, SLOW_DRAW_ID
from devtools.backends import TOKENS


def run(bench: Bench) -> None:
    """(d) the draw among the most entrants, then the same re-check with Telegram at 100 ms."""
    big = DRAW_IDS[2]
    result = draw(bench, big, "d-draw")
    bench.results["d_draw"] = {
        "what": f"draw of {bench.scale.winners} winners among {bench.world.giveaways[big]:,} entrants, DRAW_RECHECK_SUBSCRIPTION=true (default), Telegram stand-in answering at once, WEB_CONCURRENCY=1 {bench.single_class}",
        **result,
        "targets": [
            target("request (s)", result["seconds"], TARGETS["d_seconds"], "<="),
            target("worker RSS growth (MB)", result["peak_growth_mb"], TARGETS["d_rss_mb"], "<="),
        ],
    }
    slow = draw(bench, SLOW_DRAW_ID, "d-draw-telegram-100ms", telegram_port=STANDIN_SLOW_PORT)
    bench.results["d_draw_telegram_100ms"] = {
        "what": f"the same draw's re-check cost when Telegram answers in {TELEGRAM_SLOW_MS} ms ({bench.world.giveaways[SLOW_DRAW_ID]:,} entrants: the entrant count barely matters here)",
        **slow,
        "targets": [
            target(
                "request (s) with real Telegram latency",
                slow["seconds"],
                TARGETS["d_seconds"],
                "<=",
                informative=True,
            )
        ],
    }


def draw(bench: Bench, gid: int, label: str, *, telegram_port: int = STANDIN_FAST_PORT) -> dict:
    """One measured draw of ``bench.scale.winners`` winners (after a warm-up draw elsewhere)."""
    entrants = bench.world.giveaways[gid]
    fetched, memory = measure_one_request(
        bench,
        label,
        lambda: fetch(
            "POST",
            f"/api/participants/{gid}/select-winners",
            token=TOKENS["giveaway"],
            body={"winner_count": bench.scale.winners},
        ),
        lambda: _warm_up(bench),
        telegram_port=telegram_port,
    )
    body = expect(fetched, 200, f"draw of giveaway {gid}")
    if (
        body["already_drawn"]
        or body["total_participants"] != entrants
        or len(body["winners"]) != min(bench.scale.winners, entrants - len(body["skipped"]))
    ):
        raise BenchError(
            f"draw {gid}: unexpected answer (already_drawn {body['already_drawn']}, total {body['total_participants']}, winners {len(body['winners'])})"
        )
    result = {
        "entrants": entrants,
        "winners": len(body["winners"]),
        "skipped_by_recheck": len(body["skipped"]),
        "get_chat_member_calls": len(body["winners"]) + len(body["skipped"]),
        "seconds": round(fetched.seconds, 3),
        **{k: v for k, v in memory.items() if k != "samples"},
    }
    log(
        f"  {label}: {entrants:,} entrants, {result['seconds']} s, peak growth {result['peak_growth_mb']} MB, {result['get_chat_member_calls']} getChatMember"
    )
    return result


def _warm_up(bench: Bench) -> None:
    gid = bench.world.warmup_draws.pop()
    expect(
        fetch(
            "POST",
            f"/api/participants/{gid}/select-winners",
            token=TOKENS["giveaway"],
            body={"winner_count": 3},
        ),
        200,
        "warm-up draw",
    )
