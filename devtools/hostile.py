"""DEVELOPMENT TOOL — the attackers of `make chaos`'s hostile phase, and what it measures.

The attackers run in a process of their own (so their Python work never delays the honest
clients' measurements), against the instances on loopback, all started at one signal, each bounded
in count and time:

- slow readers: connections that ask for a whole giveaway (``GET /api/participants/{id}?page=1&
  limit=1000000``) or its CSV export, read a few bytes with a tiny receive buffer, then hold the
  socket open without reading until the phase ends; one list and one export are then read to the
  end and checked whole;
- requests with invented HTTP methods (``XAAAAA /health``, one new method each), unauthenticated;
- a flood of JSON bodies of 40 KB of ``[`` on every operation that takes a JSON body, with the
  caller's token so the body is read;
- users registering for one giveaway whose Giveaway-service answers are all 5xx
  (the stand-in's ``/_standin/giveaways/{id}/failure``).

Also here: seeding the giveaway the slow readers read, counting PostgreSQL connections every second,
and the size of ``/metrics`` and of the multiprocess samples directory.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

import psycopg2
import requests

from devtools.backends import TOKENS

NESTED_BODY = b"[" * 40 * 1024
RECEIVE_BUFFER = 4096  # the slow readers' socket buffer: the service cannot hand them much
SLOW_READER_SNIFF = 64  # bytes a slow reader reads before it stalls
APPLICATION_NAME = "telegive-participant"  # what the service's connections call themselves


@dataclass
class AttackPlan:
    """Who attacks what, how many times, for how long."""

    bases: list[str]
    seconds: float
    seeded_giveaway: int
    seeded_entries: int
    failing_giveaway: int
    failing_users_from: int
    untouched_giveaway: int  # where nested bodies ask for draws: never a real one
    slow_readers: int = 100
    invented_methods: int = 1000
    nested_bodies: int = 1000


@dataclass
class Tally:
    """Answers of one kind of attack, as ``"status error_code"`` counts."""

    answers: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, status: int | str, code: str = "") -> None:
        with self.lock:
            self.answers[f"{status} {code}".strip()] += 1


def seed_giveaway(database_url: str, giveaway_id: int, entries: int, first_user: int) -> None:
    """Give ``giveaway_id`` ``entries`` entries numbered 1..N, as registrations would leave them:
    users with the captcha done, one participation event each, the counter at N."""
    statements = [
        "INSERT INTO participant_giveaways (giveaway_id, account_id, entry_count, next_seed, "
        "next_commitment, committed_at, created_at) VALUES (%(g)s, 42, %(n)s, "
        "encode(sha256('seed'::bytea), 'hex'), encode(sha256(sha256('seed'::bytea)), 'hex'), "
        "now(), now())",
        "INSERT INTO participant_users (user_id, captcha_completed_at, created_at, username, "
        "first_name) SELECT %(u)s + i, now(), now(), 'seed' || i, 'Seeded ' || i "
        "FROM generate_series(1, %(n)s) i",
        "INSERT INTO participant_entries (giveaway_id, user_id, entry_number, username, "
        "first_name, participated_at, subscription_verified_at) SELECT %(g)s, %(u)s + i, i, "
        "'seed' || i, 'Seeded ' || i, now(), now() FROM generate_series(1, %(n)s) i",
        "INSERT INTO participant_audit_events (occurred_at, event_type, giveaway_id, user_id, "
        "actor, facts) SELECT now(), 'participation', %(g)s, %(u)s + i, 'seed', '{}' "
        "FROM generate_series(1, %(n)s) i",
    ]
    connection = psycopg2.connect(database_url)
    try:
        with connection, connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement, {"g": giveaway_id, "n": entries, "u": first_user})
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("VACUUM (ANALYZE) participant_entries")
    finally:
        connection.close()


class ConnectionCounter(threading.Thread):
    """Samples ``pg_stat_activity`` every second: the service's connections and all clients'."""

    def __init__(self, database_url: str) -> None:
        super().__init__(daemon=True)
        self.database_url = database_url
        self.phase = "idle"
        self.samples: list[tuple[str, int, int]] = []  # phase, service, every client backend
        self.done = threading.Event()
        probe = psycopg2.connect(database_url)
        try:
            with probe.cursor() as cursor:
                cursor.execute("SHOW max_connections")
                self.max_connections = int(cursor.fetchone()[0])
                cursor.execute("SHOW superuser_reserved_connections")
                self.reserved = int(cursor.fetchone()[0])
        finally:
            probe.close()

    def run(self) -> None:
        connection = psycopg2.connect(self.database_url)
        connection.autocommit = True
        try:
            while not self.done.wait(1.0):
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT count(*) FILTER (WHERE application_name = %s), count(*) "
                        "FROM pg_stat_activity WHERE backend_type = 'client backend'",
                        (APPLICATION_NAME,),
                    )
                    service, everyone = cursor.fetchone()
                self.samples.append((self.phase, service, everyone))
        finally:
            connection.close()

    def peaks(self, phase: str) -> dict:
        """The most connections seen in ``phase``: the service's, and every client's (ours too)."""
        mine = [(s, e) for p, s, e in self.samples if p == phase]
        return {
            "samples": len(mine),
            "service_max": max((s for s, _ in mine), default=None),
            "all_clients_max": max((e for _, e in mine), default=None),
        }


def metrics_size(base: str, directory: Path) -> dict:
    """Bytes of one instance's ``/metrics`` answer and of its multiprocess samples directory."""
    answer = requests.get(
        f"{base}/metrics", headers={"X-Service-Token": TOKENS["admin"]}, timeout=10
    )
    answer.raise_for_status()
    return {
        "metrics_bytes": len(answer.content),
        "samples_dir_bytes": sum(p.stat().st_size for p in directory.iterdir() if p.is_file()),
    }


