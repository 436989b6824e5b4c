"""Registrations under load, shared by (a) and (b): wrk runs of ``register.lua`` against the
service and the ceiling app, measured in turn in rounds, each checked against the database."""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.request

from bench.harness import (
    CEILING_PORT,
    HOST,
    SERVICE_PORT,
    STANDIN_FAST_PORT,
    STANDIN_SLOW_PORT,
    WORK,
    Bench,
    BenchError,
    connect,
    expect,
    fetch,
    log,
    run_wrk,
)
from bench.measure import CpuMeter, Profiler, WaitSampler, postgres_pids, processes_named
from bench.world import POOL_BASE, WARM_BASE, check_invariants, pool_user, rows_of
from devtools.backends import TOKENS


def load_run(
    bench: Bench,
    *,
    app: str,
    path: str,
    connections: int,
    wrk_threads: int,
    label: str,
    profile: bool = False,
    prewarm_per_thread: int = 0,
) -> dict:
    """One wrk run of register.lua on a fresh giveaway; the database checked afterwards.

    ``prewarm_per_thread``: the subscription of the first that many users of each wrk thread
    is verified (verify-subscription) before the run, so their registrations find it cached.
    """
    port = SERVICE_PORT if app == "service" else CEILING_PORT
    table = "participant_entries" if app == "service" else "bench_ceiling_entries"
    token = TOKENS["bot"]
    per_thread = bench.scale.pool_users // wrk_threads
    prewarm = None
    if prewarm_per_thread:
        prewarm = prewarm_subscriptions(
            [
                pool_user(thread * per_thread + index)
                for thread in range(wrk_threads)
                for index in range(min(prewarm_per_thread, per_thread))
            ],
            token=token,
        )
        log(
            f"  {label}: subscriptions of {prewarm['users']:,} users verified in {prewarm['seconds']} s"
        )
        # The prewarm's writes are the harness's, not the run's: flushed now, and followed by the
        # warm-up below, so the measured run does not start inside the checkpoint they cause.
        with connect() as connection:
            connection.autocommit = True
            connection.cursor().execute("CHECKPOINT")
    # Warm-up: pools, keep-alive sessions and caches, on a giveaway of its own.
    warm_gid = bench.world.fresh_giveaway()
    run_wrk(
        port=port,
        script="register.lua",
        threads=wrk_threads,
        connections=connections,
        seconds=bench.scale.warmup_seconds,
        args=[path, str(warm_gid), str(POOL_BASE), str(per_thread), token, str(WORK / "warm")],
        log_file=bench.logs / "wrk.log",
    )
    gid = bench.world.fresh_giveaway()
    warm_user = pool_user(gid % 200, WARM_BASE)
    if app == "service":  # the measured giveaway's own cache entry and state row, made once
        first = fetch(
            "POST",
            path,
            port=port,
            token=token,
            body={
                "giveaway_id": gid,
                "user_id": warm_user,
                "username": "warm",
                "first_name": "Warm",
                "last_name": None,
            },
        )
        expect(first, 201, f"{label}: warm-up registration")
    prefix = WORK / f"confirmed-{gid}"
    # --gil: only the thread holding the GIL is sampled, so the profile is where the CPU goes.
    profiler = (
        Profiler(bench.stack.workers(), WORK / f"profile-{label}", gil=True) if profile else None
    )
    meter = CpuMeter(
        {
            "app workers": bench.stack.workers,
            "postgres": postgres_pids,
            "redis": lambda: processes_named("redis-server"),
            "stand-ins": bench.stack.standin_pids,
        }
    )
    asked_before = telegram_calls()
    with (
        WaitSampler("telegive-participant" if app == "service" else "bench-ceiling") as waits,
        meter,
    ):
        stats = run_wrk(
            port=port,
            script="register.lua",
            threads=wrk_threads,
            connections=connections,
            seconds=bench.scale.load_seconds,
            args=[path, str(gid), str(POOL_BASE), str(per_thread), token, str(prefix)],
            log_file=bench.logs / "wrk.log",
        )
    if profiler:
        bench.profiles[label] = profiler.stop()
    asked = telegram_calls() - asked_before
    # Let requests that wrk cut off at its deadline finish on the server before counting.
    previous, rows = -1, set()
    for _ in range(50):
        rows = rows_of(table, gid) - {warm_user}
        if len(rows) == previous:
            break
        previous = len(rows)
        time.sleep(0.2)
    confirmed: set[int] = set()
    for part in WORK.glob(f"confirmed-{gid}-*.txt"):
        confirmed |= {int(line[1:]) for line in part.read_text().split() if line.startswith("r")}
    seconds = stats["duration_us"] / 1e6
    responses = stats["created"] + stats["ok200"] + stats["other"]
    in_flight = max(0, stats["sent"] - responses)
    missing = confirmed - rows  # a confirmed registration without its entry: never acceptable
    extra = rows - confirmed  # entries whose 201 wrk never read (cut off at the deadline)
    socket_errors = sum(stats["socket_errors"].values())
    result = {
        "app": app,
        "label": label,
        "path": path,
        "connections": connections,
        "seconds": round(seconds, 2),
        "requests": stats["requests"],
        "rps": round(stats["requests"] / seconds, 1),
        "created": stats["created"],
        "created_rps": round(stats["created"] / seconds, 1),
        "p50_ms": stats["p50_ms"],
        "p90_ms": stats["p90_ms"],
        "p99_ms": stats["p99_ms"],
        "max_ms": stats["max_ms"],
        "errors": stats["status_errors"] + socket_errors + stats["other"],
        "non_201": stats["ok200"] + stats["other"],
        "other_statuses": stats["other_statuses"].strip(),
        "socket_errors": stats["socket_errors"],
        "new_rows": len(rows),
        "confirmed_201": len(confirmed),
        "missing_rows": len(missing),
        "unconfirmed_rows": len(extra),
        "in_flight_at_stop": in_flight,
        "entries_match": not missing
        and len(extra) <= in_flight
        and len(confirmed) == stats["created"],
        "giveaway_id": gid,
        "telegram_calls": asked,  # getChatMember answered by the stand-ins during the run
        "db_sessions": waits.summary(),
        "cpu_seconds": meter.seconds,
        "app_cpu_ms_per_registration": round(
            1000 * meter.seconds["app workers"] / max(1, stats["created"]), 2
        ),
    }
    if prewarm is not None:
        # wrk spreads connections evenly over its threads: each sent about sent/threads.
        result["prewarm"] = {
            **prewarm,
            "per_thread": prewarm_per_thread,
            "sent_per_thread": round(stats["sent"] / wrk_threads),
            "all_measured_users_prewarmed": stats["sent"] / wrk_threads * 1.1 <= prewarm_per_thread,
        }
    if app == "service":
        problems = check_invariants([gid])
        result["invariants"] = problems or "ok"
        result["entries_match"] = result["entries_match"] and not problems
    if stats["created"] == 0:
        raise BenchError(f"{label}: no registration succeeded ({stats['other_statuses']})")
    if bench.scale.name == "smoke" and result["errors"]:
        raise BenchError(
            f"{label}: {result['errors']} errors ({result['other_statuses']}, {stats['socket_errors']})"
        )
    log(
        f"  {label}: {result['created_rps']} reg/s, p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, "
        f"errors {result['errors']}, rows {len(rows)} vs confirmed {len(confirmed)} (+{len(extra)} cut off, {len(missing)} missing), "
        f"app CPU {result['app_cpu_ms_per_registration']} ms/registration, "
        f"{result['telegram_calls']} getChatMember"
    )
    return result


