"""What a newcomer does after `make run`: the real server (gunicorn) and the development stand-in,
walking a user through register → captcha → answer → entry over HTTP."""

from __future__ import annotations

import os

import pytest
import requests

from tests.servers import ROOT, VENV_BIN, free_port, running
from utils.captcha import solve_question


@pytest.fixture
def dev_server(tmp_path):
    """`make run`'s script (devtools/run-dev.sh): migrations, the stand-in, gunicorn."""
    port, standin_port = free_port(), free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TELEGIVE_", "DATABASE_URL", "REDIS_URL", "APP_ENV", "SERVICE_"))
    }
    env.update(
        PORT=str(port),
        STANDIN_PORT=str(standin_port),
        DATABASE_URL=f"sqlite:///{tmp_path / 'dev.db'}",
        WEB_CONCURRENCY="1",
        VENV=str(VENV_BIN.parent),
    )
    base = f"http://127.0.0.1:{port}"
    with running(
        [str(ROOT / "devtools" / "run-dev.sh")], env, tmp_path / "server.log", f"{base}/health"
    ):
        yield base


def join(base: str, user: int, giveaway_id: int = 1) -> dict:
    body = {
        "giveaway_id": giveaway_id,
        "user_id": user,
        "username": "neo",
        "first_name": "Thomas",
        "last_name": None,
    }
    challenge = requests.post(f"{base}/api/participants/register", json=body, timeout=10).json()
    assert challenge["requires_captcha"] is True
    return requests.post(
        f"{base}/api/participants/validate-captcha",
        json={
            "user_id": user,
            "giveaway_id": giveaway_id,
            "answer": solve_question(challenge["captcha_question"]),
        },
        timeout=10,
    ).json()


def test_a_user_joins_a_giveaway_against_the_stand_in(dev_server):
    user = 6_000_000_001  # ends in 1: the stand-in's Telegram says "member"
    answered = join(dev_server, user)
    assert answered["captcha_completed"] is True
    assert answered["participant_id"] >= 1
    status = requests.get(f"{dev_server}/api/participants/captcha-status/{user}", timeout=10).json()
    assert status["captcha_completed"] is True
    assert status["total_participations"] == 1


def test_a_user_who_left_the_channel_is_told_to_subscribe(dev_server):
    answered = join(dev_server, 6_000_000_010)  # ends in 0: the stand-in says "left"
    assert answered["success"] is False
    assert answered["error_code"] == "USER_NOT_SUBSCRIBED"
    assert answered["captcha_completed"] is True
    assert "@telegive_demo" in answered["error"]
