"""The database pools: first come, first served, and how full they are, for /metrics.

SQLAlchemy's ``QueuePool`` lets a caller that arrives while a connection is free take it even
when others are already waiting, and a waiter that wakes to find the connection gone waits
again at the back of the line. Under a burst on a busy gevent worker some waiters lose that race
for seconds and time out (503 ``DATABASE_UNAVAILABLE``) while the pool keeps turning over
(bench/findings.md, the burst against Telegram's limits). ``FairQueuePool`` hands a returned
connection straight to the longest waiter instead: a caller waits for the callers ahead of it,
never for ones behind it.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.pool import QueuePool
from sqlalchemy.util.queue import Empty, Queue

from utils.metrics import DB_POOL_IN_USE, DB_POOL_SIZE


class _Waiter:
    """A caller waiting for a connection, and the one handed to it."""

    __slots__ = ("event", "item")

    def __init__(self) -> None:
        self.event = threading.Event()  # gevent's when gevent has patched threading
        self.item: Any = None


class HandoffQueue(Queue):
    """``sqlalchemy.util.queue.Queue`` whose ``put`` gives the item to the longest waiter, if
    any, rather than to whoever asks next (so a free item and a waiter never coexist)."""

    def __init__(self, maxsize: int = 0, use_lifo: bool = False) -> None:
        super().__init__(maxsize, use_lifo=use_lifo)
        self._waiters: deque[_Waiter] = deque()

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        with self.mutex:
            if self._waiters:
                waiter = self._waiters.popleft()
                waiter.item = item
                waiter.event.set()
                return
        super().put(item, block, timeout)

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        with self.mutex:
            if not self._empty():  # then nobody waits: put hands items to waiters first
                return self._get()
            if not block:
                raise Empty
            waiter = _Waiter()
            self._waiters.append(waiter)
        waiter.event.wait(timeout)
        with self.mutex:
            if waiter.event.is_set():  # handed over, if only just as the wait ran out
                return waiter.item
            self._waiters.remove(waiter)
        raise Empty


class FairQueuePool(QueuePool):
    """``QueuePool`` serving waiters in the order they came (``HandoffQueue``)."""

    _queue_class = HandoffQueue


def count_connections(pools: dict[str, Engine]) -> None:
    """Report each named engine's pool under its name (the ``pool`` label): its size and the
    connections it has lent out now (SQLAlchemy's checkout and checkin events), per worker."""
    for name, engine in pools.items():
        in_use = DB_POOL_IN_USE.labels(name)
        size = getattr(engine.pool, "size", None)  # QueuePool's; the others keep no fixed number
        DB_POOL_SIZE.labels(name).set(size() if callable(size) else 0)
        # A connection invalidated while lent out is still checked in (as None): the count
        # returns to zero whatever happened to it. dispose() keeps these listeners.
        event.listen(engine, "checkout", lambda *_args, gauge=in_use: gauge.inc())
        event.listen(engine, "checkin", lambda *_args, gauge=in_use: gauge.dec())