def rounds_for(bench: Bench, worker_class: str) -> int:
    """Rounds of (service, ceiling) runs: several for the production default, whose ratio is
    the target; one for the other worker models, which are there for comparison."""
    return bench.scale.rounds if worker_class == bench.single_class else 1


def measure_in_rounds(
    bench: Bench,
    letter: str,
    worker_class: str,
    threads: int,
    *,
    connections: int,
    ceiling_path: str,
    telegram_port: int = STANDIN_FAST_PORT,
    service_settings: dict | None = None,
    prewarm_per_thread: int = 0,
    every_call_fresh: bool = False,
) -> dict:
    """The service, then the ceiling, in turn for ``rounds_for(bench, worker_class)`` rounds; their
    totals and the ratio. ``prewarm_per_thread`` users are verified before the first round
    (remembered for SUBSCRIPTION_CACHE_SECONDS, 300 s: long enough for every round);
    ``every_call_fresh`` fails a service round in which a registration did not ask Telegram."""
    tag = f"{worker_class}" + (f"-{threads}t" if worker_class == "gthread" else "")
    rounds = rounds_for(bench, worker_class)
    service_rounds, ceiling_rounds = [], []
    for index in range(rounds):
        suffix = f"-r{index + 1}" if rounds > 1 else ""
        bench.stack.start_service(
            tag,
            worker_class=worker_class,
            threads=threads,
            telegram_port=telegram_port,
            **(service_settings or {}),
        )
        service = load_run(
            bench,
            app="service",
            path="/api/participants/register",
            connections=connections,
            wrk_threads=2,
            label=f"{letter}-service-{tag}{suffix}",
            prewarm_per_thread=prewarm_per_thread if index == 0 else 0,
        )
        if every_call_fresh and service["telegram_calls"] < service["created"]:
            raise BenchError(
                f"{service['label']}: {service['created']} entries but only "
                f"{service['telegram_calls']} getChatMember calls: not the burst of fresh checks"
            )
        service_rounds.append(service)
        if bench.profile and index == 0:
            load_run(
                bench,
                app="service",
                path="/api/participants/register",
                connections=connections,
                wrk_threads=2,
                label=f"{letter}-profile-{tag}",
                profile=True,
            )
        bench.stack.start_ceiling(
            tag, worker_class=worker_class, threads=threads, telegram_port=telegram_port
        )
        ceiling_rounds.append(
            load_run(
                bench,
                app="ceiling",
                path=ceiling_path,
                connections=connections,
                wrk_threads=2,
                label=f"{letter}-ceiling-{tag}{suffix}",
            )
        )
    service, ceiling = combine_rounds(service_rounds), combine_rounds(ceiling_rounds)
    return {
        "worker_class": worker_class,
        "threads": threads,
        "tag": tag,
        "ceiling": ceiling,
        "service": service,
        "ratio": round(throughput_ratio(service, ceiling), 4),  # 0.5995 must not pass as 0.600
        "round_ratios": round_ratios(service_rounds, ceiling_rounds),
    }


