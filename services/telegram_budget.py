"""The per-bot budget of Telegram calls: ``TELEGRAM_CALLS_PER_SECOND`` for each bot, never more.

Every ``getChatMember`` takes a slot of its bot's schedule first (``utils/pacing.py``: one slot
every ``1.1 / rate`` seconds, a flood wait closing the schedule and slowing it down afterwards).
The budget is counted where it matters, as the calls reach Telegram, and a call's way there
(the worker resuming it, the request, the network) takes longer for some calls than for others:
the service admits at most ``rate`` calls in any 1.1 s (``TRANSIT_MARGIN``), so that Telegram
sees at most ``rate`` in any second while calls differ in their way there by under 0.1 s.
With Redis the schedule is one hash per bot, keyed by the bot's id (never its token), and read
and changed by one Lua script on Redis's clock, so every worker of every instance shares it;
without Redis each process keeps its own. While Redis cannot be reached, each process falls back
to its own schedule (logged): the budget then holds per process, not across them.

A caller reserves a slot at most ``max_wait`` seconds ahead and sleeps until it; when none is
free that soon it is refused at once (no wait that could not end in a slot), with the wait it
would have needed. Then the call is admitted as it is about to be made: refused if a flood wait
began meanwhile, delayed while the last second already holds ``ceil(rate)`` calls (a caller
woken late would otherwise share a second with the callers of the next slots), within the same
``max_wait`` in all. In Redis the admitted calls of the last second are a sorted set beside the
schedule (``<key>:admitted``).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable

import redis
from cachetools import LRUCache
from flask import Flask, current_app

from config import Settings
from extensions import get_redis
from utils import pacing
from utils.metrics import TELEGRAM_BUDGET_REFUSALS, TELEGRAM_BUDGET_WAIT, TELEGRAM_FLOOD_WAITS
from utils.pacing import MICROS, PaceState, Slot, Verdict

KEY_PREFIX = "telegive:participant:telegram_budget:"
DEFAULT_FLOOD_WAIT = 1.0  # a 429 without retry_after (Telegram always sends one)
SPARE_MARGIN = 0.002  # seconds past a free slot before acquire_spare asks for it again
TRANSIT_MARGIN = 0.1  # seconds by which calls may differ in their way to Telegram
SPAN = round((1 + TRANSIT_MARGIN) * MICROS)  # the budget's calls fit in this, in microseconds
log = logging.getLogger("telegive.telegram_budget")


class LocalPacer:
    """The schedules of this process, one per bot. Safe to share between threads and greenlets
    (the lock is never held while sleeping)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_bots: int = 10_000) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._states: LRUCache[str, PaceState] = LRUCache(max_bots)

    def _now(self) -> int:
        return round(self._clock() * MICROS)

    def _state(self, bot_id: str) -> PaceState:
        state = self._states.get(bot_id)
        if state is None:
            state = self._states[bot_id] = PaceState()
        return state

    def reserve(self, bot_id: str, *, rate: float, max_wait: float) -> Slot:
        """Reserve the bot's next slot if it is at most ``max_wait`` seconds away."""
        with self._lock:
            return pacing.reserve(
                self._state(bot_id), now=self._now(), rate=rate, max_wait=_micros(max_wait)
            )

    def penalize(self, bot_id: str, *, flood_wait: float) -> None:
        """Close the bot's schedule for ``flood_wait`` seconds, then slow it down."""
        with self._lock:
            pacing.penalize(self._state(bot_id), now=self._now(), flood_wait=_micros(flood_wait))

    def admit(self, bot_id: str, *, rate: float, window: int) -> Slot:
        """Admit the bot's call about to be made (``pacing.admit``)."""
        with self._lock:
            return pacing.admit(self._state(bot_id), now=self._now(), rate=rate, window=window)


