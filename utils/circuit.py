"""A circuit breaker per peer: stop calling a peer that keeps failing, for a while.

After ``threshold`` consecutive failures (timeouts, refused connections, 5xx, garbage) the circuit
opens: calls fail at once for ``cooldown`` seconds instead of each holding a worker for the whole
timeout. Then one trial call is let through; its success closes the circuit, its failure opens it
again. Per process: each worker learns on its own, within ``threshold`` calls.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class CircuitBreaker:
    """The state of one peer as seen by this process."""

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

    def wait_time(self) -> int | None:
        """None when a call may go ahead now; otherwise whole seconds until the next trial."""
        with self._lock:
            if self._open_until is None:
                return None
            now = self._clock()
            if now >= self._open_until and not self._trial_running:
                self._trial_running = True  # this caller makes the trial call
                return None
            return max(1, math.ceil(self._open_until - now))

    def succeeded(self) -> None:
        with self._lock:
            self._failures = 0
            self._open_until = None
            self._trial_running = False

    def failed(self) -> None:
        with self._lock:
            self._failures += 1
            if self._trial_running or self._failures >= self.threshold:
                self._open_until = self._clock() + self.cooldown
            self._trial_running = False

    @property
    def is_open(self) -> bool:
        return self._open_until is not None
