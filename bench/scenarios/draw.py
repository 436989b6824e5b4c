"""(d) The draw: its seconds and the worker's memory for the largest giveaway, with the
subscription re-check on and the drand round of the stand-in's development chain (period 3 s, as
quicknet), the time between the close and that round's publication told apart; the same draw's
work with DRAW_BEACON=off (nothing to build the entrant tree beside); the entrant tree's build and
proof costs at that size; and the re-check's cost when Telegram answers in 100 ms."""

from __future__ import annotations

import random
import statistics
import time
import tracemalloc
from array import array

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
from bench.world import DRAW_IDS, SLOW_DRAW_ID, undo_draw
from devtools.backends import TOKENS
from devtools.drand_chain import DEV_CHAIN
from utils import entrant_tree

PROOF_REQUESTS = 50


def run(bench: Bench) -> None:
    """(d) the draw among the most entrants (with the beacon, then without), the entrant tree's
    costs, then the same re-check with Telegram at 100 ms."""
    big = DRAW_IDS[2]
    result = draw(bench, big, "d-draw")
    proofs = proof_latency(bench, big, result.pop("entrant_sample"))
    undo_draw(big)
    off = draw(bench, big, "d-draw-beacon-off", draw_beacon="off")
    off.pop("entrant_sample")
    tree = tree_costs(bench.world.giveaways[big])
    bench.results["d_draw"] = {
        "what": f"draw of {bench.scale.winners} winners among {bench.world.giveaways[big]:,} entrants, DRAW_RECHECK_SUBSCRIPTION=true (default), the drand round of the stand-in's chain (period 3 s), Telegram stand-in answering at once, WEB_CONCURRENCY=1 {bench.single_class}; then the same giveaway drawn again with DRAW_BEACON=off; the entrant tree built in the bench's own process on as many ids",
        **result,
        "beacon_off_seconds": off["seconds"],
        "beacon_off_peak_growth_mb": off["peak_growth_mb"],
        **tree,
        **proofs,
        "targets": [
            target(
                "request (s) beyond the wait for the beacon round",
                result["seconds_beyond_beacon_wait"],
                TARGETS["d_seconds"],
                "<=",
            ),
            target(
                "worker RSS growth (MB), beacon on or off",
                max(result["peak_growth_mb"], off["peak_growth_mb"]),
                TARGETS["d_rss_mb"],
                "<=",
            ),
            target(
                "request (s) with DRAW_BEACON=off (the tree not overlapped)",
                off["seconds"],
                TARGETS["d_seconds"],
                "<=",
                informative=True,
            ),
        ],
    }
    slow = draw(bench, SLOW_DRAW_ID, "d-draw-telegram-100ms", telegram_port=STANDIN_SLOW_PORT)
    slow.pop("entrant_sample")
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


def draw(
    bench: Bench,
    gid: int,
    label: str,
    *,
    telegram_port: int = STANDIN_FAST_PORT,
    draw_beacon: str = "drand",
) -> dict:
    """One measured draw of ``bench.scale.winners`` winners (after a warm-up draw elsewhere)."""
    entrants = bench.world.giveaways[gid]
    started: list[float] = []

    def request():
        started.append(time.time())
        return fetch(
            "POST",
            f"/api/participants/{gid}/select-winners",
            token=TOKENS["giveaway"],
            body={"winner_count": bench.scale.winners},
        )

    fetched, memory = measure_one_request(
        bench,
        label,
        request,
        lambda: _warm_up(bench),
        telegram_port=telegram_port,
        draw_beacon=draw_beacon,
    )
    body = expect(fetched, 200, f"draw of giveaway {gid}")
    record = body["draw"]
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
        **_beacon_wait(record, started[0], fetched.seconds),
        **{k: v for k, v in memory.items() if k != "samples"},
        "entrant_sample": [w["user_id"] for w in record["winners"] + record["skipped"]],
    }
    log(
        f"  {label}: {entrants:,} entrants, {result['seconds']} s, peak growth {result['peak_growth_mb']} MB, {result['get_chat_member_calls']} getChatMember"
    )
    return result


def _beacon_wait(record: dict, started: float, seconds: float) -> dict:
    """How long of the request lay before its beacon round's publication (the close waits for
    a round when the list is big, and the entrant tree is built while the next one comes), and
    the rest."""
    if record["beacon"] is None:
        return {}
    published = DEV_CHAIN.time_of(record["beacon"]["round"])
    wait = max(0.0, min(published, started + seconds) - started)
    return {
        "beacon_round_wait_s": round(wait, 3),
        "seconds_beyond_beacon_wait": round(seconds - wait, 3),
    }


def tree_costs(entrants: int) -> dict:
    """The entrant tree over as many ascending ids, in this process: its build, its memory and
    the time of one proof made from one chunk and the chunk roots (as the proof endpoint does)."""
    user_ids = array("q", range(7_000_000_000, 7_000_000_000 + 3 * entrants, 3))
    key = bytes(32)
    started = time.perf_counter()
    tree = entrant_tree.build_tree(user_ids, key)
    build = time.perf_counter() - started
    tracemalloc.start()  # a second build for its memory: tracing slows it several times
    entrant_tree.build_tree(user_ids, key)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    roots = tree.chunk_roots
    chunks = len(tree.chunk_first_ids)
    timings = []
    for chunk in random.Random(7).choices(range(chunks), k=20):
        ids = user_ids[chunk * entrant_tree.CHUNK : (chunk + 1) * entrant_tree.CHUNK]
        started = time.perf_counter()
        entrant_tree.proof_in_chunk(key, chunk, ids, roots, ids[len(ids) // 2])
        timings.append(time.perf_counter() - started)
    log(f"  entrant tree of {entrants:,}: built in {build:.3f} s, peak {peak / 1e6:.0f} MB")
    return {
        "tree_build_s": round(build, 3),
        "tree_build_peak_mb": round(peak / 1e6, 1),
        "tree_proof_from_chunk_ms": round(statistics.median(timings) * 1000, 2),
        "tree_proof_hashes": len(tree.proof(entrants // 2).path),
    }


def proof_latency(bench: Bench, gid: int, user_ids: list[int]) -> dict:
    """GET .../draw/proof/{user_id} for entrants of the drawn giveaway, one after another."""
    bench.stack.start_service("d-proofs", reuse=True, workers=1, worker_class=bench.single_class)
    timings = []
    for user_id in (user_ids * PROOF_REQUESTS)[:PROOF_REQUESTS]:
        fetched = fetch(
            "GET", f"/api/participants/{gid}/draw/proof/{user_id}", token=TOKENS["giveaway"]
        )
        expect(fetched, 200, f"proof of {user_id}")
        timings.append(fetched.seconds)
    timings.sort()
    return {
        "proof_request_p50_ms": round(timings[len(timings) // 2] * 1000, 1),
        "proof_request_max_ms": round(timings[-1] * 1000, 1),
    }


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
