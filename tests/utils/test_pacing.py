"""The schedule of one bot's calls: never more than the rate, slower after a flood wait."""

from __future__ import annotations

import math
from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from utils import pacing
from utils.pacing import MICROS, PaceState, Verdict

RATE = 20.0
SECOND = MICROS


def granted_slots(arrivals: list[tuple[int, int]], rate: float = RATE) -> list[int]:
    state = PaceState()
    slots = []
    for now, max_wait in sorted(arrivals):
        slot = pacing.reserve(state, now=now, rate=rate, max_wait=max_wait)
        if slot.verdict is Verdict.GRANTED:
            slots.append(slot.at_us)
    return slots


def most_in_one_second(slots: list[int]) -> int:
    return max(sum(1 for other in slots if start <= other < start + SECOND) for start in slots)


def test_callers_arriving_together_are_spread_one_slot_apart():
    slots = granted_slots([(100 * SECOND, 5 * SECOND)] * 50)
    assert len(slots) == 50
    assert slots[0] == 100 * SECOND
    assert {b - a for a, b in pairwise(slots)} == {SECOND // 20}
    assert most_in_one_second(slots) == 20


@given(
    st.lists(st.tuples(st.integers(0, 10 * SECOND), st.integers(0, 3 * SECOND)), max_size=150),
    st.sampled_from([1.0, 3.0, 7.5, 20.0, 29.0]),
)
def test_no_second_ever_holds_more_calls_than_the_rate(arrivals, rate):
    slots = granted_slots(arrivals, rate)
    assert not slots or most_in_one_second(slots) <= math.ceil(rate)


def calls_made(arrivals: list[tuple[int, int]], rate: float, *, admitted: bool) -> list[int]:
    """When the callers' calls go, each woken ``lateness`` after every time it slept (a busy
    scheduler): straight after the slot, or only once ``admit`` lets it (waiting out the wait it
    names, at most three seconds in all)."""
    state = PaceState()
    made = []
    for now, lateness in sorted(
        arrivals, key=lambda arrival: arrival[0]
    ):  # as the lock orders them
        slot = pacing.reserve(state, now=now, rate=rate, max_wait=3 * SECOND)
        if slot.verdict is not Verdict.GRANTED:
            continue
        made.append((slot.at_us + lateness, lateness))
    if not admitted:
        return sorted(at for at, _lateness in made)
    calls = []
    waking = sorted(made)  # (time a caller wakes and asks, its lateness): events in time order
    while waking:
        at, lateness = waking.pop(0)
        verdict = pacing.admit(state, now=at, rate=rate)
        if verdict.verdict is Verdict.GRANTED:
            calls.append(at)
        else:
            waking.append((at + verdict.wait_us + lateness, lateness))
            waking.sort()
    return calls


def test_callers_woken_late_would_crowd_a_second_and_the_admission_keeps_them_apart():
    # 20 a second; the caller of the first second's last slot wakes 80 ms late, into the next.
    arrivals = [(0, 80_000 if index == 19 else 0) for index in range(100)]
    assert most_in_one_second(calls_made(arrivals, RATE, admitted=False)) == 21
    calls = calls_made(arrivals, RATE, admitted=True)
    assert len(calls) == 61  # everyone whose slot came within the three seconds' wait
    assert most_in_one_second(calls) == 20


@given(
    st.lists(st.tuples(st.integers(0, 5 * SECOND), st.integers(0, SECOND // 2)), max_size=120),
    st.sampled_from([1.0, 3.0, 7.5, 20.0, 29.0]),
)
def test_no_second_holds_more_calls_than_the_rate_however_late_callers_wake(arrivals, rate):
    calls = calls_made(arrivals, rate, admitted=True)
    assert not calls or most_in_one_second(calls) <= math.ceil(rate)


def test_a_slot_beyond_the_wait_is_refused_with_its_wait_and_not_taken():
    state = PaceState()
    for _ in range(10):
        pacing.reserve(state, now=0, rate=RATE, max_wait=SECOND)
    refused = pacing.reserve(state, now=0, rate=RATE, max_wait=SECOND // 5)
    assert refused.verdict is Verdict.BUSY
    assert refused.wait == 0.5
    assert refused.retry_after == 1
    taken = pacing.reserve(state, now=0, rate=RATE, max_wait=SECOND)
    assert taken.at_us == SECOND // 2  # the refused caller reserved nothing


def test_a_flood_wait_closes_the_schedule_then_reopens_it_at_half_the_rate():
    state = PaceState()
    pacing.penalize(state, now=0, flood_wait=30 * SECOND)
    closed = pacing.reserve(state, now=SECOND, rate=RATE, max_wait=2 * SECOND)
    assert closed.verdict is Verdict.CLOSED
    assert closed.retry_after == 29
    first = pacing.reserve(state, now=29 * SECOND, rate=RATE, max_wait=2 * SECOND)
    second = pacing.reserve(state, now=29 * SECOND, rate=RATE, max_wait=2 * SECOND)
    assert first.at_us == 30 * SECOND  # not one call before the flood wait ends
    assert second.at_us - first.at_us == SECOND // 10  # half the rate


def test_the_rate_recovers_linearly_to_the_full_rate():
    state = PaceState()
    pacing.penalize(state, now=0, flood_wait=10 * SECOND)
    assert pacing.factor_at(state, 10 * SECOND) == 0.5
    assert pacing.factor_at(state, 10 * SECOND + pacing.RECOVERY // 2) == 0.75
    assert pacing.factor_at(state, 10 * SECOND + pacing.RECOVERY) == 1.0


def test_429s_of_one_flood_wait_halve_once_and_later_ones_halve_again_down_to_a_floor():
    state = PaceState()
    for _ in range(16):  # the parallel calls in flight when the flood wait began
        pacing.penalize(state, now=0, flood_wait=5 * SECOND)
    assert state.factor == 0.5
    pacing.penalize(state, now=5 * SECOND, flood_wait=5 * SECOND)
    assert state.factor == 0.25
    for now in range(10, 100, 5):
        pacing.penalize(state, now=now * SECOND, flood_wait=5 * SECOND)
    assert state.factor == pacing.MIN_FACTOR
    assert pacing.admit(state, now=95 * SECOND, rate=RATE) == pacing.Slot(
        Verdict.CLOSED, 5 * SECOND, 100 * SECOND
    )
