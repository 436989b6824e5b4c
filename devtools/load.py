#!/usr/bin/env python3
"""DEVELOPMENT TOOL — `make load`: minutes of mixed traffic with integrity checks afterwards.

Private PostgreSQL and Redis (devtools/backends.py), the stand-in (Telegram answering in 30 ms),
two instances of the service under gunicorn with production settings, and several client
processes sending a mix of: new users joining (register, solve, answer), returning users joining
other giveaways, retried registrations, wrong answers, lists, stats, counts and histories, and
draws (each asked twice, from different clients) part-way through. Afterwards it checks that every
confirmed participation exists exactly once, that counters and entry numbers agree with the rows,
and that every draw verifies; it reports the error rate (anything unexpected: a 5xx, a wrong
status, a broken connection).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import sys
import tempfile
import time
from collections import Counter
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
from utils import draw as algorithm
from utils.captcha import solve_question

BOT = {"X-Service-Token": TOKENS["bot"]}
GIVEAWAY = {"X-Service-Token": TOKENS["giveaway"]}
DASHBOARD = {"X-Service-Token": TOKENS["dashboard"]}
# Answers a caller may legitimately get; anything else counts as an error.
EXPECTED_REFUSALS = {"USER_NOT_SUBSCRIBED", "GIVEAWAY_NOT_ACTIVE", "CAPTCHA_LOCKED"}


class Client:
    """One client process's traffic and what it observed."""

    def __init__(
        self,
        index: int,
        bases: list[str],
        giveaways: int,
        deadline: float,
        draw_at: list[tuple[float, int]],
    ):
        self.index = index
        self.bases = bases
        self.giveaways = giveaways
        self.deadline = deadline
        self.draw_at = draw_at
        self.http = requests.Session()
        self.random = random.Random(index)
        self.next_user = (index + 1) * 1_000_000_000
        self.passed: list[int] = []
        self.confirmed: list[tuple[int, int, int]] = []
        self.statuses: Counter = Counter()
        self.errors: list[str] = []
        self.latencies: list[float] = []

    def call(self, method: str, path: str, headers: dict, body: dict | None = None) -> dict:
        base = self.random.choice(self.bases)
        started = time.perf_counter()
        try:
            response = self.http.request(
                method, base + path, json=body, headers=headers, timeout=30
            )
            payload = response.json() if "json" in response.headers.get("Content-Type", "") else {}
        except (requests.RequestException, ValueError) as error:
            self.statuses["transport_error"] += 1
            self.errors.append(f"{method} {path}: {type(error).__name__}")
            return {}
        self.latencies.append(time.perf_counter() - started)
        code = payload.get("error_code") if isinstance(payload, dict) else None
        self.statuses[f"{response.status_code} {code or ''}".strip()] += 1
        if response.status_code >= 500 or (
            response.status_code >= 400 and code not in EXPECTED_REFUSALS
        ):
            self.errors.append(f"{method} {path}: {response.status_code} {code}")
        return payload if isinstance(payload, dict) else {}

    def new_user(self) -> None:
        self.next_user += 1
        user = self.next_user
        giveaway = self.random.randint(1, self.giveaways)
        challenge = self.call(
            "POST",
            "/api/participants/register",
            BOT,
            {
                "giveaway_id": giveaway,
                "user_id": user,
                "username": f"u{user}",
                "first_name": "Load",
                "last_name": None,
            },
        )
        if not challenge.get("requires_captcha"):
            return
        question = challenge["captcha_question"]
        if self.random.random() < 0.1:  # a wrong answer first
            wrong = self.call(
                "POST",
                "/api/participants/validate-captcha",
                BOT,
                {"giveaway_id": giveaway, "user_id": user, "answer": -1},
            )
            question = wrong.get("new_question") or question
        answer = self.call(
            "POST",
            "/api/participants/validate-captcha",
            BOT,
            {"giveaway_id": giveaway, "user_id": user, "answer": solve_question(question)},
        )
        if answer.get("captcha_completed"):
            self.passed.append(user)
        if answer.get("participant_id"):
            self.confirmed.append((giveaway, user, answer["participant_id"]))

    def returning_user(self) -> None:
        if not self.passed:
            return
        user = self.random.choice(self.passed)
        giveaway = self.random.randint(1, self.giveaways)
        result = self.call(
            "POST", "/api/participants/register", BOT, {"giveaway_id": giveaway, "user_id": user}
        )
        if result.get("participant_id"):
            self.confirmed.append((giveaway, user, result["participant_id"]))

    def retry(self) -> None:
        if not self.confirmed:
            return
        giveaway, user, participant_id = self.random.choice(self.confirmed)
        result = self.call(
            "POST", "/api/participants/register", BOT, {"giveaway_id": giveaway, "user_id": user}
        )
        if result.get("participant_id") not in (None, participant_id):
            self.errors.append(f"retry of {user} in {giveaway} returned another entry")

    def read(self) -> None:
        giveaway = self.random.randint(1, self.giveaways)
        choice = self.random.random()
        if choice < 0.4:
            self.call(
                "GET",
                f"/api/participants/list/{giveaway}?page={self.random.randint(1, 5)}&limit=50",
                DASHBOARD,
            )
        elif choice < 0.7:
            self.call("GET", f"/api/participants/{giveaway}/stats", GIVEAWAY)
        elif choice < 0.9:
            self.call("GET", f"/api/participants/{giveaway}/count", GIVEAWAY)
        elif self.passed:
            self.call(
                "GET", f"/api/participants/history/{self.random.choice(self.passed)}", DASHBOARD
            )

    def run(self) -> dict:
        actions = [
            (0.45, self.new_user),
            (0.65, self.returning_user),
            (0.75, self.retry),
            (1.0, self.read),
        ]
        while time.time() < self.deadline:
            now = time.time()
            for moment, giveaway in list(self.draw_at):
                if now >= moment:
                    self.draw_at.remove((moment, giveaway))
                    self.call(
                        "POST",
                        f"/api/participants/{giveaway}/select-winners",
                        GIVEAWAY,
                        {"winner_count": 3},
                    )
            pick = self.random.random()
            next(action for bound, action in actions if pick < bound)()
        return {
            "confirmed": self.confirmed,
            "statuses": dict(self.statuses),
            "errors": self.errors[:50],
            "error_count": len(self.errors),
            "latencies": self.latencies,
        }


