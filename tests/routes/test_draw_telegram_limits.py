"""The draw's re-check within Telegram's limits (issue 15, item 3): it is paced by the bot's budget,
waits out a flood wait when the Giveaway service's 30 s allow it, fails with 503 and records
nothing when they do not, and a retried draw does not ask again about candidates Telegram called
subscribed after the close."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque

import pytest
from sqlalchemy import func, select

from extensions import db
from models import DrawRecord
from tests.conftest import DRAND_CHAIN
from tests.factories import add_entries
from tests.routes.test_draws import select_winners
from utils import draw as algorithm

ENTRANTS = [2_000_000_000 + 7 * i for i in range(600)]
LEFT = set(ENTRANTS[::10] + ENTRANTS[3::10] + ENTRANTS[7::10])  # 30 % left the channel


class LimitingTelegram:
    """Telegram as a bot sees it: at most ``per_second`` getChatMember calls in any second, a 429
    with ``retry_after`` beyond that; the users in ``left`` have left the channel."""

    def __init__(self, per_second: int, left: set[int], retry_after: int = 1) -> None:
        self.per_second = per_second
        self.left = left
        self.retry_after = retry_after
        self.calls: deque[float] = deque()
        self.asked: Counter[int] = Counter()
        self.refused = 0
        self.lock = threading.Lock()

    def __call__(self, user_id: int) -> tuple[int, dict]:
        with self.lock:
            now = time.monotonic()
            while self.calls and self.calls[0] <= now - 1.0:
                self.calls.popleft()
            if len(self.calls) >= self.per_second:
                self.refused += 1
                return 429, {
                    "ok": False,
                    "error_code": 429,
                    "description": "Too Many Requests: retry after 1",
                    "parameters": {"retry_after": self.retry_after},
                }
            self.calls.append(now)
            self.asked[user_id] += 1
        status = "left" if user_id in self.left else "member"
        return 200, {"ok": True, "result": {"status": status, "user": {"id": user_id}}}


def record_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(DrawRecord))


@pytest.fixture
def app(make_app):
    # A budget above the 30 calls a second this Telegram allows: its 429s must be waited out.
    return make_app(TELEGRAM_CALLS_PER_SECOND="45")


@pytest.fixture
def client(app):
    return app.test_client()


def test_a_draw_of_100_with_30_percent_gone_completes_against_30_calls_a_second(app, client, peers):
    peers.standard()
    add_entries(app, 1, ENTRANTS, names=False)
    telegram = LimitingTelegram(per_second=30, left=LEFT)
    peers.telegram_answer = telegram
    answer = select_winners(client, count=100)
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    winners = [w["user_id"] for w in body["winners"]]
    assert len(winners) == 100 and not set(winners) & LEFT
    skipped = [s["user_id"] for s in body["skipped"]]
    assert skipped and set(skipped) <= LEFT
    assert telegram.refused > 0  # Telegram did push back, and the draw waited it out
    assert max(telegram.asked.values()) == 1  # no candidate was asked twice for an answer
    assert algorithm.check_draw([body["draw"]], sorted(ENTRANTS), [DRAND_CHAIN]).problems == []


def test_a_flood_wait_longer_than_the_draw_can_wait_fails_with_503_and_records_nothing(
    app, client, peers
):
    peers.standard()
    add_entries(app, 1, ENTRANTS[:50], names=False)
    peers.telegram_answer = LimitingTelegram(per_second=0, left=set(), retry_after=120)
    answer = select_winners(client, count=5)
    assert answer.status_code == 503
    assert answer.get_json()["error_code"] == "SUBSCRIPTION_CHECK_UNAVAILABLE"
    assert int(answer.headers["Retry-After"]) >= 1
    assert record_count(app) == 0


def test_a_retried_draw_does_not_ask_again_whom_telegram_called_subscribed(make_app, peers):
    # The outage's retry comes at once here (in production after Retry-After, when the circuit
    # the 502s opened lets calls through again).
    app = make_app(UPSTREAM_CIRCUIT_FAILURES="1000")
    client = app.test_client()
    peers.standard()
    add_entries(app, 1, ENTRANTS[:200], names=False)
    telegram = LimitingTelegram(per_second=1000, left=set())
    answers = {"left": 12}

    def failing_after_a_few(user_id: int) -> tuple[int, dict]:
        with telegram.lock:
            answers["left"] -= 1
            broken = answers["left"] < 0
        if broken:
            return 502, {"ok": False, "error_code": 502, "description": "Bad Gateway"}
        return telegram(user_id)

    peers.telegram_answer = failing_after_a_few
    first = select_winners(client, count=40)
    assert first.status_code == 503
    assert record_count(app) == 0
    answered_before = set(telegram.asked)
    assert answered_before

    peers.telegram_answer = telegram
    retried = select_winners(client, count=40)
    assert retried.status_code == 200, retried.get_json()
    winners = {w["user_id"] for w in retried.get_json()["winners"]}
    assert answered_before & winners  # candidates of the failed attempt won on their answer
    assert max(telegram.asked.values()) == 1  # and were not asked a second time
