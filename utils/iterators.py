"""Small helpers for iterators, and the turns streamed answers take to make their chunks."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from itertools import chain
from typing import TypeVar

T = TypeVar("T")

# How many streamed answers of a process may be making a chunk (reading and rendering it) at the
# same moment. A stream holds its turn only while it makes a chunk, never while its client reads
# it, so a stalled reader holds nothing; and a crowd of new streams (a hundred clients asking for
# a whole list at once) makes its chunks one after another instead of all at once, so the other
# requests of the worker (registrations) wait for at most one chunk at a time, not for all of
# them. The semaphore is made in the process that uses it, after gevent's worker has patched
# threading (a semaphore made before would block the whole worker instead of one greenlet).
STREAM_TURNS = 1
_turns: dict[int, threading.BoundedSemaphore] = {}


def _process_turns() -> threading.BoundedSemaphore:
    pid = os.getpid()
    turns = _turns.get(pid)
    if turns is None:
        turns = _turns.setdefault(pid, threading.BoundedSemaphore(STREAM_TURNS))
    return turns


def stream_turn() -> threading.BoundedSemaphore:
    """One of the process's stream turns, to hold (``with stream_turn():``) for a stream's work
    before its first chunk."""
    return _process_turns()


def in_turns(iterator: Iterator[T]) -> Iterator[T]:
    """The same items, each one produced while holding one of the process's stream turns."""
    turns = _process_turns()
    while True:
        with turns:
            try:
                item = next(iterator)
            except StopIteration:
                return
        yield item


def started(iterator: Iterator[T]) -> Iterator[T]:
    """The same items, made in turns (``in_turns``), the first one already produced: whatever the
    first step raises, it raises here and now (for a streamed response: before the status line is
    sent)."""
    turns = in_turns(iterator)
    try:
        first = next(turns)
    except StopIteration:
        return iter(())
    return chain((first,), turns)
