"""Circuit breakers: stop calling a peer, or one resource of a peer, that keeps failing.

A breaker opens after ``threshold`` consecutive failures: calls fail at once for ``cooldown``
seconds instead of each holding a worker for the whole timeout. Then one trial call is let
through; its success closes the circuit, its failure opens it again, and a trial that ends with
no verdict (an unexpected error) lets the next caller make the trial. Per process: each worker
learns on its own, within ``threshold`` calls.

``PeerCircuits`` holds a peer's breaker and one per resource of that peer (a giveaway id, an
account, a bot), and decides which a call's outcome counts toward, so that one failing resource
cannot open the circuit for the others while a dead peer still cannot hold every worker:

- an answer that is no failure (a JSON object below 500, or any 4xx: "not found" is about what
  was asked, even unreadable) closes the resource's circuit and shows the peer is up;
- a 5xx, or a 2xx/3xx body that is not a JSON object, counts toward that resource's circuit only:
  the peer answered, so it is up, and it may fail for this resource alone;
- no connection at all (refused, connect timeout, unknown host) counts toward the peer's circuit:
  nothing about the resource was asked yet;
- a call sent but not answered (read timeout, connection dropped) counts toward the resource's
  circuit, and toward the peer's once per resource: a peer that hangs for ``threshold``
  different resources in a row is down, one slow resource is not.

While the peer's circuit is open every call to it fails at once; while a resource's is open,
calls for that resource do. A resource's breaker is kept only while it has failures, and at most
``max_resources`` of them per peer (the least recently used go first), so made-up ids cannot grow
memory without bound.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Hashable
from enum import Enum
from typing import NamedTuple

from cachetools import LRUCache


class Admission(NamedTuple):
    """A breaker's answer to "may I call?": ``wait`` is None to go ahead, else whole seconds."""

    wait: int | None
    trial: bool = False  # this call is the trial of an open circuit and owes it a verdict