def run_client(args) -> dict:
    return Client(*args).run()


def check_integrity(
    database_url: str, confirmed: list[tuple[int, int, int]], giveaways: int
) -> dict:
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg2://"))
    problems: list[str] = []
    with engine.connect() as connection:
        rows = {
            row.id: (row.giveaway_id, row.user_id)
            for row in connection.execute(
                text("SELECT id, giveaway_id, user_id FROM participant_entries")
            )
        }
        duplicates = connection.execute(
            text(
                "SELECT count(*) FROM (SELECT giveaway_id, user_id FROM participant_entries "
                "GROUP BY giveaway_id, user_id HAVING count(*) > 1) d"
            )
        ).scalar()
        counters = connection.execute(
            text(
                "SELECT g.giveaway_id, g.entry_count, count(e.entry_number), coalesce(max(e.entry_number), 0), "
                "count(DISTINCT e.entry_number) FROM participant_giveaways g "
                "LEFT JOIN participant_entries e ON e.giveaway_id = g.giveaway_id GROUP BY g.giveaway_id, g.entry_count"
            )
        ).all()
        audited = connection.execute(
            text("SELECT count(*) FROM participant_audit_events WHERE event_type = 'participation'")
        ).scalar()
        records = connection.execute(
            text("SELECT giveaway_id, record FROM participant_draws ORDER BY giveaway_id, sequence")
        ).all()
        entrants = {
            giveaway: [
                r[0]
                for r in connection.execute(
                    text(
                        "SELECT user_id FROM participant_entries WHERE giveaway_id = :g ORDER BY user_id"
                    ),
                    {"g": giveaway},
                )
            ]
            for giveaway in range(1, giveaways + 1)
        }
    engine.dispose()
    missing = [c for c in confirmed if rows.get(c[2]) != (c[0], c[1])]
    if missing:
        problems.append(
            f"{len(missing)} confirmed participations are missing or different, e.g. {missing[:3]}"
        )
    if len({(g, u) for g, u, _ in confirmed}) != len({c[2] for c in confirmed}):
        problems.append("one (giveaway, user) was confirmed under two different entries")
    if duplicates:
        problems.append(f"{duplicates} (giveaway, user) pairs have more than one entry")
    for giveaway_id, counter, count, highest, distinct in counters:
        if not counter == count == highest == distinct:
            problems.append(
                f"giveaway {giveaway_id}: counter {counter}, numbered rows {count}, numbers up to {highest} ({distinct} distinct)"
            )
    if audited != len(rows):
        problems.append(f"{audited} participation events for {len(rows)} entries")
    draws_verified = 0
    by_giveaway: dict[int, list[dict]] = {}
    for giveaway_id, record in records:
        by_giveaway.setdefault(giveaway_id, []).append(record)
    for giveaway_id, chain in by_giveaway.items():
        found = algorithm.verify_chain(chain)
        for record in chain:
            found += algorithm.verify_record(record, entrants[giveaway_id])
        if found:
            problems.append(f"giveaway {giveaway_id}: draw does not verify: {found}")
        else:
            draws_verified += 1
    return {
        "entries": len(rows),
        "confirmed": len(confirmed),
        "draws_verified": draws_verified,
        "draws": len(by_giveaway),
        "problems": problems,
    }


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] if ordered else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=120)
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--giveaways", type=int, default=8)
    parser.add_argument("--output", default=None, help="write the figures as JSON here")
    arguments = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="telegive-load-"))
    postgres, redis_server = PrivatePostgres(), PrivateRedis()
    with ExitStack() as stack:
        postgres.init()
        stack.callback(postgres.destroy)
        redis_server.start()
        stack.callback(redis_server.stop)
        siblings = stack.enter_context(standin(workdir, delay_ms=30))
        env = service_env(postgres.url, redis_server.url, siblings)
        migrate(env)
        bases = [stack.enter_context(instance(env, workdir, f"instance{i}")) for i in (1, 2)]
        print(
            f"load: {arguments.clients} clients for {arguments.duration:.0f} s against {bases}",
            flush=True,
        )
        started = time.time()
        deadline = started + arguments.duration
        # Giveaways 1-3 are drawn part-way through, each by two clients (the second gets the same draw).
        draws = {i: [] for i in range(arguments.clients)}
        for number, giveaway in enumerate((1, 2, 3), start=1):
            moment = started + arguments.duration * (0.2 + 0.2 * number)
            draws[0].append((moment, giveaway))
            draws[1 % arguments.clients].append((moment + 1, giveaway))
        jobs = [
            (i, bases, arguments.giveaways, deadline, draws[i]) for i in range(arguments.clients)
        ]
        with multiprocessing.get_context("fork").Pool(arguments.clients) as pool:
            results = pool.map(run_client, jobs)
        elapsed = time.time() - started
        confirmed = sorted({tuple(c) for r in results for c in r["confirmed"]})
        integrity = check_integrity(postgres.url, confirmed, arguments.giveaways)

    statuses: Counter = Counter()
    for result in results:
        statuses.update(result["statuses"])
    latencies = [v for r in results for v in r["latencies"]]
    requests_made = sum(statuses.values())
    errors = sum(r["error_count"] for r in results)
    figures = {
        "duration_s": round(elapsed, 1),
        "clients": arguments.clients,
        "instances": 2,
        "requests": requests_made,
        "requests_per_second": round(requests_made / elapsed, 1),
        "p50_ms": round(percentile(latencies, 0.5) * 1000, 1),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
        "errors": errors,
        "error_rate": round(errors / requests_made, 6) if requests_made else 0,
        "statuses": dict(statuses.most_common()),
        "sample_errors": [e for r in results for e in r["errors"]][:20],
        **integrity,
    }
    print(json.dumps(figures, indent=2))
    if arguments.output:
        Path(arguments.output).write_text(json.dumps(figures, indent=2))
    ok = not integrity["problems"] and errors == 0
    print("LOAD RESULT:", "OK" if ok else "PROBLEMS")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
