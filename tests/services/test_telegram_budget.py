"""The per-bot budget of Telegram calls: never exceeded, per bot, shared through Redis, closed by
a flood wait for every instance, and what a registration over it is told."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise

import pytest
import redis
from prometheus_client import REGISTRY
from redis.backoff import NoBackoff
from redis.retry import Retry

from config import ConfigError, Settings
from extensions import get_redis
from services.telegram_budget import SPAN, LocalPacer, TelegramBudget, telegram_budget
from tests.conftest import BOT, TELEGRAM_URL, test_env
from tests.routes.test_registration import answer, current_answer, entries, register
from utils.pacing import MICROS, Verdict

BOT_A, BOT_B = "1001", "1002"
SPAN_SECONDS = SPAN / MICROS  # the budget's calls fit in 1.1 s: one slot every 1.1 / rate
FLOOD_WAIT = {
    "ok": False,
    "error_code": 429,
    "description": "Too Many Requests: retry after 30",
    "parameters": {"retry_after": 30},
}


class FakeClock:
    """A clock that moves only when someone sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def fake_budget(rate: float) -> tuple[TelegramBudget, FakeClock]:
    clock = FakeClock()
    return TelegramBudget(rate, LocalPacer(clock=clock), sleep=clock.sleep), clock


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(f"telegive_participant_{name}", labels) or 0.0


def lua_redis_app(make_app):
    """An application on a Redis that runs Lua scripts (the real one; fakeredis needs lupa)."""
    app = make_app(redis=True)
    with app.app_context():
        try:
            get_redis().eval("return 1", 0)
        except redis.ResponseError:
            pytest.skip("this Redis runs no Lua scripts: set TEST_REDIS_URL")
    return app


def reserve_together(app, bot_id: str, callers: int, *, max_wait: float) -> list[int]:
    """``callers`` threads each reserving one slot of ``bot_id`` at once; the slots granted."""

    def one(_index: int) -> int | None:
        with app.app_context():
            slot = telegram_budget()._reserve(bot_id, max_wait)
        return slot.at_us if slot.verdict is Verdict.GRANTED else None

    with ThreadPoolExecutor(max_workers=callers) as pool:
        slots = list(pool.map(one, range(callers)))
    return sorted(slot for slot in slots if slot is not None)


def assert_never_over(slots: list[int], rate: int) -> None:
    for index, start in enumerate(slots):
        in_one_second = [slot for slot in slots[index:] if slot < start + MICROS]
        assert len(in_one_second) <= rate


# --- never exceeded, per bot ----------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["in_process", "redis"])
def test_concurrent_callers_never_exceed_the_budget_of_one_bot(make_app, backend):
    overrides = {"TELEGRAM_CALLS_PER_SECOND": "10"}
    app = make_app(**overrides) if backend == "in_process" else lua_redis_app(make_app)
    if backend == "redis":
        app.extensions["telegive.telegram_budget"].rate = 10.0
    slots = reserve_together(app, BOT_A, 40, max_wait=2.0)
    # 2 s of waiting hold the slot at once and 18 more 0.11 s apart (a few more if the callers
    # arrive spread out); the others are refused.
    assert 19 <= len(slots) < 40
    assert_never_over(slots, 10)
    assert min(b - a for a, b in pairwise(slots)) >= round(SPAN / 10)


@pytest.mark.parametrize("backend", ["in_process", "redis"])
def test_callers_woken_late_by_the_scheduler_still_keep_every_second_within_the_budget(
    make_app, backend
):
    """Every third caller wakes 90 ms after its slot (a busy worker): alone, the schedule would
    then put 11 calls in some second; the admission holds the late ones back."""
    app = make_app() if backend == "in_process" else lua_redis_app(make_app)
    woken = threading.local()

    def sleep_late_once(seconds: float) -> None:
        late = 0.09 if woken.index % 3 == 0 else 0.0
        woken.index = 1  # late once: the admission's own waits are on time
        time.sleep(seconds + late)

    def one(index: int) -> float | None:
        woken.index = index
        with app.app_context():
            budget = telegram_budget()
            slot = budget.acquire(BOT_A, max_wait=4.0)
        return time.monotonic() if slot.verdict is Verdict.GRANTED else None

    with app.app_context():
        budget = telegram_budget()
        budget.rate, budget._sleep = 10.0, sleep_late_once
    with ThreadPoolExecutor(max_workers=30) as pool:
        calls = sorted(at for at in pool.map(one, range(30)) if at is not None)
    assert len(calls) >= 25
    # Counted in windows a little under a second: the calls are timed after their admission.
    assert max(sum(1 for at in calls if start <= at < start + 0.98) for start in calls) <= 10