def combine_rounds(rounds: list[dict]) -> dict:
    """Load runs of one app measured in turn with the other app's: one result over their whole
    time. Throughput is the total over the total time; latencies are the worst round's."""
    if len(rounds) == 1:
        return rounds[0]
    first = rounds[0]
    seconds = sum(r["seconds"] for r in rounds)
    created = sum(r["created"] for r in rounds)
    requests = sum(r["requests"] for r in rounds)
    cpu = {
        key: round(sum(r["cpu_seconds"][key] for r in rounds), 2) for key in first["cpu_seconds"]
    }
    states = {key for r in rounds for key in r["db_sessions"]}
    sessions = {
        key: round(sum(r["db_sessions"].get(key, 0.0) for r in rounds) / len(rounds), 2)
        for key in sorted(states, key=lambda k: -sum(r["db_sessions"].get(k, 0.0) for r in rounds))
    }
    combined = {
        "app": first["app"],
        "label": first["label"].rsplit("-r", 1)[0],
        "path": first["path"],
        "connections": first["connections"],
        "seconds": round(seconds, 2),
        "requests": requests,
        "rps": round(requests / seconds, 1),
        "created": created,
        "created_rps": round(created / seconds, 1),
        "latencies": "the worst round's",
        **{key: max(r[key] for r in rounds) for key in ("p50_ms", "p90_ms", "p99_ms", "max_ms")},
        **{
            key: sum(r[key] for r in rounds)
            for key in (
                "errors",
                "non_201",
                "new_rows",
                "confirmed_201",
                "missing_rows",
                "unconfirmed_rows",
                "in_flight_at_stop",
                "telegram_calls",
            )
        },
        "other_statuses": " ".join(r["other_statuses"] for r in rounds).strip(),
        "entries_match": all(r["entries_match"] for r in rounds),
        "db_sessions": sessions,
        "cpu_seconds": cpu,
        "app_cpu_ms_per_registration": round(1000 * cpu["app workers"] / max(1, created), 2),
        "rounds": rounds,
    }
    for key in ("prewarm", "invariants"):
        if key in first:
            combined[key] = first[key]
    if "invariants" in first:
        problems = [p for r in rounds if r["invariants"] != "ok" for p in r["invariants"]]
        combined["invariants"] = problems or "ok"
    return combined


def throughput_ratio(service: dict, ceiling: dict) -> float:
    """Confirmed registrations a second of a service run over those of a ceiling run."""
    return service["created_rps"] / ceiling["created_rps"] if ceiling["created_rps"] else 0.0


def round_ratios(service_rounds: list[dict], ceiling_rounds: list[dict]) -> list[float]:
    """Each round's service run over the ceiling run measured right after it."""
    return [
        round(throughput_ratio(service, ceiling), 4)
        for service, ceiling in zip(service_rounds, ceiling_rounds, strict=True)
    ]


def telegram_calls() -> int:
    """getChatMember calls the stand-ins have answered so far (both of them)."""
    total = 0
    for port in (STANDIN_FAST_PORT, STANDIN_SLOW_PORT):
        with urllib.request.urlopen(f"http://{HOST}:{port}/health", timeout=10) as response:
            total += json.loads(response.read())["get_chat_member_calls"]
    return total


def prewarm_subscriptions(user_ids: list[int], *, token: str, clients: int = 16) -> dict:
    """verify-subscription for each user (the stand-in says "member"), as the Bot does before a
    registration: the service then remembers the answer for SUBSCRIPTION_CACHE_SECONDS."""
    failures: list[str] = []
    started = time.perf_counter()

    def run(chunk: list[int]) -> None:
        conn = http.client.HTTPConnection(HOST, SERVICE_PORT, timeout=30)
        headers = {"X-Service-Token": token, "Content-Type": "application/json"}
        for user_id in chunk:
            body = json.dumps({"user_id": user_id, "account_id": 42})
            conn.request(
                "POST", "/api/participants/verify-subscription", body=body, headers=headers
            )
            response = conn.getresponse()
            answer = response.read()
            if response.status != 200 or json.loads(answer).get("is_subscribed") is not True:
                failures.append(f"{user_id}: HTTP {response.status} {answer[:200]!r}")
        conn.close()

    threads = [
        threading.Thread(target=run, args=(user_ids[index::clients],), daemon=True)
        for index in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise BenchError(
            f"prewarm: {len(failures)} verify-subscription failures, e.g. {failures[0]}"
        )
    seconds = time.perf_counter() - started
    return {"users": len(user_ids), "seconds": round(seconds, 1)}


# --- wrk -----------------------------------------------------------------------------------------
