"""The dashboard and the alert rules against a real Prometheus (Debian's package, its own port and
directory, scraping every second) that scrapes real instances of the service during a short load:
every query names metrics the service exports and returns data, so a renamed metric or label
value fails here.

Four instances with the development stand-in as the siblings and Telegram: one healthy, whose
Telegram budget is small enough for a burst of new users to be refused (it runs with
SUBSCRIPTION_OVERFLOW=refuse); one deferring, on the same database with an even smaller budget,
where such a burst is entered pending verification, then ``flask verify-pending`` runs once and
verifies (and excludes) the pending entries; one whose Redis is gone (captcha answers fail) and
where a giveaway's service keeps failing (its circuit opens); one whose database is gone. Between
them every series the queries select exists.

The verifier counts its verdicts in the process it runs in, which Prometheus scrapes only when it
is an instance's: here it writes its samples where the deferring instance's workers write theirs
(PROMETHEUS_MULTIPROC_DIR), so that instance's /metrics adds them up, as it would for a verifier
running beside gunicorn in the same container. The queue's gauges need no such help: every
instance reads them from the database.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
import requests
import yaml
from prometheus_client import multiprocess
from prometheus_client.parser import text_string_to_metric_families

from devtools.backends import ROOT, TOKENS, VENV_BIN, service_env
from tests.conftest import wipe
from tests.ops.definitions import (
    JOB,
    PROMETHEUS_MADE,
    RULES,
    Expression,
    alert_expressions,
    grafana_variables,
    panel_expressions,
    selectors,
    substitute,
    tool,
)
from tests.servers import free_port, gunicorn, running, standin
from utils.captcha import solve_question

SCRAPE_SECONDS = 1
GIVEAWAY = 7001  # the stand-in says every giveaway id is active, on account 42
FAILING_GIVEAWAY = 7002  # the stand-in's Giveaway service answers 503 for this one
# The stand-in's Telegram says users whose id ends in 0 left the channel, in 9 were kicked.
NEW_USERS = [9_100_000_000 + n for n in range(1, 20) if n % 10 not in (0, 9)][:12]  # members
LEFT_USER = 9_100_000_100
LOCKED_USER = 9_100_000_201
# The deferring instance's burst: members entering two giveaways while its bot's budget (2 calls a
# second, no waiting for a slot) has room for about one of them at a time.
DEFERRING_GIVEAWAYS = (7003, 7004)
DEFERRED_USERS = [9_100_002_000 + n for n in range(1, 9)]  # ids ending 1..8: members
INSTANCES = 4


def headers(caller: str) -> dict[str, str]:
    return {"X-Service-Token": TOKENS[caller]}


@dataclass
class Scraped:
    """Prometheus after the load, and what the service exported."""

    prometheus: str
    start: float
    end: float
    exported: set[str] = field(default_factory=set)
    entered_pending: int = 0  # entries the deferring instance answered subscription_pending
    verdicts: dict[str, int] = field(default_factory=dict)  # what flask verify-pending printed

    def api(self, path: str, **params) -> dict | list:
        answer = requests.get(f"{self.prometheus}/api/v1/{path}", params=params, timeout=30)
        body = answer.json()
        assert body["status"] == "success", (path, params, body)
        return body["data"]

    def variables(self) -> dict[str, str]:
        return grafana_variables(
            scrape_seconds=SCRAPE_SECONDS, range_seconds=math.ceil(time.time() - self.start)
        )

    def problems(self, expression: Expression, *, needs_values: bool) -> list[str]:
        """What is wrong with an expression against this Prometheus (nothing: an empty list).

        Each metric it names must be one the service exported (or ``up``), and each selector,
        labels and all, must match series scraped during the load; with ``needs_values`` the
        whole expression must give at least one number over the load, else it must evaluate.
        """
        promql = substitute(expression.text, self.variables())
        found = []
        for name, selector in selectors(promql):
            if name not in self.exported | PROMETHEUS_MADE:
                found.append(f"{expression.origin}: the service exports no metric {name}")
            elif not self.api("series", **{"match[]": selector, "start": self.start}):
                found.append(f"{expression.origin}: no series match {selector}")
        if needs_values:
            result = self.api(
                "query_range", query=promql, start=self.start, end=time.time(), step=SCRAPE_SECONDS
            )
            numbers = [float(v) for series in result["result"] for _t, v in series["values"]]
            if not any(math.isfinite(number) for number in numbers):
                found.append(f"{expression.origin}: no data for {promql}")
        else:
            self.api("query", query=promql)
        return found


@contextmanager
def prometheus(workdir: Path, targets: list[str]):
    """Debian's prometheus on a free loopback port, scraping ``targets`` every second with the
    admin token (the ``metrics`` scope), with alerts.yml loaded; its base URL."""
    port = free_port()
    config = {
        "global": {
            "scrape_interval": f"{SCRAPE_SECONDS}s",
            "evaluation_interval": f"{SCRAPE_SECONDS}s",
        },
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {
                "job_name": JOB,
                "authorization": {"type": "Bearer", "credentials": TOKENS["admin"]},
                "static_configs": [{"targets": targets}],
            }
        ],
    }
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    command = [
        tool("prometheus"),
        f"--config.file={workdir / 'prometheus.yml'}",
        f"--storage.tsdb.path={workdir / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    base = f"http://127.0.0.1:{port}"
    with running(command, dict(os.environ), workdir / "prometheus.log", f"{base}/-/ready"):
        deadline = time.monotonic() + 30
        while requests.get(f"{base}/-/ready", timeout=5).status_code != 200:
            assert time.monotonic() < deadline, (workdir / "prometheus.log").read_text()
            time.sleep(0.2)
        yield base


def post(base: str, path: str, body: dict, caller: str = "bot") -> requests.Response:
    return requests.post(f"{base}{path}", json=body, headers=headers(caller), timeout=60)


def enter_new_users(base: str) -> Counter:
    """New users register, then all answer their captcha at once; those Telegram's budget turns
    away (503 with retry_after) try again, as the Bot does. The outcomes, as the Bot saw them."""
    seen: Counter = Counter()
    questions = {}
    for user_id in [*NEW_USERS, LEFT_USER]:
        body = post(
            base, "/api/participants/register", {"giveaway_id": GIVEAWAY, "user_id": user_id}
        ).json()
        assert body["requires_captcha"], body
        questions[user_id] = solve_question(body["captcha_question"])
    waiting = dict(questions)
    deadline = time.monotonic() + 60
    while waiting:
        assert time.monotonic() < deadline, waiting

        def answer(user_id: int) -> tuple[int, requests.Response]:
            payload = {"giveaway_id": GIVEAWAY, "user_id": user_id, "answer": waiting[user_id]}
            return user_id, post(base, "/api/participants/validate-captcha", payload)

        with ThreadPoolExecutor(max_workers=len(waiting)) as pool:
            answers = list(pool.map(answer, list(waiting)))
        retry_after = 0
        for user_id, response in answers:
            body = response.json()
            seen[body.get("error_code", "entered")] += 1
            if body.get("error_code") == "SUBSCRIPTION_CHECK_UNAVAILABLE":
                retry_after = max(retry_after, body["retry_after"])
            else:
                del waiting[user_id]
        time.sleep(retry_after)
    return seen


def lock_out(base: str, user_id: int) -> list[int]:
    """A user who answers every question wrong until locked out; the statuses seen."""
    post(base, "/api/participants/register", {"giveaway_id": GIVEAWAY, "user_id": user_id})
    statuses = []
    for wrong in range(1, 12):
        payload = {"giveaway_id": GIVEAWAY, "user_id": user_id, "answer": -wrong}
        statuses.append(post(base, "/api/participants/validate-captcha", payload).status_code)
    return statuses


def draw(base: str, giveaway_id: int) -> requests.Response:
    """select-winners until it answers something other than "not yet" (a beacon round that is
    not published yet is a 503 the Giveaway service retries)."""
    deadline = time.monotonic() + 60
    while True:
        response = post(
            base, f"/api/participants/{giveaway_id}/select-winners", {"winner_count": 3}, "giveaway"
        )
        if response.status_code != 503 or time.monotonic() > deadline:
            return response
        time.sleep(1)


def run_load(healthy: str, no_redis: str, no_database: str, standin_base: str) -> None:
    """Registrations, a draw and lists on the healthy instance; failures on the broken ones.
    Each step checks what a caller would see, so a load that did not happen cannot pass."""
    seen = enter_new_users(healthy)
    assert seen["entered"] == len(NEW_USERS), seen
    assert seen["USER_NOT_SUBSCRIBED"] == 1, seen
    assert seen["SUBSCRIPTION_CHECK_UNAVAILABLE"] >= 1, seen  # the budget refused some
    again = post(
        healthy, "/api/participants/register", {"giveaway_id": GIVEAWAY, "user_id": NEW_USERS[0]}
    )
    assert again.json()["already_registered"] is True
    statuses = lock_out(healthy, LOCKED_USER)
    assert statuses[-1] == 429, statuses

    drawn = draw(healthy, GIVEAWAY)
    assert drawn.status_code == 200, drawn.text
    assert len(drawn.json()["winners"]) == 3
    assert draw(healthy, GIVEAWAY).json()["already_drawn"] is True
    listed = requests.get(
        f"{healthy}/api/participants/list/{GIVEAWAY}?page=1&limit=50",
        headers=headers("dashboard"),
        timeout=30,
    ).json()
    assert listed["total"] == len(NEW_USERS)
    whole = requests.get(
        f"{healthy}/api/participants/{GIVEAWAY}?page=1&limit=1000",
        headers=headers("giveaway"),
        timeout=30,
    ).json()
    assert len(whole["participants"]) == len(NEW_USERS)
    assert requests.get(f"{healthy}/no/such/path", timeout=10).status_code == 404

    # Redis gone: a captcha answer cannot be judged. The failing giveaway: its circuit opens
    # after 5 failures (one worker), and the calls after that are not even made.
    answer = {"giveaway_id": GIVEAWAY, "user_id": 9_100_000_301, "answer": 1}
    refused = post(no_redis, "/api/participants/validate-captcha", answer)
    assert refused.json()["error_code"] == "REDIS_UNAVAILABLE", refused.text
    requests.post(
        f"{standin_base}/_standin/giveaways/{FAILING_GIVEAWAY}/failure",
        json={"status": 503},
        timeout=10,
    ).raise_for_status()
    codes = [
        post(
            no_redis,
            "/api/participants/register",
            {"giveaway_id": FAILING_GIVEAWAY, "user_id": NEW_USERS[0]},
        ).json()["error_code"]
        for _ in range(8)
    ]
    assert codes == ["UPSTREAM_UNAVAILABLE"] * 8, codes

    # The database gone: registrations, counts and draws answer 503.
    for path, body, caller in (
        ("/api/participants/register", {"giveaway_id": GIVEAWAY, "user_id": NEW_USERS[1]}, "bot"),
        (f"/api/participants/{GIVEAWAY}/select-winners", {"winner_count": 3}, "giveaway"),
    ):
        failed = post(no_database, path, body, caller)
        assert failed.json()["error_code"] == "DATABASE_UNAVAILABLE", failed.text


def enter_while_telegram_is_busy(deferring: str, standin_base: str) -> int:
    """New users answer their captcha all at once, then enter a second giveaway all at once, on
    the deferring instance: every one is let in, most pending verification. One of the pending
    leaves the channel before the verifier asks. The pending entries made."""
    questions = {}
    for user_id in DEFERRED_USERS:
        body = post(
            deferring,
            "/api/participants/register",
            {"giveaway_id": DEFERRING_GIVEAWAYS[0], "user_id": user_id},
        ).json()
        assert body["requires_captcha"], body
        questions[user_id] = solve_question(body["captcha_question"])

    def answer(user_id: int) -> requests.Response:
        payload = {
            "giveaway_id": DEFERRING_GIVEAWAYS[0],
            "user_id": user_id,
            "answer": questions[user_id],
        }
        return post(deferring, "/api/participants/validate-captcha", payload)

    def enter_again(user_id: int) -> requests.Response:
        payload = {"giveaway_id": DEFERRING_GIVEAWAYS[1], "user_id": user_id}
        return post(deferring, "/api/participants/register", payload)

    pending_users: list[int] = []
    for step in (answer, enter_again):
        with ThreadPoolExecutor(max_workers=len(DEFERRED_USERS)) as pool:
            answers = list(pool.map(step, DEFERRED_USERS))
        bodies = [response.json() for response in answers]
        assert all(body["success"] and body["participant_id"] for body in bodies), bodies
        pending = [
            u
            for u, body in zip(DEFERRED_USERS, bodies, strict=True)
            if body["subscription_pending"]
        ]
        assert len(pending) >= 2, bodies  # the budget let at most a few through at once
        pending_users += pending
    requests.post(
        f"{standin_base}/_standin/members/{pending_users[0]}", json={"status": "left"}, timeout=10
    ).raise_for_status()
    return len(pending_users)


def verify_pending(env: dict[str, str]) -> dict[str, int]:
    """``flask verify-pending`` once, as the cron job runs it; what it says it did."""
    with subprocess.Popen(
        [str(VENV_BIN / "flask"), "verify-pending", "--max-seconds", "60"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as verifier:
        try:
            stdout, stderr = verifier.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            verifier.kill()
            raise
    # Its live gauges (the database pools) are not the instance's: gone with it, as gunicorn
    # does for a worker that exits. Its counters stay.
    multiprocess.mark_process_dead(verifier.pid, env["PROMETHEUS_MULTIPROC_DIR"])
    assert verifier.returncode == 0, stdout + stderr
    said = stdout.strip().splitlines()[-1]
    assert "still pending 0 (due now 0" in said, said
    done, _, _ = said.partition(" in ")
    return {name: int(count) for name, count in re.findall(r"(\w+) (\d+)", done)}


def prometheus_saw(base: str, query: str, seconds: float = 20) -> float:
    """The value of a one-number ``query`` once Prometheus has it (scrapes take a moment)."""
    deadline = time.monotonic() + seconds
    while True:
        answer = requests.get(f"{base}/api/v1/query", params={"query": query}, timeout=10).json()
        if answer["data"]["result"]:
            return float(answer["data"]["result"][0]["value"][1])
        assert time.monotonic() < deadline, f"Prometheus has nothing for {query}"
        time.sleep(0.5)


def exported_names(base: str) -> set[str]:
    """The sample names an instance's /metrics shows."""
    text = requests.get(
        f"{base}/metrics", headers={"Authorization": f"Bearer {TOKENS['admin']}"}, timeout=10
    ).text
    return {
        sample.name for family in text_string_to_metric_families(text) for sample in family.samples
    }