# The same arithmetic as utils/pacing.py, in whole microseconds of Redis's clock, in one atomic
# step per call. Whole microseconds stay exact in Lua's doubles; '%.0f' writes them in full.
_PRELUDE = """
if redis.replicate_commands then redis.replicate_commands() end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local recovery = tonumber(ARGV[1])
local fields = redis.call('HMGET', KEYS[1], 'next_slot', 'closed_until', 'factor', 'slow_from')
local next_slot = tonumber(fields[1]) or 0
local closed_until = tonumber(fields[2]) or 0
local factor = tonumber(fields[3]) or 1
local slow_from = tonumber(fields[4]) or 0
local function factor_at(at)
  if at <= slow_from or factor >= 1 then return factor end
  return math.min(1, factor + (1 - factor) * (at - slow_from) / recovery)
end
local function keep_until_settled()
  local settled = math.max(next_slot, closed_until)
  if factor < 1 then settled = math.max(settled, slow_from + recovery) end
  redis.call('PEXPIRE', KEYS[1], math.ceil((settled - now) / 1000) + 1000)
end
local function whole(value) return string.format('%.0f', value) end
"""
_RESERVE = (
    _PRELUDE
    + """
local rate, max_wait = tonumber(ARGV[2]), tonumber(ARGV[3])
local slot = math.max(next_slot, now, closed_until)
local wait = slot - now
if wait > max_wait then
  local verdict = 0
  if closed_until > now and closed_until >= next_slot then verdict = -1 end
  return {verdict, whole(wait), whole(slot)}
end
next_slot = slot + math.ceil(1000000 / (rate * factor_at(slot)))
redis.call('HSET', KEYS[1], 'next_slot', whole(next_slot))
keep_until_settled()
return {1, whole(wait), whole(slot)}
"""
)
_PENALIZE = (
    _PRELUDE
    + """
local flood_wait, slowdown, min_factor = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if now >= closed_until then factor = math.max(min_factor, factor_at(now) * slowdown) end
closed_until = math.max(closed_until, now + flood_wait)
slow_from = closed_until
redis.call('HSET', KEYS[1], 'closed_until', whole(closed_until),
  'factor', string.format('%.6f', factor), 'slow_from', whole(slow_from))
keep_until_settled()
return whole(closed_until - now)
"""
)
# KEYS[2] holds the calls admitted in the last second (scores: Redis's clock in microseconds).
_ADMIT = (
    _PRELUDE
    + """
local limit, window, member = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
if closed_until > now then return {-1, whole(closed_until - now), whole(closed_until)} end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', whole(now - window))
if redis.call('ZCARD', KEYS[2]) >= limit then
  local frees = tonumber(redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')[2]) + window
  return {0, whole(frees - now), whole(frees)}
end
redis.call('ZADD', KEYS[2], whole(now), member)
redis.call('PEXPIRE', KEYS[2], math.ceil(window / 1000) + 1000)
return {1, '0', whole(now)}
"""
)


class RedisPacer:
    """The schedules in Redis, shared by every process that uses the same Redis."""

    def __init__(self, client: redis.Redis, prefix: str = KEY_PREFIX) -> None:
        self.client = client
        self.prefix = prefix  # another prefix keeps other schedules (services/public_draws.py)
        self._reserve = client.register_script(_RESERVE)
        self._penalize = client.register_script(_PENALIZE)
        self._admit = client.register_script(_ADMIT)

    def reserve(self, bot_id: str, *, rate: float, max_wait: float) -> Slot:
        """Reserve the bot's next slot if it is at most ``max_wait`` seconds away."""
        verdict, wait, at = self._reserve(
            keys=[self.prefix + bot_id], args=[pacing.RECOVERY, rate, _micros(max_wait)]
        )
        return Slot(Verdict(int(verdict)), int(wait), int(at))

    def penalize(self, bot_id: str, *, flood_wait: float) -> None:
        """Close the bot's schedule for ``flood_wait`` seconds, then slow it down."""
        self._penalize(
            keys=[self.prefix + bot_id],
            args=[pacing.RECOVERY, _micros(flood_wait), pacing.SLOWDOWN, pacing.MIN_FACTOR],
        )

    def admit(self, bot_id: str, *, rate: float, window: int) -> Slot:
        """Admit the bot's call about to be made (``pacing.admit``, on Redis's clock)."""
        key = self.prefix + bot_id
        verdict, wait, at = self._admit(
            keys=[key, key + ":admitted"],
            args=[pacing.RECOVERY, pacing.window_limit(rate), window, secrets.token_hex(8)],
        )
        return Slot(Verdict(int(verdict)), int(wait), int(at))


