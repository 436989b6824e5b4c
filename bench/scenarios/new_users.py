"""(c) New users: register (the service asks the captcha question), then answer it and enter,
from concurrent clients; users completed a second and the latency of each step."""

from __future__ import annotations

import http.client
import json
import threading
import time

from bench.harness import HOST, SERVICE_PORT, Bench, BenchError, log, percentile
from bench.world import CAPTCHA_BASE, check_invariants, pool_user, rows_of
from devtools.backends import TOKENS
from utils.captcha import solve_question


def run(bench: Bench) -> None:
    """(c) new users: register (captcha question) then answer, from concurrent clients."""
    bench.stack.start_service("c", worker_class=bench.single_class)
    gid = bench.world.fresh_giveaway()
    register_ms: list[float] = []
    answer_ms: list[float] = []
    failures: list[str] = []
    completed = [0]
    lock = threading.Lock()
    deadline = time.perf_counter() + bench.scale.captcha_seconds

    def next_user() -> int:
        with lock:
            index = bench.world.captcha_next
            bench.world.captcha_next += 1
        return pool_user(index, CAPTCHA_BASE)

    def client(number: int) -> None:
        conn = http.client.HTTPConnection(HOST, SERVICE_PORT, timeout=30)
        headers = {"Content-Type": "application/json", "X-Service-Token": TOKENS["bot"]}

        def post(path: str, payload: dict) -> tuple[int, dict, float]:
            started = time.perf_counter()
            conn.request("POST", path, body=json.dumps(payload), headers=headers)
            response = conn.getresponse()
            body = response.read()
            return response.status, json.loads(body), (time.perf_counter() - started) * 1000

        while time.perf_counter() < deadline:
            user = next_user()
            try:
                status, body, ms = post(
                    "/api/participants/register",
                    {
                        "giveaway_id": gid,
                        "user_id": user,
                        "username": f"n{user}",
                        "first_name": "New",
                        "last_name": None,
                    },
                )
                if status != 200 or not body.get("requires_captcha"):
                    raise BenchError(f"register: {status} {body}")
                answer = solve_question(body["captcha_question"])
                status2, body2, ms2 = post(
                    "/api/participants/validate-captcha",
                    {"giveaway_id": gid, "user_id": user, "answer": answer},
                )
                if (
                    status2 != 200
                    or not body2.get("captcha_completed")
                    or not body2.get("participant_id")
                ):
                    raise BenchError(f"validate-captcha: {status2} {body2}")
            except Exception as error:  # noqa: BLE001 - counted and reported
                with lock:
                    failures.append(f"{type(error).__name__}: {error}"[:300])
                conn.close()
                conn = http.client.HTTPConnection(HOST, SERVICE_PORT, timeout=30)
                continue
            with lock:
                register_ms.append(ms)
                answer_ms.append(ms2)
                completed[0] += 1
        conn.close()

    started = time.perf_counter()
    workers = [
        threading.Thread(target=client, args=(n,)) for n in range(bench.scale.captcha_clients)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    rows = len(rows_of("participant_entries", gid))
    bench.stack.stop_server()
    problems = check_invariants([gid])
    result = {
        "what": f"new users: register (gets the question) + validate-captcha (enters), {bench.scale.captcha_clients} concurrent clients, {bench.single_class}",
        "seconds": round(elapsed, 2),
        "users_completed": completed[0],
        "users_per_s": round(completed[0] / elapsed, 1),
        "register_p50_ms": round(percentile(register_ms, 50), 2),
        "register_p99_ms": round(percentile(register_ms, 99), 2),
        "answer_p50_ms": round(percentile(answer_ms, 50), 2),
        "answer_p99_ms": round(percentile(answer_ms, 99), 2),
        "failures": len(failures),
        "failure_examples": failures[:3],
        "entries": rows,
        "entries_match": rows == completed[0] and not problems,
        "targets": [],
    }
    bench.results["c_new_user_captcha"] = result
    log(
        f"  c: {result['users_per_s']} users/s, register p99 {result['register_p99_ms']} ms, answer p99 {result['answer_p99_ms']} ms, failures {len(failures)}"
    )
    if failures and (bench.scale.name == "smoke" or completed[0] == 0):
        raise BenchError(f"captcha flow failed: {failures[:3]}")
