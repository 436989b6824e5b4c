#!/usr/bin/env python3
"""DEVELOPMENT TOOL — `make chaos`: outages and hostile clients under registration load.

On private PostgreSQL and Redis servers (devtools/backends.py; the machine's shared ones are never
touched), with the stand-in and the service under gunicorn (production settings, two gevent
workers per instance), while client threads keep registering new and returning users:

Outages, one instance:
1. steady load;                    2. PostgreSQL stopped: requests must fail fast with 503
3. PostgreSQL started: recovery;      DATABASE_UNAVAILABLE, /health must stay up;
4. Redis stopped: new users (captcha) get 503 REDIS_UNAVAILABLE, returning users still enter;
5. Redis started: recovery.

Hostile clients, two instances (the attackers are in devtools/hostile.py), in interleaved rounds
(``--hostile-rounds``) whose figures are pooled:
6. baseline: honest registrations alone;
7. the same honest load beside 100 slow readers of a 50,000-entry list and export, 1,000 requests
   with invented methods, a flood of deeply nested JSON bodies and a Giveaway service failing for
   one giveaway: honest registrations keep succeeding (p99 within 2x of the baseline's), the
   service's PostgreSQL connections stay within instances x workers x (2 pools x DB_POOL_SIZE
   + the streams' pool), /metrics grows by at most --metrics-growth-kb.

Afterwards: no half-written state (counters, entry numbers, audit events and users agree with the
entries), every confirmed participation exists exactly once, and the hostile phase's users have
no entry they were not told about. Prints the figures as JSON; ``--only outages|hostile`` runs one
part.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from contextlib import ExitStack
from pathlib import Path

import requests
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devtools import hostile
from devtools.backends import (
    TOKENS,
    PrivatePostgres,
    PrivateRedis,
    instance,
    migrate,
    service_env,
    standin,
)
from services.store.postgres import STREAM_CONNECTIONS
from utils.captcha import solve_question

BOT = {"X-Service-Token": TOKENS["bot"]}


class Traffic:
    """Client threads registering users, recording every answer with its phase and latency."""

    def __init__(
        self,
        bases: list[str],
        threads: int,
        *,
        first_user: int = 5_000_000_000,
        pause: float = 0.01,
    ) -> None:
        self.bases = bases
        self.threads = threads
        self.first_user = first_user
        self.pause = pause
        self.phase = "steady"
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.observations: list[
            tuple[str, float, str, int, str, float]
        ] = []  # phase, t, kind, status, code, when it started (monotonic)
        self.confirmed: set[tuple[int, int, int]] = set()
        self.passed: list[int] = []
        self.counter = 0
        self.sessions = threading.local()

    def record(self, kind: str, started: float, response: requests.Response | None) -> dict:
        elapsed = time.perf_counter() - started
        body: dict = {}
        if response is None:
            status, code = 0, "transport_error"
        else:
            status = response.status_code
            try:
                body = response.json()
            except ValueError:
                body = {}
            code = body.get("error_code", "") if status >= 400 else ""
        with self.lock:
            self.observations.append((self.phase, elapsed, kind, status, code, started))
        return body

    def post(self, kind: str, path: str, body: dict) -> dict:
        # Each client thread keeps its connections open, as the Bot service's HTTP client does.
        session = self.sessions.__dict__.setdefault("session", requests.Session())
        started = time.perf_counter()
        try:
            response = session.post(
                random.choice(self.bases) + path, json=body, headers=BOT, timeout=20
            )
        except requests.RequestException:
            response = None
        return self.record(kind, started, response)

    def worker(self, seed: int) -> None:
        chooser = random.Random(seed)
        while not self.stop.is_set():
            giveaway = chooser.randint(1, 5)
            with self.lock:
                returning = self.passed and chooser.random() < 0.4
                if returning:
                    user = chooser.choice(self.passed)
                else:
                    self.counter += 1
                    user = self.first_user + self.counter * 10 + chooser.randint(1, 8)
            if returning:
                result = self.post(
                    "returning",
                    "/api/participants/register",
                    {"giveaway_id": giveaway, "user_id": user},
                )
            else:
                result = self.post(
                    "new", "/api/participants/register", {"giveaway_id": giveaway, "user_id": user}
                )
                if result.get("requires_captcha"):
                    result = self.post(
                        "answer",
                        "/api/participants/validate-captcha",
                        {
                            "giveaway_id": giveaway,
                            "user_id": user,
                            "answer": solve_question(result["captcha_question"]),
                        },
                    )
                    if result.get("captcha_completed"):
                        with self.lock:
                            self.passed.append(user)
            if result.get("participant_id"):
                with self.lock:
                    self.confirmed.add((giveaway, user, result["participant_id"]))
            time.sleep(self.pause)

    def start(self) -> list[threading.Thread]:
        workers = [
            threading.Thread(target=self.worker, args=(i,), daemon=True)
            for i in range(self.threads)
        ]
        for thread in workers:
            thread.start()
        return workers


def probe(url: str) -> tuple[int, float]:
    started = time.perf_counter()
    try:
        status = requests.get(url, timeout=5).status_code
    except requests.RequestException:
        status = 0
    return status, time.perf_counter() - started


def watch(traffic: Traffic, base: str, phase: str, seconds: float) -> dict:
    """Let the traffic run through a phase, probing the health endpoints."""
    traffic.phase = phase
    health, ready = [], []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        health.append(probe(f"{base}/health"))
        ready.append(probe(f"{base}/health/ready")[0])
        time.sleep(0.25)
    return {
        "health_all_200": all(status == 200 for status, _ in health),
        "health_max_ms": round(max(t for _, t in health) * 1000, 1),
        "ready_statuses": dict(Counter(ready)),
    }


def until_recovered(
    traffic: Traffic, phase: str, kinds: set[str], timeout: float = 30
) -> float | None:
    """Seconds from now until a request of ``kinds`` succeeds in ``phase``."""
    traffic.phase = phase
    started = time.monotonic()
    seen = len(traffic.observations)
    while time.monotonic() - started < timeout:
        with traffic.lock:
            fresh = traffic.observations[seen:]
        if any(kind in kinds and 200 <= status < 300 for _, _, kind, status, *_ in fresh):
            return round(time.monotonic() - started, 2)
        time.sleep(0.05)
    return None


def summarise(observations: list) -> dict:
    by_phase: dict[str, dict] = defaultdict(lambda: {"answers": Counter(), "failure_latencies": []})
    for phase, elapsed, kind, status, code, _ in observations:
        entry = by_phase[phase]
        entry["answers"][f"{kind} {status} {code}".strip()] += 1
        if status >= 500 or status == 0:
            entry["failure_latencies"].append(elapsed)
    result = {}
    for phase, entry in by_phase.items():
        latencies = sorted(entry["failure_latencies"])
        result[phase] = {
            "answers": dict(entry["answers"].most_common()),
            "failures": len(latencies),
            "failure_p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1)
            if latencies
            else None,
            "failure_max_ms": round(latencies[-1] * 1000, 1) if latencies else None,
        }
    return result


def slow_calls_by_second(observations: list, attack_starts: list[float], over: float) -> dict:
    """When the honest calls slower than ``over`` seconds started, by whole seconds after their
    round's attack began: the tail's timeline against the attackers' (the slow readers all
    connect in the first second or two)."""
    slow = Counter(
        # A call that began just before its round's attack counts in second -1.
        math.floor(started - max((a for a in attack_starts if a <= started), default=started + 1))
        for phase, elapsed, kind, _, _, started in observations
        if phase == "hostile" and kind in REGISTRATION_KINDS and elapsed > over
    )
    return {str(second): count for second, count in sorted(slow.items())}


def _ms(seconds: float | None) -> float | None:
    return round(seconds * 1000, 1) if seconds is not None else None


def integrity(
    database_url: str, confirmed: set, exactly: range | None = None
) -> tuple[list[str], int]:
    """What is wrong with the stored entries; ``exactly``: users whose entries must be exactly
    the confirmed ones (no entry a client was not told about)."""
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg2://"))
    problems = []
    with engine.connect() as connection:
        rows = {
            r.id: (r.giveaway_id, r.user_id)
            for r in connection.execute(
                text("SELECT id, giveaway_id, user_id FROM participant_entries")
            )
        }
        for giveaway_id, counter, count, highest in connection.execute(
            text(
                "SELECT g.giveaway_id, g.entry_count, count(e.entry_number), coalesce(max(e.entry_number), 0) FROM participant_giveaways g "
                "LEFT JOIN participant_entries e ON e.giveaway_id = g.giveaway_id GROUP BY g.giveaway_id, g.entry_count"
            )
        ):
            if not counter == count == highest:
                problems.append(
                    f"giveaway {giveaway_id}: counter {counter}, numbered rows {count}, highest number {highest}"
                )
        events = connection.execute(
            text("SELECT count(*) FROM participant_audit_events WHERE event_type = 'participation'")
        ).scalar()
        without_user = connection.execute(
            text(
                "SELECT count(*) FROM participant_entries e LEFT JOIN participant_users u ON u.user_id = e.user_id "
                "WHERE u.captcha_completed_at IS NULL"
            )
        ).scalar()
    engine.dispose()
    if events != len(rows):
        problems.append(f"{events} participation events for {len(rows)} entries")
    if without_user:
        problems.append(f"{without_user} entries of users without a completed captcha")
    lost = [c for c in confirmed if rows.get(c[2]) != (c[0], c[1])]
    if lost:
        problems.append(f"{len(lost)} confirmed participations missing, e.g. {lost[:3]}")
    if len({(g, u) for g, u, _ in confirmed}) != len({i for _, _, i in confirmed}):
        problems.append("a user was confirmed twice in one giveaway under different entries")
    if exactly is not None:
        stored = {i for i, (_, user) in rows.items() if user in exactly}
        told = {i for _, user, i in confirmed if user in exactly}
        if stored != told:
            problems.append(
                f"{len(stored)} entries of users {exactly.start}.. for {len(told)} confirmed"
            )
    return problems, len(rows)


def percentile(values: list[float], fraction: float) -> float | None:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] if ordered else None


def outages(postgres, redis_server, siblings: str, workdir: Path, arguments) -> tuple[dict, set]:
    """Phases 1-5 on one instance: PostgreSQL, then Redis, stopped and started under load."""
    seconds = arguments.phase_seconds
    figures: dict = {}
    env = service_env(
        postgres.url,
        redis_server.url,
        siblings,
        GIVEAWAY_CACHE_SECONDS="2",
        CHANNEL_CACHE_SECONDS="2",
    )
    with instance(env, workdir, "service") as base:
        traffic = Traffic([base], arguments.threads)
        workers = traffic.start()
        print(f"chaos: outages, {arguments.threads} client threads against {base}", flush=True)
        figures["steady"] = watch(traffic, base, "steady", seconds)

        traffic.phase = "database_down"
        postgres.stop("fast")
        figures["database_down"] = watch(traffic, base, "database_down", seconds)
        traffic.phase = "database_back"
        postgres.start()
        figures["database_recovery_s"] = until_recovered(
            traffic, "database_back", {"new", "answer", "returning"}
        )
        figures["database_back"] = watch(traffic, base, "database_back", seconds / 2)

        traffic.phase = "redis_down"
        redis_server.stop()
        figures["redis_down"] = watch(traffic, base, "redis_down", seconds)
        traffic.phase = "redis_back"
        redis_server.start()
        figures["redis_recovery_s"] = until_recovered(traffic, "redis_back", {"new"})
        figures["redis_back"] = watch(traffic, base, "redis_back", seconds / 2)

        traffic.stop.set()
        for thread in workers:
            thread.join(timeout=30)
    figures["phases"] = summarise(traffic.observations)
    figures["confirmed_participations"] = len(traffic.confirmed)
    return figures, traffic.confirmed


def outage_problems(figures: dict) -> list[str]:
    """What the outage phases got wrong: a 500, no recovery, /health down."""
    problems = []
    for name, phase in figures["phases"].items():
        for answer, count in phase["answers"].items():
            if " 500" in answer:
                problems.append(f"{name}: {count} × {answer}")
    for recovery in ("database_recovery_s", "redis_recovery_s"):
        if figures[recovery] is None:
            problems.append(f"{recovery}: no success within 30 s")
    for name in ("steady", "database_down", "redis_down"):
        if not figures[name]["health_all_200"]:
            problems.append(f"{name}: /health not always 200")
    return problems


# The hostile phase's world: a big giveaway for the slow readers, one whose Giveaway-service
# answers fail, one nobody uses (nested bodies ask to draw it), and a user-id range per actor.
SEEDED_GIVEAWAY, FAILING_GIVEAWAY, UNTOUCHED_GIVEAWAY = 900, 901, 902
HONEST_USERS = range(6_000_000_000, 6_500_000_000)
FAILING_USERS = range(6_500_000_000, 7_000_000_000)
SEEDED_USERS = 8_000_000_000
INSTANCES = ("hostile1", "hostile2")
WORKERS = 2  # WEB_CONCURRENCY of each instance
REGISTRATION_KINDS = {"new", "answer", "returning"}


def hostile_phase(
    postgres, redis_server, siblings: str, workdir: Path, arguments
) -> tuple[dict, set]:
    """Honest registrations on two instances, first alone, then beside the attackers."""
    seeded = arguments.seeded_entries
    hostile.seed_giveaway(postgres.url, SEEDED_GIVEAWAY, seeded, SEEDED_USERS)
    env = service_env(
        postgres.url,
        redis_server.url,
        siblings,
        GIVEAWAY_CACHE_SECONDS="2",
        CHANNEL_CACHE_SECONDS="2",
        # Every honest user is on one bot: at Telegram's 20 calls a second they would queue for
        # the bot's budget, and the phase would measure that queue, not the attackers.
        TELEGRAM_CALLS_PER_SECOND="1000",
        WEB_CONCURRENCY=str(WORKERS),
        DB_POOL_SIZE=str(arguments.pool_size),
    )
    figures: dict = {
        "instances": len(INSTANCES),
        "workers_per_instance": WORKERS,
        "db_pool_size": arguments.pool_size,
        "seeded_entries": seeded,
        # Per worker: two pools of DB_POOL_SIZE and the streams' pool (services/store/postgres.py).
        "connection_bound": len(INSTANCES)
        * WORKERS
        * (2 * arguments.pool_size + STREAM_CONNECTIONS),
    }
    seconds = arguments.hostile_seconds
    with ExitStack() as stack:
        bases = [stack.enter_context(instance(env, workdir, name)) for name in INSTANCES]
        plan = hostile.AttackPlan(
            bases=bases,
            seconds=seconds,
            seeded_giveaway=SEEDED_GIVEAWAY,
            seeded_entries=seeded,
            failing_giveaway=FAILING_GIVEAWAY,
            failing_users_from=FAILING_USERS.start,
            untouched_giveaway=UNTOUCHED_GIVEAWAY,
            slow_readers=arguments.slow_readers,
            invented_methods=arguments.invented_methods,
            nested_bodies=arguments.nested_bodies,
        )
        # Forked before any thread starts; its CPU below the service's and the honest clients'.
        attackers = hostile.AttackerProcess(plan, niceness=arguments.attacker_nice)
        stack.callback(attackers.stop)
        counter = hostile.ConnectionCounter(postgres.url)
        counter.start()
        stack.callback(counter.done.set)
        figures["max_connections"] = counter.max_connections
        figures["superuser_reserved_connections"] = counter.reserved
        traffic = Traffic(
            bases, arguments.hostile_threads, first_user=HONEST_USERS.start, pause=arguments.pause
        )
        traffic.phase = counter.phase = "warmup"
        workers = traffic.start()
        print(
            f"chaos: hostile, {arguments.hostile_threads} honest client threads against {bases}, "
            f"{arguments.hostile_rounds} rounds of {seconds:g} s alone then {seconds:g} s attacked",
            flush=True,
        )
        time.sleep(3)

        def sizes() -> dict:
            return {
                name: hostile.metrics_size(base, workdir / f"{name}-metrics")
                for name, base in zip(INSTANCES, bases, strict=True)
            }

        def failing(status: int | None) -> None:
            requests.post(
                f"{siblings}/_standin/giveaways/{FAILING_GIVEAWAY}/failure",
                json={"status": status},
                timeout=5,
            ).raise_for_status()

        windows: list[tuple[str, int, float, float]] = []  # phase, round, start, end
        reports = []
        for number in range(arguments.hostile_rounds):
            traffic.phase = counter.phase = "baseline"
            began = time.perf_counter()
            time.sleep(seconds)
            windows.append(("baseline", number, began, time.perf_counter()))
            if number == 0:
                figures["metrics_before"] = sizes()
            failing(503)
            traffic.phase = counter.phase = "hostile"
            began = time.perf_counter()
            attackers.start()
            reports.append(attackers.result())
            windows.append(("hostile", number, began, time.perf_counter()))
            failing(None)
            traffic.phase = counter.phase = "between"  # the attackers' sockets closing
            time.sleep(1)
        figures["attack"] = hostile.merge_rounds(reports)
        figures["metrics_after"] = sizes()
        traffic.stop.set()
        for thread in workers:
            thread.join(timeout=30)
        counter.done.set()
        counter.join(timeout=5)
    registrations = [o for o in traffic.observations if o[2] in REGISTRATION_KINDS]
    for phase in ("baseline", "hostile"):
        latencies = [elapsed for p, elapsed, *_ in registrations if p == phase]
        answers = Counter(
            f"{status} {code}".strip() for p, _, _, status, code, _ in registrations if p == phase
        )
        figures[phase] = {
            "registration_calls": len(latencies),
            "per_second": round(len(latencies) / (seconds * arguments.hostile_rounds), 1),
            "p50_ms": _ms(percentile(latencies, 0.5)),
            "p99_ms": _ms(percentile(latencies, 0.99)),
            "answers": dict(answers.most_common()),
            "connections": counter.peaks(phase),
        }
    figures["rounds"] = [
        {
            "phase": phase,
            "round": number,
            "p99_ms": _ms(
                percentile(
                    [e for p, e, *_, t in registrations if p == phase and began <= t < ended], 0.99
                )
            ),
        }
        for phase, number, began, ended in windows
    ]
    attack_starts = [began for phase, _, began, _ in windows if phase == "hostile"]
    figures["hostile"]["slow_calls_by_second"] = slow_calls_by_second(
        registrations, attack_starts, 2 * (figures["baseline"]["p99_ms"] or 0) / 1000
    )
    confirmed = traffic.confirmed | {
        tuple(c) for c in figures["attack"].pop("failing_giveaway_confirmed")
    }
    figures["confirmed_participations"] = len(confirmed)
    return figures, confirmed


def hostile_problems(figures: dict, metrics_growth_kb: int) -> list[str]:
    """Each promise of the hostile phase that did not hold."""
    problems = []
    baseline, attacked, attack = figures["baseline"], figures["hostile"], figures["attack"]
    for phase in (baseline, attacked):
        failed = {a: n for a, n in phase["answers"].items() if not a.startswith("2")}
        if failed or not phase["registration_calls"]:
            problems.append(f"honest registrations failed: {failed or 'none made'}")
    if baseline["p99_ms"] and attacked["p99_ms"] and attacked["p99_ms"] > 2 * baseline["p99_ms"]:
        problems.append(
            f"honest p99 {attacked['p99_ms']} ms beside the attackers, over 2 × {baseline['p99_ms']} ms"
        )
    bound = figures["connection_bound"]
    for name in ("baseline", "hostile"):
        peak = figures[name]["connections"]["service_max"]
        if peak is None or peak > bound:
            problems.append(f"{name}: {peak} service connections, bound {bound}")
    if bound > (figures["max_connections"] - figures["superuser_reserved_connections"]) / 2:
        problems.append(f"bound {bound} leaves less than half of max_connections to the siblings")
    for name, before in figures["metrics_before"].items():
        after = figures["metrics_after"][name]
        if after["metrics_bytes"] > before["metrics_bytes"] + metrics_growth_kb * 1024:
            problems.append(
                f"{name} /metrics: {before['metrics_bytes']} bytes before, "
                f"{after['metrics_bytes']} after (at most {metrics_growth_kb} KB more)"
            )
        # The samples files grow by doubling, so one step may double the directory.
        if after["samples_dir_bytes"] > 2 * before["samples_dir_bytes"]:
            problems.append(
                f"{name} samples directory: {before['samples_dir_bytes']} bytes before, "
                f"{after['samples_dir_bytes']} after"
            )
    slow = attack["slow_readers"]
    if set(slow["answers"]) != {"200"}:
        problems.append(f"slow readers were not all served: {slow['answers']}")
    if any(d != "whole" for d in slow["drained_after_stall"]) or not slow["drained_after_stall"]:
        problems.append(f"stalled downloads read afterwards: {slow['drained_after_stall']}")
    if set(attack["invented_methods"]["answers"]) - {"405 METHOD_NOT_ALLOWED", "404 NOT_FOUND"}:
        problems.append(f"invented methods: {attack['invented_methods']['answers']}")
    if set(attack["nested_bodies"]["answers"]) - {"400 VALIDATION_ERROR"}:
        problems.append(f"nested bodies: {attack['nested_bodies']['answers']}")
    failing = attack["failing_giveaway"]["answers"]
    if not failing or any(not a.startswith("503 ") for a in failing):
        problems.append(f"registrations for the failing giveaway: {failing}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("outages", "hostile"), default=None)
    parser.add_argument("--phase-seconds", type=float, default=8, help="each outage phase")
    parser.add_argument("--threads", type=int, default=8, help="client threads in the outages")
    parser.add_argument("--hostile-seconds", type=float, default=20, help="baseline, then attack")
    parser.add_argument(
        "--hostile-rounds", type=int, default=3, help="interleaved rounds of baseline and attack"
    )
    parser.add_argument(
        "--attacker-nice", type=int, default=19, help="the attackers' niceness (0: as the rest)"
    )
    parser.add_argument("--hostile-threads", type=int, default=8, help="honest client threads")
    parser.add_argument("--pause", type=float, default=0.05, help="honest pause between flows")
    parser.add_argument("--pool-size", type=int, default=5, help="DB_POOL_SIZE, hostile phase")
    parser.add_argument("--seeded-entries", type=int, default=50_000)
    parser.add_argument("--slow-readers", type=int, default=100)
    parser.add_argument("--invented-methods", type=int, default=1000)
    parser.add_argument("--nested-bodies", type=int, default=1000)
    parser.add_argument("--metrics-growth-kb", type=int, default=100, help="most /metrics may grow")
    parser.add_argument("--output", default=None)
    arguments = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="telegive-chaos-"))
    postgres, redis_server = PrivatePostgres(), PrivateRedis()
    figures: dict = {}
    confirmed: set = set()
    with ExitStack() as stack:
        postgres.init()
        stack.callback(postgres.destroy)
        redis_server.start()
        stack.callback(redis_server.stop)
        siblings = stack.enter_context(standin(workdir))
        migrate(service_env(postgres.url, redis_server.url, siblings))
        if arguments.only in (None, "outages"):
            figures["outages"], seen = outages(postgres, redis_server, siblings, workdir, arguments)
            confirmed |= seen
        if arguments.only in (None, "hostile"):
            figures["hostile"], seen = hostile_phase(
                postgres, redis_server, siblings, workdir, arguments
            )
            confirmed |= seen
        # The hostile phase's users: entries exactly where a client was told so.
        exactly = range(HONEST_USERS.start, FAILING_USERS.stop) if "hostile" in figures else None
        figures["integrity_problems"], figures["entries"] = integrity(
            postgres.url, confirmed, exactly
        )
        figures["confirmed_participations"] = len(confirmed)

    problems = list(figures["integrity_problems"])
    if "outages" in figures:
        problems += outage_problems(figures["outages"])
    if "hostile" in figures:
        problems += hostile_problems(figures["hostile"], arguments.metrics_growth_kb)
    figures["problems"] = problems
    print(json.dumps(figures, indent=2))
    if arguments.output:
        Path(arguments.output).write_text(json.dumps(figures, indent=2))
    print("CHAOS RESULT:", "OK" if not problems else "PROBLEMS")
    for problem in problems:
        print("  -", problem)
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
