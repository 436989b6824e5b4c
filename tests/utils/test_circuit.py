"""The circuit breakers: stop calling a failing peer or resource for a while, then try once."""

from __future__ import annotations

import pytest

from utils.circuit import Call, CircuitBreaker, Outcome, PeerCircuits, Refusal


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


def test_a_trial_given_back_lets_the_next_caller_try():
    clock = Clock()
    breaker = CircuitBreaker(threshold=1, cooldown=10, clock=clock)
    assert breaker.failed() is True  # it opened
    clock.now += 10
    assert breaker.admit().trial is True
    assert breaker.wait_time() == 1
    breaker.abandon_trial()  # the trial ended with no verdict
    assert breaker.admit().trial is True
    breaker.succeeded()
    assert not breaker.is_open


def circuits(clock: Clock, **options) -> PeerCircuits:
    return PeerCircuits(threshold=3, cooldown=10, clock=clock, **options)


def call(peer: PeerCircuits, key: object, outcome: Outcome | None = None) -> Call | Refusal:
    admitted = peer.admit(key)
    if isinstance(admitted, Call) and outcome is not None:
        admitted.finish(outcome)
    return admitted


@pytest.mark.parametrize("outcome", [Outcome.BAD_ANSWER, Outcome.NO_ANSWER])
def test_one_failing_resource_opens_its_own_circuit_only(outcome):
    peer = circuits(Clock())
    opened = [peer.admit(13).finish(outcome) for _ in range(3)]
    assert opened == [[], [], ["resource"]]
    assert call(peer, 13) == Refusal("resource", 10)
    assert isinstance(call(peer, 14, Outcome.ANSWERED), Call)
    assert not peer.peer.is_open


def test_answers_about_a_resource_never_count_and_close_its_circuit():
    clock = Clock()
    peer = circuits(clock)
    for _ in range(2):
        call(peer, 13, Outcome.BAD_ANSWER)
    call(peer, 13, Outcome.ANSWERED)  # a 404, say: the count starts again
    for _ in range(2):
        call(peer, 13, Outcome.BAD_ANSWER)
    assert isinstance(call(peer, 13), Call)
    assert peer.resource_breakers() == 1
    call(peer, 13, Outcome.ANSWERED)
    assert peer.resource_breakers() == 0


def test_a_peer_that_cannot_be_reached_opens_for_every_resource():
    peer = circuits(Clock())
    assert [peer.admit(1).finish(Outcome.UNREACHABLE) for _ in range(3)] == [[], [], ["peer"]]
    assert call(peer, 2) == Refusal("peer", 10)


def test_a_peer_that_leaves_several_resources_unanswered_opens_for_every_resource():
    peer = circuits(Clock())
    for _ in range(5):
        call(peer, 1, Outcome.NO_ANSWER)  # one slow resource is no evidence against the peer
    assert not peer.peer.is_open
    assert peer.admit(2).finish(Outcome.NO_ANSWER) == []
    assert peer.admit(3).finish(Outcome.NO_ANSWER) == ["peer"]
    assert call(peer, 4) == Refusal("peer", 10)


def test_an_answer_from_the_peer_starts_its_count_again():
    peer = circuits(Clock())
    call(peer, 1, Outcome.NO_ANSWER)
    call(peer, 2, Outcome.UNREACHABLE)
    call(peer, 3, Outcome.BAD_ANSWER)  # the peer answered: it is up
    call(peer, 4, Outcome.NO_ANSWER)
    call(peer, 5, Outcome.UNREACHABLE)
    assert not peer.peer.is_open


def test_the_peer_trial_decides_for_every_resource():
    clock = Clock()
    peer = circuits(clock)
    for _ in range(3):
        call(peer, 1, Outcome.UNREACHABLE)
    clock.now += 10
    trial = peer.admit(2)
    assert isinstance(trial, Call)
    assert call(peer, 3) == Refusal("peer", 1)
    assert trial.finish(Outcome.NO_ANSWER) == ["peer"]  # the trial failed: open again
    clock.now += 10
    call(peer, 2, Outcome.ANSWERED)
    assert isinstance(call(peer, 3), Call)


def test_a_call_that_ends_without_an_outcome_gives_its_trials_back():
    clock = Clock()
    peer = circuits(clock)
    for _ in range(3):
        call(peer, 1, Outcome.BAD_ANSWER)
    for _ in range(3):
        call(peer, 2, Outcome.UNREACHABLE)
    clock.now += 10
    broken = peer.admit(1)  # the trial of the peer and of resource 1
    assert isinstance(broken, Call)
    assert call(peer, 5) == Refusal("peer", 1)
    broken.close()  # say the body could not be parsed and raised
    healthy = peer.admit(1)
    assert isinstance(healthy, Call)
    healthy.finish(Outcome.ANSWERED)
    healthy.close()  # after an outcome, close changes nothing
    assert not peer.peer.is_open
    assert peer.resource_breakers() == 0


def test_a_refused_resource_gives_back_the_peer_trial_it_was_offered():
    clock = Clock()
    peer = circuits(clock)
    in_flight = [peer.admit(1) for _ in range(3)]
    for _ in range(3):
        call(peer, 2, Outcome.UNREACHABLE)  # the peer's circuit opens until 110
    for late in in_flight:
        clock.now += 3
        late.finish(Outcome.NO_ANSWER)  # resource 1's opens until 119, the peer's until 113
    clock.now = 113
    assert call(peer, 1) == Refusal("resource", 6)
    assert isinstance(peer.admit(2), Call)  # the peer's trial went to the next caller


def test_resource_circuits_are_bounded():
    peer = circuits(Clock(), max_resources=4)
    for key in range(100):
        call(peer, key, Outcome.BAD_ANSWER)
    assert peer.resource_breakers() == 4
