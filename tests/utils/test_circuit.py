"""The circuit breaker: stop calling a failing peer for a while, then try once."""

from __future__ import annotations

from utils.circuit import CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_it_opens_after_consecutive_failures_and_tries_once_after_the_cooldown():
    clock = Clock()
    breaker = CircuitBreaker(threshold=3, cooldown=10, clock=clock)
    for _ in range(2):
        assert breaker.wait_time() is None
        breaker.failed()
    breaker.succeeded()  # a success in between resets the count
    for _ in range(3):
        assert breaker.wait_time() is None
        breaker.failed()
    assert breaker.is_open
    assert breaker.wait_time() == 10
    clock.now += 9.5
    assert breaker.wait_time() == 1
    clock.now += 1
    assert breaker.wait_time() is None  # the trial call
    assert breaker.wait_time() == 1  # everyone else still waits for the trial's verdict
    breaker.failed()  # the trial failed: open again for a whole cooldown
    assert breaker.wait_time() == 10
    clock.now += 10
    assert breaker.wait_time() is None
    breaker.succeeded()
    assert not breaker.is_open
    assert breaker.wait_time() is None
