#!/usr/bin/env python3
"""DEVELOPMENT TOOL — `make chaos`: the database and Redis go down under load, then come back.

On private PostgreSQL and Redis servers (devtools/backends.py; the machine's shared ones are never
touched), with the stand-in and one instance of the service (production settings, two workers),
while client threads keep registering new and returning users:

1. steady load;                    2. PostgreSQL stopped: requests must fail fast with 503
3. PostgreSQL started: recovery;      DATABASE_UNAVAILABLE, /health must stay up;
4. Redis stopped: new users (captcha) get 503 REDIS_UNAVAILABLE, returning users still enter;
5. Redis started: recovery.

Afterwards: no half-written state (counters, entry numbers, audit events and users agree with the
entries), every confirmed participation exists exactly once. Prints the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
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

from devtools.backends import (
    TOKENS,
    PrivatePostgres,
    PrivateRedis,
    instance,
    migrate,
    service_env,
    standin,
)
from utils.captcha import solve_question

BOT = {"X-Service-Token": TOKENS["bot"]}


class Traffic:
    """Client threads registering users, recording every answer with its phase and latency."""

    def __init__(self, base: str, threads: int) -> None:
        self.base = base
        self.threads = threads
        self.phase = "steady"
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.observations: list[
            tuple[str, float, str, int, str]
        ] = []  # phase, t, kind, status, code
        self.confirmed: set[tuple[int, int, int]] = set()
        self.passed: list[int] = []
        self.counter = 0

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
            self.observations.append((self.phase, elapsed, kind, status, code))
        return body

    def post(self, kind: str, path: str, body: dict) -> dict:
        started = time.perf_counter()
        try:
            response = requests.post(self.base + path, json=body, headers=BOT, timeout=20)
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
                    user = 5_000_000_000 + self.counter * 10 + chooser.randint(1, 8)
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
            time.sleep(0.01)

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
        if any(kind in kinds and 200 <= status < 300 for _, _, kind, status, _ in fresh):
            return round(time.monotonic() - started, 2)
        time.sleep(0.05)
    return None


def summarise(observations: list) -> dict:
    by_phase: dict[str, dict] = defaultdict(lambda: {"answers": Counter(), "failure_latencies": []})
    for phase, elapsed, kind, status, code in observations:
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


def integrity(database_url: str, confirmed: set) -> tuple[list[str], int]:
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
    return problems, len(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phase-seconds", type=float, default=8)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--output", default=None)
    arguments = parser.parse_args()
    seconds = arguments.phase_seconds

    workdir = Path(tempfile.mkdtemp(prefix="telegive-chaos-"))
    postgres, redis_server = PrivatePostgres(), PrivateRedis()
    figures: dict = {}
    with ExitStack() as stack:
        postgres.init()
        stack.callback(postgres.destroy)
        redis_server.start()
        stack.callback(redis_server.stop)
        siblings = stack.enter_context(standin(workdir))
        env = service_env(
            postgres.url,
            redis_server.url,
            siblings,
            GIVEAWAY_CACHE_SECONDS="2",
            CHANNEL_CACHE_SECONDS="2",
        )
        migrate(env)
        base = stack.enter_context(instance(env, workdir, "service"))
        traffic = Traffic(base, arguments.threads)
        workers = traffic.start()
        print(f"chaos: {arguments.threads} client threads against {base}", flush=True)
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
        figures["integrity_problems"], figures["entries"] = integrity(
            postgres.url, traffic.confirmed
        )
        figures["confirmed_participations"] = len(traffic.confirmed)

    print(json.dumps(figures, indent=2))
    if arguments.output:
        Path(arguments.output).write_text(json.dumps(figures, indent=2))
    phases = figures["phases"]
    unexpected_500 = sum(
        count
        for phase in phases.values()
        for answer, count in phase["answers"].items()
        if " 500" in answer
    )
    ok = (
        not figures["integrity_problems"]
        and figures["database_recovery_s"] is not None
        and figures["redis_recovery_s"] is not None
        and unexpected_500 == 0
        and all(figures[p]["health_all_200"] for p in ("steady", "database_down", "redis_down"))
    )
    print("CHAOS RESULT:", "OK" if ok else "PROBLEMS")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
