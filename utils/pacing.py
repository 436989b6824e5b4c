"""Pacing calls to one resource (a Telegram bot): at most ``rate`` calls a second, one at a time.

A virtual schedule (GCRA with a burst of one): each call takes the next free slot, ``1 / rate``
seconds after the slot before it, so no window of one second ever holds more than ``rate`` calls
and callers who arrive together are spread out rather than sent together. A caller may reserve
a slot at most ``max_wait`` seconds ahead; a slot further away is refused with the wait it
would need, and nothing is reserved.

A slot is when a call may go, not when it goes: a caller woken late by its scheduler would land
in the next slot's second. So the call itself is admitted too, when it is about to be made: at
most ``ceil(rate)`` admissions in any window of ``window`` (one second unless the caller keeps a
margin; the times of the last ones are kept), else the caller waits until the oldest leaves the
window. The schedule spreads callers out; the window makes the bound hold for the calls as made.

A flood wait (Telegram's 429 with ``retry_after``) closes the schedule until the wait is over,
then reopens it at a fraction of the rate: halved (never below ``MIN_FACTOR``), recovering
linearly to the full rate over ``RECOVERY_SECONDS``. Another flood wait while the first is still
running extends it without halving again (calls in flight when it began report it several
times); one after it halves the current fraction again.

``services/telegram_budget.py`` keeps this state in process or in Redis, where a Lua script does
the same arithmetic.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from enum import Enum

RECOVERY_SECONDS = 60.0
SLOWDOWN = 0.5
MIN_FACTOR = 0.1
# Times are whole microseconds, so that slots a whole interval apart stay exactly that far apart
# however many are added up (in floating-point seconds 20 slots of 0.05 s can fit in 0.99999 s).
MICROS = 1_000_000
RECOVERY = int(RECOVERY_SECONDS * MICROS)


class Verdict(Enum):
    """Whether a slot was reserved, and if not, what holds the caller back."""

    GRANTED = 1
    BUSY = 0  # every slot within the caller's wait is taken
    CLOSED = -1  # a flood wait runs past the caller's wait


@dataclass(frozen=True)
class Slot:
    """The answer to a reservation: how far away the slot is (reserved or refused), and when."""

    verdict: Verdict
    wait_us: int
    at_us: int  # on the schedule's clock

    @property
    def wait(self) -> float:
        """Seconds until the slot."""
        return self.wait_us / MICROS

    @property
    def retry_after(self) -> int:
        """Whole seconds until the slot, at least one (for a refusal's ``retry_after``)."""
        return max(1, math.ceil(self.wait_us / MICROS))


@dataclass
class PaceState:
    """One resource's schedule, in microseconds of one clock."""

    next_slot: int = 0
    closed_until: int = 0
    factor: float = 1.0  # the fraction of the rate allowed at ``slow_from``
    slow_from: int = 0  # when the fraction starts recovering (the end of the flood wait)
    admitted: deque[int] = field(default_factory=deque)  # calls admitted in the last second


def factor_at(state: PaceState, at: int) -> float:
    """The fraction of the rate allowed at time ``at``."""
    if at <= state.slow_from or state.factor >= 1.0:
        return state.factor
    return min(1.0, state.factor + (1.0 - state.factor) * (at - state.slow_from) / RECOVERY)


def interval(rate: float, factor: float) -> int:
    """Microseconds between two slots at ``rate * factor`` calls a second (rounded up)."""
    return math.ceil(MICROS / (rate * factor))


def reserve(state: PaceState, *, now: int, rate: float, max_wait: int) -> Slot:
    """Reserve the next free slot if it is at most ``max_wait`` ahead of ``now``."""
    slot = max(state.next_slot, now, state.closed_until)
    wait = slot - now
    if wait > max_wait:
        closed = state.closed_until > now and state.closed_until >= state.next_slot
        return Slot(Verdict.CLOSED if closed else Verdict.BUSY, wait, slot)
    state.next_slot = slot + interval(rate, factor_at(state, slot))
    return Slot(Verdict.GRANTED, wait, slot)


def window_limit(rate: float) -> int:
    """Calls admitted in any one second: the rate, rounded up (the schedule's slots never put
    more than that in a second)."""
    return max(1, math.ceil(rate))


def admit(state: PaceState, *, now: int, rate: float, window: int = MICROS) -> Slot:
    """Admit a call about to be made at ``now``: CLOSED during a flood wait, BUSY (with the wait
    until a place frees) when the last ``window`` already holds ``window_limit(rate)`` calls."""
    if state.closed_until > now:
        return Slot(Verdict.CLOSED, state.closed_until - now, state.closed_until)
    admitted = state.admitted
    while admitted and admitted[0] <= now - window:
        admitted.popleft()
    if len(admitted) >= window_limit(rate):
        frees = admitted[0] + window
        return Slot(Verdict.BUSY, frees - now, frees)
    admitted.append(now)
    return Slot(Verdict.GRANTED, 0, now)


def penalize(state: PaceState, *, now: int, flood_wait: int) -> None:
    """A flood wait of ``flood_wait`` began at ``now``: close, then slow down."""
    if now >= state.closed_until:
        state.factor = max(MIN_FACTOR, factor_at(state, now) * SLOWDOWN)
    state.closed_until = max(state.closed_until, now + flood_wait)
    state.slow_from = state.closed_until
