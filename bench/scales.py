"""How big a run is (the full run and the smoke run) and the targets its figures are held to."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scale:
    """The sizes and durations of one kind of run."""

    name: str
    curve: tuple[int, int, int]  # entrants of the draw and list giveaways (10k, 100k, 1M)
    universe: int  # distinct entrant users
    pool_users: int  # returning users for the throughput runs
    filler_giveaways: int
    history_users: int
    table_target: int  # entries in the table, at least (filler giveaways make up the rest)
    slow_draw_entrants: int
    warmup_entrants: int
    list_limit: int  # the Giveaway service's whole-list request of benchmark (e)
    winners: int
    load_seconds: int
    warmup_seconds: int
    captcha_seconds: int
    captcha_clients: int
    history_seconds: int
    stats_requests: int
    a_classes: tuple[tuple[str, int], ...]  # (worker class, threads) for (a)
    b_classes: tuple[tuple[str, int], ...]  # for (b)
    b_connections: int
    restart_for_memory: bool
    a_checked: bool  # (a) also measures the ceiling's /register-checked (informative)
    a_prewarm_per_thread: int  # (a): users per wrk thread whose subscription is checked beforehand
    # Rounds of (service run, ceiling run) for the production default worker class: the machine's
    # speed drifts by tens of per cent over minutes, so the two are measured in turn, side by side.
    rounds: int


FULL = Scale(
    name="full",
    curve=(10_000, 100_000, 1_000_000),
    universe=1_200_000,
    pool_users=240_000,
    filler_giveaways=500,
    history_users=20,
    table_target=5_000_000,
    slow_draw_entrants=10_000,
    warmup_entrants=50,
    list_limit=100_000,
    winners=100,
    load_seconds=15,
    warmup_seconds=3,
    captcha_seconds=12,
    captcha_clients=16,
    history_seconds=10,
    stats_requests=60,
    a_classes=(("gevent", 8), ("gthread", 8)),
    b_classes=(("gevent", 8), ("gthread", 8), ("gthread", 32)),
    b_connections=256,
    restart_for_memory=True,
    a_checked=True,
    a_prewarm_per_thread=20_000,
    rounds=3,
)
SMOKE = Scale(
    name="smoke",
    curve=(200, 1_000, 2_000),
    universe=5_000,
    pool_users=16_000,
    filler_giveaways=20,
    history_users=3,
    table_target=8_000,
    slow_draw_entrants=100,
    warmup_entrants=20,
    list_limit=500,
    winners=10,
    load_seconds=2,
    warmup_seconds=1,
    captcha_seconds=2,
    captcha_clients=4,
    history_seconds=1,
    stats_requests=5,
    a_classes=(("gthread", 8),),
    b_classes=(("gevent", 8),),
    b_connections=64,
    restart_for_memory=False,
    a_checked=False,
    a_prewarm_per_thread=1_500,
    rounds=1,
)

TARGETS = {
    "a_ratio": 0.6,
    # A latency only means something beside the ceiling's measured in the same run.
    "a_p99_to_ceiling": 2.0,
    "b_ratio": 0.6,
    "d_seconds": 2.0,
    "d_rss_mb": 250.0,
    "e_seconds": 2.0,
    "e_rss_mb": 100.0,
    "f_rows_per_s": 200_000.0,
    "f_flat_mb": 64.0,
    "g_p95_ms": 15.0,
    "h_ms": 200.0,
    "i_superlinear": 1.3,  # t(10n)/t(n) above 10 × this is worse than linear
}


def target(name: str, measured, goal, op: str, informative: bool = False) -> dict:
    """One row of the report's targets table: ``measured op goal`` and whether it holds."""
    if isinstance(measured, float) and measured != measured:  # NaN
        ok = False
    elif op == ">=":
        ok = measured >= goal
    elif op == "<=":
        ok = measured <= goal
    else:
        ok = measured == goal
    result = {"name": name, "measured": measured, "target": f"{op} {goal}", "pass": bool(ok)}
    if informative:
        result["informative"] = True
    return result