@pytest.fixture(scope="module")
def scraped(database_url, redis_url, tmp_path_factory) -> Scraped:
    """Prometheus and three instances after the load (still running while the tests ask)."""
    tool("prometheus")
    workdir = tmp_path_factory.mktemp("prometheus")
    wipe(database_url)  # the queue of pending entries is the whole database's: only ours
    closed = f"127.0.0.1:{free_port()}"  # nothing listens there
    with ExitStack() as stack:
        siblings = stack.enter_context(standin(workdir))

        def start(name: str, **extra: str) -> str:
            env = service_env(database_url, redis_url, siblings, **extra)
            return stack.enter_context(gunicorn(env, workdir, name))

        # The same crowd on an even smaller budget, deferred: entered pending verification.
        deferring_env = service_env(
            database_url,
            redis_url,
            siblings,
            TELEGRAM_CALLS_PER_SECOND="2",
            TELEGRAM_BUDGET_WAIT_SECONDS="0",
            SUBSCRIPTION_OVERFLOW="defer",
            WEB_CONCURRENCY="1",
            PROMETHEUS_MULTIPROC_DIR=str(workdir / "deferring-metrics"),
        )

        # A Telegram budget of 5 calls a second per bot and no waiting for a slot: a burst of
        # new users is partly refused (503 over_budget) and retries, as in a viral giveaway.
        healthy = start(
            "healthy",
            TELEGRAM_CALLS_PER_SECOND="5",
            TELEGRAM_BUDGET_WAIT_SECONDS="0",
            SUBSCRIPTION_OVERFLOW="refuse",
        )
        deferring = stack.enter_context(gunicorn(deferring_env, workdir, "deferring"))
        no_redis = start("no-redis", REDIS_URL=f"redis://{closed}/0", WEB_CONCURRENCY="1")
        no_database = start(
            "no-database",
            DATABASE_URL=f"postgresql://postgres@{closed}/telegive",
            WEB_CONCURRENCY="1",
            GUNICORN_WORKER_CLASS="gthread",
        )
        bases = [healthy, deferring, no_redis, no_database]
        base = stack.enter_context(prometheus(workdir, [b.removeprefix("http://") for b in bases]))
        start_time = time.time() - 1
        run_load(healthy, no_redis, no_database, siblings)
        entered_pending = enter_while_telegram_is_busy(deferring, siblings)
        # The queue as Prometheus saw it, before the verifier empties it.
        queue = "max(telegive_participant_pending_verification_queue)"
        deadline = time.monotonic() + 20
        while prometheus_saw(base, queue) < entered_pending:
            assert time.monotonic() < deadline, prometheus_saw(base, queue)
            time.sleep(0.5)
        verdicts = verify_pending(deferring_env)
        end_time = time.time()
        result = Scraped(base, start_time, end_time, entered_pending=entered_pending)
        result.verdicts = verdicts
        for one in bases:
            result.exported |= exported_names(one)
        # Until every target has been scraped for a rate interval (4 scrapes) after the load,
        # so that the series the load's last steps created have the samples a rate needs.
        deadline = time.monotonic() + 30
        while True:
            scrapes = result.api("query", query=f'timestamp(up{{job="{JOB}"}})')["result"]
            if (
                len(scrapes) == INSTANCES
                and min(float(s["value"][1]) for s in scrapes) > end_time + 4 * SCRAPE_SECONDS
            ):
                break
            assert time.monotonic() < deadline, scrapes
            time.sleep(0.5)
        yield result
    wipe(database_url)
    if redis_url:
        redis.Redis.from_url(redis_url).flushdb()