class CircuitBreaker:
    """The state of one peer (or one resource of a peer) as seen by this process."""

    def __init__(
        self, threshold: int, cooldown: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._open_until: float | None = None
        self._trial_running = False

    def admit(self) -> Admission:
        """Whether a call may go ahead now and whether it is the trial call; else the wait."""
        with self._lock:
            if self._open_until is None:
                return Admission(None)
            now = self._clock()
            if now >= self._open_until and not self._trial_running:
                self._trial_running = True  # this caller makes the trial call
                return Admission(None, trial=True)
            return Admission(max(1, math.ceil(self._open_until - now)))

    def wait_time(self) -> int | None:
        """None when a call may go ahead now (maybe as the trial); else seconds until the trial."""
        return self.admit().wait

    def succeeded(self) -> None:
        """A call went well: the circuit closes."""
        with self._lock:
            self._failures = 0
            self._open_until = None
            self._trial_running = False

    def failed(self) -> bool:
        """A call failed; True when this failure opened the circuit (again, after a trial)."""
        with self._lock:
            self._failures += 1
            if not (self._trial_running or self._failures >= self.threshold):
                return False
            opened = self._open_until is None or self._trial_running
            self._open_until = self._clock() + self.cooldown
            self._trial_running = False
            return opened

    def abandon_trial(self) -> None:
        """The trial call ended with no verdict: the next caller makes the trial instead."""
        with self._lock:
            self._trial_running = False

    @property
    def is_open(self) -> bool:
        return self._open_until is not None


class Outcome(Enum):
    """What a call to a peer came to, as far as its circuits are concerned."""

    ANSWERED = "answered"  # a JSON object below 500, or any 4xx
    BAD_ANSWER = "bad_answer"  # a 5xx, or a 2xx/3xx body that is not a JSON object
    NO_ANSWER = "no_answer"  # sent, but no answer within the timeout, or the connection dropped
    UNREACHABLE = "unreachable"  # no connection was made


class Refusal(NamedTuple):
    """A call not made: which circuit is open (``"peer"`` or ``"resource"``) and the wait."""

    scope: str
    wait: int


class Call:
    """One admitted call: report its outcome with ``finish``; ``close`` (always, in a finally)
    frees the trials it held when no outcome was reported."""

    def __init__(
        self, circuits: PeerCircuits, key: Hashable, peer_trial: bool, resource_trial: bool
    ) -> None:
        self._circuits = circuits
        self._key = key
        self._peer_trial = peer_trial
        self._resource_trial = resource_trial
        self._finished = False

    def finish(self, outcome: Outcome) -> list[str]:
        """Count the outcome toward the circuits it concerns; the ones it opened (``"peer"``,
        ``"resource"``)."""
        self._finished = True
        return self._circuits._record(self._key, outcome, self._peer_trial, self._resource_trial)

    def close(self) -> None:
        """Give back the trials of a call that ended with no outcome (an unexpected error)."""
        if self._finished:
            return
        self._finished = True
        if self._peer_trial:
            self._circuits.peer.abandon_trial()
        if self._resource_trial:
            self._circuits._abandon_resource_trial(self._key)


class PeerCircuits:
    """A peer's own circuit and the circuits of its resources (see the module docstring)."""

    def __init__(
        self,
        threshold: int,
        cooldown: float,
        *,
        max_resources: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self.peer = CircuitBreaker(threshold, cooldown, clock)
        self._lock = threading.Lock()  # cachetools caches are not thread-safe themselves
        self._resources: LRUCache[Hashable, CircuitBreaker] = LRUCache(max_resources)
        self._unanswered: set[Hashable] = set()  # resources not answered since the peer last was

    def admit(self, key: Hashable) -> Call | Refusal:
        """A call for resource ``key`` that may go ahead, or why it may not."""
        peer = self.peer.admit()
        if peer.wait is not None:
            return Refusal("peer", peer.wait)
        with self._lock:
            breaker = self._resources.get(key)
        resource = Admission(None) if breaker is None else breaker.admit()
        if resource.wait is not None:
            if peer.trial:
                self.peer.abandon_trial()  # this call is not made: someone else tries the peer
            return Refusal("resource", resource.wait)
        return Call(self, key, peer.trial, resource.trial)

    def resource_breakers(self) -> int:
        """How many resources of this peer have a breaker (failures not yet cleared)."""
        with self._lock:
            return len(self._resources)

    def _record(
        self, key: Hashable, outcome: Outcome, peer_trial: bool, resource_trial: bool
    ) -> list[str]:
        opened: list[str] = []
        if self._peer_verdict(key, outcome, peer_trial):
            opened.append("peer")
        if outcome is Outcome.ANSWERED:
            with self._lock:
                self._resources.pop(key, None)  # the resource's circuit closes
        elif outcome in (Outcome.BAD_ANSWER, Outcome.NO_ANSWER):
            with self._lock:
                breaker = self._resources.get(key)
                if breaker is None:
                    breaker = CircuitBreaker(self.threshold, self.cooldown, self._clock)
                    self._resources[key] = breaker
            if breaker.failed():
                opened.append("resource")
        elif resource_trial:  # unreachable: nothing was learnt about the resource
            self._abandon_resource_trial(key)
        return opened

    def _peer_verdict(self, key: Hashable, outcome: Outcome, peer_trial: bool) -> bool:
        """Count the outcome toward the peer's circuit; True when that opened it."""
        if outcome in (Outcome.ANSWERED, Outcome.BAD_ANSWER):
            with self._lock:
                self._unanswered.clear()
            self.peer.succeeded()
            return False
        counts = outcome is Outcome.UNREACHABLE or peer_trial or self._first_unanswered(key)
        if not (counts and self.peer.failed()):
            return False
        with self._lock:
            self._unanswered.clear()  # a new count starts once the circuit is open
        return True

    def _first_unanswered(self, key: Hashable) -> bool:
        """Whether ``key`` is new among the resources left unanswered since the last answer."""
        with self._lock:
            if key in self._unanswered:
                return False
            self._unanswered.add(key)
            return True

    def _abandon_resource_trial(self, key: Hashable) -> None:
        with self._lock:
            breaker = self._resources.get(key)
        if breaker is not None:
            breaker.abandon_trial()