def invented_method(index: int) -> str:
    """``XAAAAA``, ``XAAAAB``, ...: a different made-up HTTP method for every index."""
    letters = ""
    for _ in range(5):
        index, rest = divmod(index, 26)
        letters = chr(ord("A") + rest) + letters
    return "X" + letters


def _paced(count: int, seconds: float, threads: int):
    """Indexes ``0..count-1`` shared out to ``threads`` workers, spread evenly over ``seconds``."""
    pause = seconds * threads / max(count, 1)

    def share(worker: int):
        started = time.monotonic()
        for step, index in enumerate(range(worker, count, threads)):
            delay = started + step * pause - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            yield index

    return share


def _error_code(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return "not_json"
    return body.get("error_code", "") if isinstance(body, dict) else ""


class Attack:
    """Every attacker of the phase; ``run`` starts them together and returns what they saw."""

    def __init__(self, plan: AttackPlan) -> None:
        self.plan = plan
        self.deadline = 0.0
        self.slow = Tally()
        self.slow_first_byte: list[float] = []
        self.slow_open_at_end = 0
        self.slow_drained: list[str] = []
        self.invented = Tally()
        self.nested = Tally()
        self.failing = Tally()
        self.failing_confirmed: list[tuple[int, int, int]] = []

    def base(self, index: int) -> str:
        return self.plan.bases[index % len(self.plan.bases)]

    # Slow readers ---------------------------------------------------------------------------

    def slow_path(self, index: int) -> str:
        giveaway = self.plan.seeded_giveaway
        if index % 2:
            return f"/api/participants/export/{giveaway}"
        return f"/api/participants/{giveaway}?page=1&limit=1000000"

    def open_slow_reader(self, index: int):
        """One stalled download: headers and a few bytes read, the rest left in the pipe."""
        url = urlsplit(self.base(index))
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        sock.settimeout(30)
        started = time.perf_counter()
        try:
            sock.connect((url.hostname, url.port))
            connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
            connection.sock = sock
            connection.request(
                "GET", self.slow_path(index), headers={"X-Service-Token": TOKENS["dashboard"]}
            )
            response = connection.getresponse()
            first = response.read(SLOW_READER_SNIFF)
        except (OSError, http.client.HTTPException) as error:
            sock.close()
            self.slow.add("transport_error", type(error).__name__)
            return None
        self.slow_first_byte.append(time.perf_counter() - started)
        code = ""
        if response.status != 200:
            try:
                code = json.loads(first + response.read()).get("error_code", "")
            except (ValueError, OSError, http.client.HTTPException):
                code = "unreadable"
        self.slow.add(response.status, code)
        return (index, sock, response, first) if response.status == 200 else None

    def drain(self, index: int, response: http.client.HTTPResponse, first: bytes) -> str:
        """Read a stalled download to its end; say whether it came whole."""
        try:
            body = first + response.read()
        except (OSError, http.client.HTTPException) as error:
            return f"cut: {type(error).__name__}"
        expected = self.plan.seeded_entries
        if index % 2:
            rows = len(body.decode().splitlines()) - 1
            return "whole" if rows == expected else f"{rows} of {expected} CSV rows"
        try:
            rows = len(json.loads(body)["participants"])
        except (ValueError, KeyError) as error:
            return f"not JSON: {type(error).__name__}"
        return "whole" if rows == expected else f"{rows} of {expected} entries"

    def slow_readers(self) -> None:
        held: list = []
        lock = threading.Lock()

        def opener(worker: int) -> None:
            for index in range(worker, self.plan.slow_readers, 20):
                reader = self.open_slow_reader(index)
                if reader:
                    with lock:
                        held.append(reader)

        openers = [threading.Thread(target=opener, args=(w,)) for w in range(20)]
        for thread in openers:
            thread.start()
        for thread in openers:
            thread.join()
        time.sleep(max(0.0, self.deadline - time.monotonic()))
        for _, sock, _, _ in held:
            # Still open at the end: the peer has not closed on us (a recv would not say b"").
            sock.setblocking(False)
            try:
                still_open = sock.recv(1, socket.MSG_PEEK) != b""
            except BlockingIOError:
                still_open = True
            except OSError:
                still_open = False
            sock.setblocking(True)
            self.slow_open_at_end += still_open
        # One list and one export are read to the end: a stall must not have cut them.
        drained = [next((r for r in held if r[0] % 2 == kind), None) for kind in (0, 1)]
        for reader in held:
            if reader in drained:
                self.slow_drained.append(self.drain(reader[0], reader[2], reader[3]))
            reader[1].close()

    # Invented methods ------------------------------------------------------------------------

    def invented_methods(self) -> None:
        paths = ["/health", "/api/participants/register", "/metrics", "/no/such/path"]
        share = _paced(self.plan.invented_methods, self.plan.seconds * 0.8, 4)

        def worker(number: int) -> None:
            http_session = requests.Session()
            for index in share(number):
                try:
                    answer = http_session.request(
                        invented_method(index),
                        self.base(index) + paths[index % len(paths)],
                        timeout=10,
                    )
                    self.invented.add(answer.status_code, _error_code(answer))
                except requests.RequestException as error:
                    self.invented.add("transport_error", type(error).__name__)

        self._together(worker, 4)

    # Nested bodies ---------------------------------------------------------------------------

    def nested_bodies(self) -> None:
        bot, draw = TOKENS["bot"], TOKENS["giveaway"]
        untouched = self.plan.untouched_giveaway
        targets = [
            ("POST", "/api/participants/register", bot),
            ("POST", "/api/participants/validate-captcha", bot),
            ("POST", "/api/participants/verify-subscription", bot),
            ("PUT", "/api/participants/update-delivery-status", bot),
            ("POST", f"/api/participants/{untouched}/select-winners", draw),
            ("POST", f"/api/participants/{untouched}/reroll", draw),
        ]
        share = _paced(self.plan.nested_bodies, self.plan.seconds * 0.8, 4)

        def worker(number: int) -> None:
            http_session = requests.Session()
            for index in share(number):
                method, path, token = targets[index % len(targets)]
                try:
                    answer = http_session.request(
                        method,
                        self.base(index) + path,
                        data=NESTED_BODY,
                        headers={"X-Service-Token": token, "Content-Type": "application/json"},
                        timeout=10,
                    )
                    self.nested.add(answer.status_code, _error_code(answer))
                except requests.RequestException as error:
                    self.nested.add("transport_error", type(error).__name__)

        self._together(worker, 4)

    # Registrations for the giveaway whose Giveaway-service answers fail -----------------------

    def failing_giveaway(self) -> None:
        def worker(number: int) -> None:
            http_session = requests.Session()
            user = self.plan.failing_users_from + number * 1_000_000
            while time.monotonic() < self.deadline:
                user += 1
                try:
                    answer = http_session.post(
                        self.base(user) + "/api/participants/register",
                        json={"giveaway_id": self.plan.failing_giveaway, "user_id": user},
                        headers={"X-Service-Token": TOKENS["bot"]},
                        timeout=10,
                    )
                except requests.RequestException as error:
                    self.failing.add("transport_error", type(error).__name__)
                    continue
                self.failing.add(answer.status_code, _error_code(answer))
                if answer.status_code in (200, 201) and answer.json().get("participant_id"):
                    self.failing_confirmed.append(
                        (self.plan.failing_giveaway, user, answer.json()["participant_id"])
                    )
                time.sleep(0.05)

        self._together(worker, 2)

    # -----------------------------------------------------------------------------------------

    @staticmethod
    def _together(worker, count: int) -> None:
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def run(self) -> dict:
        """All attackers at once until the phase ends; what each of them got back."""
        self.deadline = time.monotonic() + self.plan.seconds
        attackers = [
            threading.Thread(target=job)
            for job in (
                self.slow_readers,
                self.invented_methods,
                self.nested_bodies,
                self.failing_giveaway,
            )
        ]
        for thread in attackers:
            thread.start()
        for thread in attackers:
            thread.join()
        first_byte = sorted(self.slow_first_byte)
        return {
            "slow_readers": {
                "answers": dict(self.slow.answers),
                "first_bytes_max_ms": round(first_byte[-1] * 1000, 1) if first_byte else None,
                "still_open_at_end": self.slow_open_at_end,
                "drained_after_stall": self.slow_drained,
            },
            "invented_methods": {"answers": dict(self.invented.answers)},
            "nested_bodies": {"answers": dict(self.nested.answers)},
            "failing_giveaway": {"answers": dict(self.failing.answers)},
            "failing_giveaway_confirmed": self.failing_confirmed,
        }


def merge_rounds(reports: list[dict]) -> dict:
    """The attackers' reports of several rounds as one: answers added up, the slowest first
    bytes, the sockets still open and the stalled downloads of every round."""

    def answers(path: str) -> dict:
        total: Counter = Counter()
        for report in reports:
            total.update(report[path]["answers"])
        return dict(total.most_common())

    slow = [report["slow_readers"] for report in reports]
    first_bytes = [s["first_bytes_max_ms"] for s in slow if s["first_bytes_max_ms"] is not None]
    return {
        "rounds": len(reports),
        "slow_readers": {
            "answers": answers("slow_readers"),
            "first_bytes_max_ms": max(first_bytes, default=None),
            "still_open_at_end": sum(s["still_open_at_end"] for s in slow),
            "drained_after_stall": [d for s in slow for d in s["drained_after_stall"]],
        },
        "invented_methods": {"answers": answers("invented_methods")},
        "nested_bodies": {"answers": answers("nested_bodies")},
        "failing_giveaway": {"answers": answers("failing_giveaway")},
        "failing_giveaway_confirmed": [
            confirmed for report in reports for confirmed in report["failing_giveaway_confirmed"]
        ],
    }


def _attack_process(plan: AttackPlan, rounds, results, niceness: int) -> None:
    os.nice(niceness)
    while (number := rounds.get()) is not None:
        # Each round's users for the failing giveaway are new ones.
        plan = replace(plan, failing_users_from=plan.failing_users_from + number * 100_000)
        results.put(Attack(plan).run())


class AttackerProcess:
    """The attackers in a forked process: fork before any client thread exists, ``start`` a
    round of attacks later, as many times as wanted, and ``result`` after each.

    ``niceness`` (as for ``nice``) lowers the attackers' CPU priority: on a machine shared with
    the service they stand for clients elsewhere, whose own work costs the service nothing, and
    the honest clients' measurements should see the service's slowdown, not theirs."""

    def __init__(self, plan: AttackPlan, niceness: int = 0) -> None:
        context = multiprocessing.get_context("fork")
        self.rounds = context.Queue()
        self.results = context.Queue()
        self.process = context.Process(
            target=_attack_process, args=(plan, self.rounds, self.results, niceness), daemon=True
        )
        self.process.start()
        self.seconds = plan.seconds
        self.started = 0

    def start(self) -> None:
        self.rounds.put(self.started)
        self.started += 1

    def result(self) -> dict:
        """What the attackers saw in the round started last (waits for them to finish)."""
        return self.results.get(timeout=self.seconds + 120)

    def stop(self) -> None:
        if self.process.is_alive():
            self.rounds.put(None)
            self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