class TelegramBudget:
    """An application's budget: Redis's schedules when it has Redis, else this process's."""

    def __init__(
        self,
        rate: float,
        local: LocalPacer | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate
        self.local = local or LocalPacer()
        self._sleep = sleep
        self._shared: RedisPacer | None = None

    @property
    def schedule_rate(self) -> float:
        """The schedule's slots a second: the budget spread over its span (``SPAN``)."""
        return self.rate * MICROS / SPAN

    def _redis(self) -> RedisPacer | None:
        client = get_redis()
        if client is None:
            return None
        shared = self._shared
        if shared is None or shared.client is not client:
            shared = self._shared = RedisPacer(client)
        return shared

    def _reserve(self, bot_id: str, max_wait: float) -> Slot:
        shared = self._redis()
        if shared is not None:
            try:
                return shared.reserve(bot_id, rate=self.schedule_rate, max_wait=max_wait)
            except redis.RedisError as error:
                log.warning("budget in Redis unreadable", extra={"error": type(error).__name__})
        return self.local.reserve(bot_id, rate=self.schedule_rate, max_wait=max_wait)

    def _admit_once(self, bot_id: str) -> Slot:
        shared = self._redis()
        if shared is not None:
            try:
                return shared.admit(bot_id, rate=self.rate, window=SPAN)
            except redis.RedisError as error:
                log.warning("budget in Redis unreadable", extra={"error": type(error).__name__})
        return self.local.admit(bot_id, rate=self.rate, window=SPAN)

    def _admit(self, bot_id: str, *, waited: float, max_wait: float) -> Slot:
        """Admit the call now, waiting while the last second is full, until ``max_wait`` seconds
        of waiting in all; CLOSED at once when a flood wait began. A granted slot's ``wait`` is
        the whole time the caller waited."""
        while True:
            slot = self._admit_once(bot_id)
            if slot.verdict is Verdict.GRANTED:
                return Slot(Verdict.GRANTED, _micros(waited), slot.at_us)
            if slot.verdict is Verdict.CLOSED or waited + slot.wait > max_wait:
                return slot
            self._sleep(slot.wait)
            waited += slot.wait

    def acquire(self, bot_id: str, *, max_wait: float) -> Slot:
        """Wait for the bot's next slot, then for the call's admission, at most ``max_wait``
        seconds in all; a refusal (BUSY or CLOSED) is returned with the wait it would need."""
        slot = self._reserve(bot_id, max_wait)
        if slot.verdict is Verdict.GRANTED:
            if slot.wait > 0:
                self._sleep(slot.wait)
            slot = self._admit(bot_id, waited=slot.wait, max_wait=max_wait)
        if slot.verdict is Verdict.GRANTED:
            TELEGRAM_BUDGET_WAIT.observe(slot.wait)
        else:
            TELEGRAM_BUDGET_REFUSALS.labels(refusal_reason(slot)).inc()
        return slot

    def acquire_spare(self, bot_id: str, *, max_wait: float) -> Slot:
        """Take a slot of the bot's only when it is free now, trying again when the schedule
        says the next one frees, for at most ``max_wait`` seconds; CLOSED is returned at once.

        For work that can wait (the pending verifier): it never reserves a slot ahead of now,
        so every caller who did (registrations, verify-subscription, the draw) comes first and
        waits at most one slot more; it uses what they leave. Its waits and refusals are not
        counted in the budget's metrics, which describe the callers who cannot wait.
        """
        waited = 0.0
        while True:
            slot = self._reserve(bot_id, 0.0)
            if slot.verdict is Verdict.GRANTED:
                return self._admit(bot_id, waited=waited, max_wait=max_wait)
            if slot.verdict is Verdict.CLOSED or waited >= max_wait:
                return slot
            # A little past the free slot, so that it has come on the schedule's clock too.
            step = min(slot.wait + SPARE_MARGIN, max_wait - waited)
            self._sleep(step)
            waited += step

    def flood_wait(self, bot_id: str, retry_after: int | None) -> None:
        """Telegram answered 429: close the bot's schedule for ``retry_after``, here and in
        Redis (every instance), then let it recover slowly."""
        TELEGRAM_FLOOD_WAITS.inc()
        log.warning("telegram flood wait", extra={"bot_id": bot_id, "retry_after": retry_after})
        wait = float(retry_after) if retry_after else DEFAULT_FLOOD_WAIT
        self.local.penalize(bot_id, flood_wait=wait)  # kept here too, for when Redis fails
        shared = self._redis()
        if shared is not None:
            try:
                shared.penalize(bot_id, flood_wait=wait)
            except redis.RedisError as error:
                log.warning("budget in Redis unwritable", extra={"error": type(error).__name__})


def _micros(seconds: float) -> int:
    return round(seconds * MICROS)


def refusal_reason(slot: Slot) -> str:
    """Why a slot was refused, as the error's ``reason``: ``rate_limited`` during a flood wait,
    ``over_budget`` when the bot's slots are taken."""
    return "rate_limited" if slot.verdict is Verdict.CLOSED else "over_budget"


def init_app(app: Flask, settings: Settings) -> None:
    """The application's budget, created once before any request."""
    app.extensions["telegive.telegram_budget"] = TelegramBudget(settings.telegram_calls_per_second)


def telegram_budget() -> TelegramBudget:
    """The running application's budget of Telegram calls."""
    return current_app.extensions["telegive.telegram_budget"]
