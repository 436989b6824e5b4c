"""(b) The burst: 256 connections, every registration a fresh getChatMember that Telegram answers
after 100 ms; the service's confirmed registrations a second against the ceiling's."""

from __future__ import annotations

from bench.harness import STANDIN_SLOW_PORT, TELEGRAM_SLOW_MS, Bench
from bench.registration_load import measure_in_rounds, throughput_ratio
from bench.scales import TARGETS, target


def run(bench: Bench) -> None:
    """(b) the burst: every registration a fresh getChatMember answered after 100 ms, 256 connections."""
    connections = bench.scale.b_connections
    runs = []
    for worker_class, threads in bench.scale.b_classes:
        # Nothing remembered: every registration asks Telegram, as for users the service has
        # not seen in the channel within SUBSCRIPTION_CACHE_SECONDS.
        runs.append(
            measure_in_rounds(
                bench,
                "b",
                worker_class,
                threads,
                connections=connections,
                ceiling_path="/register-checked",
                telegram_port=STANDIN_SLOW_PORT,
                service_settings={"subscription_cache_seconds": 0},
                every_call_fresh=True,
            )
        )
        bench.stack.stop_server()
    best_service = max(runs, key=lambda run: run["service"]["created_rps"])
    best_ceiling = max(runs, key=lambda run: run["ceiling"]["created_rps"])
    default = next((run for run in runs if run["worker_class"] == bench.single_class), runs[0])
    ratio_best = throughput_ratio(best_service["service"], best_ceiling["ceiling"])
    bench.results["b_burst"] = {
        "what": f"the burst: {connections} connections, every registration a fresh getChatMember answered after {TELEGRAM_SLOW_MS} ms",
        "runs": runs,
        "winner": best_service["tag"],
        "default": default["tag"],
        "winner_vs_default": round(
            best_service["service"]["created_rps"] / default["service"]["created_rps"], 2
        )
        if default["service"]["created_rps"]
        else None,
        "ratio_best_service_to_best_ceiling": round(ratio_best, 4),
        "targets": [
            target(
                f"ratio to ceiling /register-checked (best service {best_service['tag']} / best ceiling {best_ceiling['tag']})",
                round(ratio_best, 4),
                TARGETS["b_ratio"],
                ">=",
            ),
            target(
                f"ratio, same worker model ({best_service['tag']})",
                best_service["ratio"],
                TARGETS["b_ratio"],
                ">=",
            ),
        ],
    }