def test_callers_sleep_until_their_slot(app):
    budget, clock = fake_budget(rate=4)
    started = clock.now
    with app.app_context():
        waits = [budget.acquire(BOT_A, max_wait=2.0).wait for _ in range(3)]
    # each caller slept out the time to its own slot
    assert waits == pytest.approx([0.0, SPAN_SECONDS / 4, SPAN_SECONDS / 4])
    assert clock.now - started == pytest.approx(SPAN_SECONDS / 2)


@pytest.mark.parametrize("backend", ["in_process", "redis"])
def test_two_bots_do_not_share_a_budget(make_app, backend):
    app = make_app() if backend == "in_process" else lua_redis_app(make_app)
    with app.app_context():
        budget = telegram_budget()
        budget.rate = 0.1  # one call every 10 s
        assert budget.acquire(BOT_A, max_wait=0).verdict is Verdict.GRANTED
        assert budget.acquire(BOT_A, max_wait=0).verdict is Verdict.BUSY
        other = budget.acquire(BOT_B, max_wait=0)
    assert (other.verdict, other.wait) == (Verdict.GRANTED, 0.0)


def test_the_budget_in_redis_is_keyed_by_the_bot_id_never_the_token(make_app, peers):
    app = lua_redis_app(make_app)
    peers.standard()
    client = app.test_client()
    client.post(
        "/api/participants/verify-subscription", json={"user_id": 5, "account_id": 42}, headers=BOT
    )
    with app.app_context():
        keys = sorted(get_redis().scan_iter("*telegram_budget*"))
    assert keys == [
        "telegive:participant:telegram_budget:4242000",
        "telegive:participant:telegram_budget:4242000:admitted",
    ]


def test_without_redis_at_hand_each_process_keeps_the_budget_itself(app):
    unreachable = redis.Redis(port=1, retry=Retry(NoBackoff(), 0), decode_responses=True)
    app.extensions["telegive.redis"] = unreachable
    try:
        with app.app_context():
            budget = telegram_budget()
            budget.rate = 0.1
            assert budget.acquire(BOT_A, max_wait=0).verdict is Verdict.GRANTED
            assert budget.acquire(BOT_A, max_wait=0).verdict is Verdict.BUSY
    finally:
        app.extensions["telegive.redis"] = None


# --- flood waits ----------------------------------------------------------------------------------


def test_a_429_closes_the_bots_budget_for_every_instance_sharing_redis(make_app, peers):
    first = lua_redis_app(make_app)
    second = make_app(redis=True)
    second.extensions["telegive.redis"] = first.extensions["telegive.redis"]
    peers.standard()
    peers.telegram_answer = lambda _user: (429, FLOOD_WAIT)
    before = sample("telegram_flood_waits_total")
    body = {"user_id": 5, "account_id": 42}
    told = first.test_client().post("/api/participants/verify-subscription", json=body, headers=BOT)
    assert told.get_json()["retry_after"] == 30
    calls = peers.calls_to(TELEGRAM_URL)
    other = second.test_client().post(
        "/api/participants/verify-subscription", json=body, headers=BOT
    )
    assert other.status_code == 503
    assert other.get_json()["details"] == {"peer": "telegram", "reason": "rate_limited"}
    assert 29 <= other.get_json()["retry_after"] <= 30
    assert peers.calls_to(TELEGRAM_URL) == calls  # the other instance did not ask Telegram
    assert sample("telegram_flood_waits_total") == before + 1