def test_every_instance_is_scraped(scraped):
    targets = scraped.api("targets")["activeTargets"]
    assert [target["health"] for target in targets] == ["up"] * INSTANCES, targets


def test_the_pending_queue_and_the_verifiers_verdicts_reach_prometheus(scraped):
    # Every pending entry was verified or excluded (the one who left), none is left; the
    # gauges Prometheus scraped went from the whole queue back to zero, and the verifier's
    # counters are the deferring instance's.
    assert scraped.verdicts.get("excluded", 0) >= 1, scraped.verdicts
    settled = scraped.verdicts.get("verified", 0) + scraped.verdicts["excluded"]
    assert settled == scraped.entered_pending, scraped.verdicts
    window = f"{math.ceil(time.time() - scraped.start)}s"
    queue = "telegive_participant_pending_verification_queue"
    peak = scraped.api("query", query=f"max(max_over_time({queue}[{window}]))")["result"]
    assert float(peak[0]["value"][1]) == scraped.entered_pending
    for gauge in (
        queue,
        f"{queue}_due",
        "telegive_participant_pending_verification_oldest_seconds",
    ):
        now = scraped.api("query", query=f"max({gauge})")["result"]
        assert float(now[0]["value"][1]) == 0, gauge
    counted = {
        series["metric"]["outcome"]: round(float(series["value"][1]))
        for series in scraped.api(
            "query", query="sum by (outcome) (telegive_participant_pending_verifications_total)"
        )["result"]
    }
    assert counted["enqueued"] == scraped.entered_pending, counted
    for outcome in ("verified", "excluded"):
        assert counted.get(outcome, 0) == scraped.verdicts.get(outcome, 0), counted


