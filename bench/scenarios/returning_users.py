"""(a) Returning users registering: captcha done, every cache warm, 32 connections, Telegram
answering at once; the service's confirmed registrations a second against the ceiling's."""

from __future__ import annotations

from bench.harness import Bench
from bench.registration_load import load_run, measure_in_rounds, throughput_ratio
from bench.scales import TARGETS, target


def run(bench: Bench) -> None:
    """(a) returning users registering, 32 connections, Telegram answering at once."""
    runs = []
    for worker_class, threads in bench.scale.a_classes:
        run = measure_in_rounds(
            bench,
            "a",
            worker_class,
            threads,
            connections=32,
            ceiling_path="/register",
            prewarm_per_thread=bench.scale.a_prewarm_per_thread,
        )
        tag = run["tag"]
        # The same shape of work as the service's (one getChatMember, then the INSERT), for scale.
        ceiling_checked = None
        if bench.scale.a_checked:
            ceiling_checked = load_run(
                bench,
                app="ceiling",
                path="/register-checked",
                connections=32,
                wrk_threads=2,
                label=f"a-ceiling-checked-{tag}",
            )
        # Informative: the same users with nothing remembered, each registration asking
        # Telegram (answering at once), i.e. the work of the ceiling's /register-checked.
        service_fresh = None
        if bench.scale.a_checked:
            bench.stack.start_service(
                tag, worker_class=worker_class, threads=threads, subscription_cache_seconds=0
            )
            service_fresh = load_run(
                bench,
                app="service",
                path="/api/participants/register",
                connections=32,
                wrk_threads=2,
                label=f"a-service-fresh-{tag}",
            )
        bench.stack.stop_server()
        runs.append(run)
        if ceiling_checked is not None and service_fresh is not None:
            run["ceiling_checked"] = ceiling_checked
            run["service_fresh"] = service_fresh
            run["ratio_fresh_to_checked"] = round(
                throughput_ratio(service_fresh, ceiling_checked), 4
            )
    primary = next((run for run in runs if run["worker_class"] == bench.single_class), runs[0])
    bench.results["a_returning_register"] = {
        "what": "returning user registering (captcha done, caches warm: giveaway, channel, bot token, and the user's subscription verified by verify-subscription within SUBSCRIPTION_CACHE_SECONDS), 32 connections",
        "runs": runs,
        "targets": [
            target("ratio to ceiling /register", primary["ratio"], TARGETS["a_ratio"], ">="),
            target(
                "worst round's p99 against the ceiling's worst round's p99",
                round(primary["service"]["p99_ms"] / primary["ceiling"]["p99_ms"], 2),
                TARGETS["a_p99_to_ceiling"],
                "<=",
            ),
            target("errors", primary["service"]["errors"], 0, "<="),
            target(
                "new entries == confirmed 201s", primary["service"]["entries_match"], True, "=="
            ),
        ]
        + (
            [
                target(
                    "nothing remembered (a fresh getChatMember answered at once) vs ceiling /register-checked",
                    primary["ratio_fresh_to_checked"],
                    TARGETS["a_ratio"],
                    ">=",
                    informative=True,
                )
            ]
            if "ratio_fresh_to_checked" in primary
            else []
        ),
        "targets_for": f"{primary['worker_class']} (the production default); every run is listed",
    }
