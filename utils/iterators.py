"""Small helpers for iterators."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain
from typing import TypeVar

T = TypeVar("T")


def started(iterator: Iterator[T]) -> Iterator[T]:
    """The same items, the first one already produced: whatever the first step raises, it raises
    here and now (for a streamed response: before the status line is sent)."""
    try:
        first = next(iterator)
    except StopIteration:
        return iter(())
    return chain((first,), iterator)
