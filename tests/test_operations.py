"""Operations: metrics, maintenance commands, start-up refusal under gunicorn."""

from __future__ import annotations

import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from tests.conftest import ADMIN, BOT, GIVEAWAY, test_env
from tests.factories import add_entries
from tests.servers import ROOT, VENV_BIN, free_port, gunicorn


def test_metrics_need_the_metrics_scope_unless_opened(make_app):
    client = make_app().test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=BOT).status_code == 403
    response = client.get("/metrics", headers=ADMIN)
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    open_client = make_app(METRICS_REQUIRE_AUTH="false").test_client()
    assert open_client.get("/metrics").status_code == 200


def metric(text: str, name: str, **labels) -> float:
    """The value of one sample in exposition text (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    total = 0.0
    for line in text.splitlines():
        if (
            line.startswith(name + "{") and all(part in line for part in wanted.split(",") if part)
        ) or (line.startswith(name + " ") and not labels):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_count_requests_registrations_captcha_and_outgoing_calls(make_app, peers):
    peers.standard()
    client = make_app(METRICS_REQUIRE_AUTH="false").test_client()
    before = client.get("/metrics").get_data(as_text=True)
    client.post("/api/participants/register", json={"giveaway_id": 1, "user_id": 81}, headers=BOT)
    client.post("/api/participants/register", json={"giveaway_id": 1, "user_id": 81}, headers=BOT)
    client.post(
        "/api/participants/verify-subscription", json={"user_id": 81, "account_id": 42}, headers=BOT
    )
    after = client.get("/metrics").get_data(as_text=True)

    def grew(name, **labels):
        return metric(after, name, **labels) - metric(before, name, **labels)

    assert (
        grew(
            "telegive_participant_http_requests_total",
            route="/api/participants/register",
            status="200",
        )
        == 2
    )
    assert grew("telegive_participant_registrations_total", outcome="captcha_required") == 2
    assert grew("telegive_participant_captcha_outcomes_total", outcome="issued") == 1
    assert grew("telegive_participant_captcha_outcomes_total", outcome="pending") == 1
    assert grew("telegive_participant_subscription_checks_total", result="subscribed") == 1
    assert (
        grew("telegive_participant_outgoing_requests_total", peer="telegram", outcome="http_200")
        == 1
    )
    assert grew("telegive_participant_cache_requests_total", cache="giveaway", result="hit") == 1
    assert (
        grew(
            "telegive_participant_http_request_duration_seconds_count",
            route="/api/participants/register",
        )
        == 2
    )


def test_giveaway_summary_and_verify_draws_commands(app, peers):
    peers.standard()
    add_entries(app, 1, range(100, 130))
    client = app.test_client()
    client.post("/api/participants/1/select-winners", json={"winner_count": 3}, headers=GIVEAWAY)
    runner = app.test_cli_runner()
    summary = runner.invoke(args=["giveaway-summary", "1", "--json"])
    assert summary.exit_code == 0, summary.output
    data = json.loads(summary.output)
    assert data["entries"] == 30 and data["entries_closed"] is True
    assert len(data["winners"]) == 3 and data["draw_records"] == 1
    text = runner.invoke(args=["giveaway-summary", "1"])
    assert "winners (3)" in text.output
    assert runner.invoke(args=["verify-draws"]).exit_code == 0
    assert "0 expired" in runner.invoke(args=["clean-captcha"]).output


def test_gunicorn_refuses_to_start_without_a_required_setting():
    env = {
        "PATH": os.environ["PATH"],
        "APP_ENV": "production",
        "GUNICORN_BIND": f"127.0.0.1:{free_port()}",
    }
    result = subprocess.run(
        [str(VENV_BIN / "gunicorn"), "-c", "gunicorn.conf.py", "app:create_app()"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "cannot start" in result.stderr and "SERVICE_TOKENS" in result.stderr


def served_per_worker(directory: Path, route: str) -> dict[str, float]:
    """Requests to ``route`` as each worker's own sample file records them."""
    from prometheus_client.mmap_dict import MmapedDict

    counts = {}
    for path in directory.glob("counter_*.db"):
        sample_file = MmapedDict(str(path), read_mode=True)
        counts[path.stem] = sum(
            value
            for key, value, _timestamp in sample_file.read_all_values()
            if "http_requests_total" in key and route in key
        )
        sample_file.close()
    return {pid: count for pid, count in counts.items() if count}


def test_metrics_add_up_across_gunicorn_workers(database_url, tmp_path):
    env = test_env(database_url, METRICS_REQUIRE_AUTH="false", LOG_LEVEL="WARNING")
    env.update(WEB_CONCURRENCY="2", GUNICORN_WORKER_CLASS="gthread", GUNICORN_THREADS="1")
    env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "metrics")
    with gunicorn(env, tmp_path) as base:
        sent = 0
        for _ in range(30):  # until both workers have served some (the kernel decides who accepts)
            with ThreadPoolExecutor(max_workers=8) as pool:
                answers = list(
                    pool.map(
                        lambda _i: requests.get(
                            f"{base}/health/live", timeout=5, headers={"Connection": "close"}
                        ),
                        range(20),
                    )
                )
            assert all(r.ok for r in answers)
            sent += 20
            per_worker = served_per_worker(tmp_path / "metrics", "/health/live")
            if len(per_worker) == 2:
                break
        assert len(per_worker) == 2, per_worker
        assert sum(per_worker.values()) == sent
        # Each worker saw only its share; the scrape (served by one worker) reports them all.
        text = requests.get(f"{base}/metrics", timeout=5).text
    assert metric(text, "telegive_participant_http_requests_total", route="/health/live") == sent