def test_every_panel_query_names_exported_metrics_and_returns_data(scraped):
    problems = [
        problem
        for expression in panel_expressions()
        for problem in scraped.problems(expression, needs_values=True)
    ]
    assert not problems, "\n".join(problems)


def test_the_job_variable_lists_the_service(scraped):
    values = scraped.api(
        "label/job/values", **{"match[]": "telegive_participant_http_requests_total"}
    )
    assert values == [JOB]


def test_every_alert_expression_names_exported_series_and_evaluates(scraped):
    problems = [
        problem
        for expression in alert_expressions()
        for problem in scraped.problems(expression, needs_values=False)
    ]
    assert not problems, "\n".join(problems)
    # Prometheus evaluated every rule of alerts.yml on the scraped data without an error.
    loaded = [rule for group in scraped.api("rules")["groups"] for rule in group["rules"]]
    assert len(loaded) == len(alert_expressions())
    assert all(rule["health"] == "ok" for rule in loaded), loaded


def test_a_renamed_metric_or_label_value_is_caught(scraped):
    panel = next(e for e in panel_expressions() if "registrations_total" in e.text)
    renamed = Expression(
        panel.origin, panel.text.replace("registrations_total", "registration_total")
    )
    assert scraped.problems(panel, needs_values=True) == []
    assert any("exports no metric" in p for p in scraped.problems(renamed, needs_values=True))
    alert = next(e for e in alert_expressions() if "DATABASE_UNAVAILABLE" in e.text)
    relabelled = Expression(alert.origin, alert.text.replace("DATABASE_UNAVAILABLE", "DB_DOWN"))
    assert any("no series match" in p for p in scraped.problems(relabelled, needs_values=False))
