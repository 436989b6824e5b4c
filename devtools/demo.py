#!/usr/bin/env python3
"""DEVELOPMENT TOOL — `make demo`: a whole giveaway on the embedded defaults, end to end.

Starts the service (gunicorn, a fresh SQLite file, no Redis) and the development stand-in, then:
a few hundred users join at once (some have left the channel, some fail the captcha before
passing it, one fails it so often that they are locked out), the winners are drawn, one winner
is rerolled, and the draw is verified with the standalone script, as a participant would.
Prints a short summary with the figures.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from utils.captcha import solve_question

ROOT = Path(__file__).resolve().parent.parent
USERS = 300
GIVEAWAY = 1
WINNERS = 5
FIRST_USER = 7_000_000_001
LOCKED_USER = FIRST_USER + 2  # ends in 3: a member, but will never answer right
GIVEAWAY_HEADERS = {"X-Service-Name": "telegive-giveaway"}
BOT_HEADERS = {"X-Service-Name": "telegive-bot"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Demo:
    def __init__(self, base: str) -> None:
        self.base = base
        self.http = requests.Session()
        self.wrong_answers = 0

    def post(self, path: str, body: dict, headers: dict = BOT_HEADERS) -> dict:
        return self.http.post(f"{self.base}{path}", json=body, headers=headers, timeout=30).json()

    def join(self, user_id: int) -> str:
        """One user's path through the Bot's flow; returns how it ended."""
        body = {
            "giveaway_id": GIVEAWAY,
            "user_id": user_id,
            "username": f"fan{user_id % 10_000}",
            "first_name": "Demo",
            "last_name": None,
        }
        answer = self.post("/api/participants/register", body)
        if not answer.get("requires_captcha"):
            return answer.get("error_code", "entered")
        question = answer["captcha_question"]
        mistakes = 9 if user_id == LOCKED_USER else (2 if user_id % 7 == 0 else 0)
        for attempt in range(mistakes):
            result = self.post(
                "/api/participants/validate-captcha",
                {
                    "user_id": user_id,
                    "giveaway_id": GIVEAWAY,
                    "answer": solve_question(question) + 100 + attempt,
                },
            )
            self.wrong_answers += 1
            if result.get("error_code") == "CAPTCHA_LOCKED":
                return "CAPTCHA_LOCKED"
            question = result.get("new_question") or question
        result = self.post(
            "/api/participants/validate-captcha",
            {"user_id": user_id, "giveaway_id": GIVEAWAY, "answer": solve_question(question)},
        )
        if result.get("success") and result.get("captcha_completed"):
            return "entered"
        return result.get("error_code", "failed")


def start_service(workdir: Path) -> tuple[subprocess.Popen, str, str]:
    port, standin_port = free_port(), free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TELEGIVE_", "DATABASE_URL", "REDIS_URL"))
    }
    env.update(
        PORT=str(port),
        STANDIN_PORT=str(standin_port),
        DATABASE_URL=f"sqlite:///{workdir / 'demo.db'}",
        LOG_LEVEL="WARNING",
        VENV=os.environ.get("VENV", str(ROOT / ".venv")),
    )
    log = (workdir / "service.log").open("wb")
    process = subprocess.Popen(
        [str(ROOT / "devtools" / "run-dev.sh")],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if requests.get(f"{base}/health", timeout=1).ok:
                return process, base, f"http://127.0.0.1:{standin_port}"
        except requests.RequestException:
            time.sleep(0.1)
    raise SystemExit(f"the service did not start; see {workdir / 'service.log'}")


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="telegive-demo-"))
    process, base, standin = start_service(workdir)
    demo = Demo(base)
    try:
        print(f"demo: service at {base} (SQLite {workdir / 'demo.db'}), stand-in for the siblings")
        commitment = demo.http.post(
            f"{base}/api/participants/{GIVEAWAY}/commitment", headers=GIVEAWAY_HEADERS, timeout=10
        ).json()["commitment"]
        users = [FIRST_USER + i for i in range(USERS)]
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=16) as pool:
            outcomes_in_order = list(pool.map(demo.join, users))
        outcomes = Counter(outcomes_in_order)
        joined_in = time.perf_counter() - started
        # A third of the entrants leave the channel before the draw: the re-check skips them.
        entered = [
            user
            for user, outcome in zip(users, outcomes_in_order, strict=True)
            if outcome == "entered"
        ]
        for user in entered[::3]:
            demo.http.post(f"{standin}/_standin/members/{user}", json={"status": "left"}, timeout=5)
        draw = demo.post(
            f"/api/participants/{GIVEAWAY}/select-winners",
            {"winner_count": WINNERS},
            GIVEAWAY_HEADERS,
        )
        first_winner = draw["winners"][0]["user_id"]
        reroll = demo.post(
            f"/api/participants/{GIVEAWAY}/reroll",
            {
                "replace_user_id": first_winner,
                "reason": "did not claim the prize",
                "idempotency_key": "demo-1",
            },
            GIVEAWAY_HEADERS,
        )
        record = demo.http.get(
            f"{base}/api/participants/{GIVEAWAY}/draw", headers=GIVEAWAY_HEADERS, timeout=10
        )
        entrants = demo.http.get(
            f"{base}/api/participants/{GIVEAWAY}/draw/entrants",
            headers=GIVEAWAY_HEADERS,
            timeout=30,
        )
        (workdir / "draw.json").write_text(record.text)
        (workdir / "entrants.txt").write_bytes(entrants.content)
        # The stand-in's development drand chain is not quicknet: the verifier takes its facts.
        chain = json.loads(record.text)["beacon"]
        (workdir / "chain.json").write_text(json.dumps({"hash": chain["chain_hash"], **chain}))
        verdict = subprocess.run(
            [
                sys.executable,  # with the BLS12-381 package, so the beacon's signature is checked
                str(ROOT / "utils" / "draw.py"),
                "verify",
                "--record",
                "draw.json",
                "--entrants",
                "entrants.txt",
                "--chain",
                "chain.json",
            ],
            cwd=workdir,
            capture_output=True,
            text=True,
            check=False,
        )
        stats = demo.http.get(
            f"{base}/api/participants/{GIVEAWAY}/stats", headers=GIVEAWAY_HEADERS, timeout=10
        ).json()["stats"]
        records = json.loads(record.text)["records"]
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)

    print()
    print(f"  users who tapped 'participate'  {USERS} (in {joined_in:.1f} s, 16 at a time)")
    print(
        f"  entries                         {outcomes['entered']} (stats: {stats['total_participants']})"
    )
    print("  refused")
    print(f"    not subscribed to the channel {outcomes['USER_NOT_SUBSCRIBED']}")
    print(f"    locked out by the captcha     {outcomes['CAPTCHA_LOCKED']}")
    other = {
        k: v
        for k, v in outcomes.items()
        if k not in ("entered", "USER_NOT_SUBSCRIBED", "CAPTCHA_LOCKED")
    }
    if other:
        print(f"    other                         {other}")
    print(f"  wrong captcha answers           {demo.wrong_answers}")
    print(
        f"  winners drawn                   {', '.join(str(w['user_id']) for w in draw['winners'])}"
    )
    print(f"  left the channel after joining  {len(entered[::3])}")
    print(
        f"  skipped at the re-check         {len(draw['skipped'])} "
        f"({', '.join(str(s['user_id']) for s in draw['skipped']) or 'no candidate had left'})"
    )
    print(
        f"  rerolled                        {first_winner} -> "
        f"{', '.join(str(w['user_id']) for w in reroll['new_winners'])} (did not claim the prize)"
    )
    print(f"  commitment published before     {commitment}")
    for entry in records:
        print(
            f"  record {entry['sequence']} ({entry['kind']:6})          seed {entry['seed'][:16]}…  "
            f"hash {entry['record_hash'][:16]}…"
        )
    print(f"  seed matches the commitment     {records[0]['commitment'] == commitment}")
    print(
        f"  entrant root (fixed at close)   {records[0]['entrant_root'][:16]}…  "
        f"drand round {records[0]['beacon']['round']} (development chain)"
    )
    print(f"  standalone verification         {verdict.stdout.strip().splitlines()[-1]}")
    print(f"\n  files: {workdir}")
    return 0 if verdict.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
