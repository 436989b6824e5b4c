"""The database pools serve waiters in the order they came: a caller busy with the pool cannot
keep taking a connection back while another waits for it until it times out (503)."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
from sqlalchemy import exc
from sqlalchemy.pool import QueuePool

from services.store.pools import FairQueuePool


def one_connection_pool(pool_class: type[QueuePool]) -> QueuePool:
    return pool_class(
        lambda: sqlite3.connect(":memory:", check_same_thread=False),
        pool_size=1,
        max_overflow=0,
        timeout=1.5,
    )


def wait_behind_a_busy_caller(pool: QueuePool) -> float:
    """Seconds a caller waits for the pool's only connection while another caller keeps
    returning it and asking for it again at once; raises the pool's timeout if it never gets it."""
    stop = threading.Event()

    def busy() -> None:
        while not stop.is_set():
            connection = pool.connect()
            time.sleep(0.001)  # a query's worth
            connection.close()  # back to the pool, and straight away asking again

    busy_caller = threading.Thread(target=busy)
    busy_caller.start()
    time.sleep(0.05)
    started = time.monotonic()
    try:
        pool.connect().close()
    finally:
        stop.set()
        busy_caller.join()
    return time.monotonic() - started


def test_a_returned_connection_goes_to_the_caller_who_waited_longest():
    assert wait_behind_a_busy_caller(one_connection_pool(FairQueuePool)) < 0.5


def test_sqlalchemys_own_pool_lets_a_busy_caller_starve_a_waiter():
    """Why FairQueuePool exists: the same scenario times out on QueuePool (if SQLAlchemy
    becomes fair, this fails and the subclass can go)."""
    with pytest.raises(exc.TimeoutError):
        wait_behind_a_busy_caller(one_connection_pool(QueuePool))


def test_a_waiter_that_times_out_leaves_the_line_and_the_connection_goes_on():
    pool = one_connection_pool(FairQueuePool)
    held = pool.connect()
    with pytest.raises(exc.TimeoutError):
        pool.connect()  # nobody returns the connection within the timeout
    held.close()
    again = pool.connect()  # not handed to the caller who gave up
    assert pool.checkedout() == 1
    again.close()
    assert pool.checkedin() == 1