def test_after_a_flood_wait_the_bot_resumes_at_a_lower_rate(app):
    budget, clock = fake_budget(rate=20)
    with app.app_context():
        budget.flood_wait(BOT_A, 3)
        closed = budget.acquire(BOT_A, max_wait=2.0)
        assert (closed.verdict, closed.retry_after) == (Verdict.CLOSED, 3)
        clock.sleep(3)
        first = budget.acquire(BOT_A, max_wait=2.0)
        second = budget.acquire(BOT_A, max_wait=2.0)
    assert first.wait == 0.0
    assert second.wait == pytest.approx(SPAN_SECONDS / 10)  # half the rate: 10, not 20


def test_a_caller_waiting_for_its_slot_does_not_call_into_a_flood_wait_begun_meanwhile(app):
    clock = FakeClock()
    budget = TelegramBudget(4, LocalPacer(clock=clock))

    def sleep_while_a_429_arrives(seconds: float) -> None:
        clock.sleep(seconds)
        budget.flood_wait(BOT_A, 30)

    budget._sleep = sleep_while_a_429_arrives
    with app.app_context():
        budget.acquire(BOT_A, max_wait=2.0)
        waited = budget.acquire(BOT_A, max_wait=2.0)
    assert waited.verdict is Verdict.CLOSED
    assert waited.retry_after == 30


# --- registrations over the budget ----------------------------------------------------------------


def test_a_registration_over_the_budget_is_refused_at_once_with_retry_after_and_nothing_written(
    make_app, peers
):
    app = make_app(
        TELEGRAM_CALLS_PER_SECOND="0.1",
        TELEGRAM_BUDGET_WAIT_SECONDS="2",
        SUBSCRIPTION_OVERFLOW="refuse",
    )
    client = app.test_client()
    peers.standard()
    taken = client.post(  # another user's check takes the bot's slot for the next 11 s
        "/api/participants/verify-subscription", json={"user_id": 9, "account_id": 42}, headers=BOT
    )
    assert taken.status_code == 200
    before = sample("telegram_budget_refusals_total", reason="over_budget")
    register(client)
    started = time.monotonic()
    response = answer(client, current_answer(app))
    waited = time.monotonic() - started
    body = response.get_json()
    assert response.status_code == 503
    assert body["error_code"] == "SUBSCRIPTION_CHECK_UNAVAILABLE"
    assert body["details"] == {"peer": "telegram", "reason": "over_budget"}
    assert 10 <= body["retry_after"] <= 11  # when the bot's next slot frees (1.1 / 0.1 s)
    assert response.headers["Retry-After"] == str(body["retry_after"])
    assert waited < 2  # no wait that could not end in a slot
    assert entries(app) == []
    assert peers.calls_to(TELEGRAM_URL) == 1
    assert sample("telegram_budget_refusals_total", reason="over_budget") == before + 1


def test_a_registration_waits_for_a_slot_within_the_bounded_wait_and_enters(make_app, peers):
    app = make_app(TELEGRAM_CALLS_PER_SECOND="4", TELEGRAM_BUDGET_WAIT_SECONDS="2")
    client = app.test_client()
    peers.standard()
    register(client)
    client.post(
        "/api/participants/verify-subscription", json={"user_id": 9, "account_id": 42}, headers=BOT
    )
    started = time.monotonic()
    response = answer(client, current_answer(app))
    assert response.status_code in (200, 201)
    assert response.get_json()["participant_id"]
    assert 0.2 <= time.monotonic() - started < 2
    assert len(entries(app)) == 1


# --- settings -------------------------------------------------------------------------------------


def test_the_overflow_mode_defers_by_default_and_an_unknown_one_is_refused_at_start(database_url):
    assert Settings.from_env(test_env(database_url)).subscription_overflow == "defer"
    assert (
        Settings.from_env(
            test_env(database_url, SUBSCRIPTION_OVERFLOW="REFUSE")
        ).subscription_overflow
        == "refuse"
    )
    with pytest.raises(ConfigError, match=r"SUBSCRIPTION_OVERFLOW .*'defer' or 'refuse'"):
        Settings.from_env(test_env(database_url, SUBSCRIPTION_OVERFLOW="queue"))


def test_the_budget_wait_stays_well_under_the_bots_timeout(database_url):
    with pytest.raises(ConfigError, match="TELEGRAM_BUDGET_WAIT_SECONDS"):
        Settings.from_env(test_env(database_url, TELEGRAM_BUDGET_WAIT_SECONDS="10"))
