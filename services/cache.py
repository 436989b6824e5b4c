"""Short-lived caches for answers of the sibling services.

Redis when configured (shared by every instance), otherwise a bounded in-process dictionary. A
cache failure never fails a request: a Redis error is logged and the value is fetched again.
Secrets (bot tokens) only ever go to the in-process cache: see ``secret_cache``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import redis
from flask import Flask, current_app

from utils.metrics import CACHE_LOOKUPS

KEY_PREFIX = "telegive:participant:"
log = logging.getLogger("telegive.cache")
T = TypeVar("T")


class Cache(Protocol):
    def get(self, key: str) -> Any | None: ...
    def set(self, key: str, value: Any, ttl: int) -> None: ...
    def delete(self, key: str) -> None: ...


class MemoryCache:
    """A thread-safe TTL cache holding at most ``max_entries`` values."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self._entries: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._max_entries = max_entries

    def get(self, key: str) -> Any | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires, value = entry
            if expires <= time.monotonic():
                del self._entries[key]
                return None
            return value

    def set(self, key: str, value: Any, ttl: int) -> None:
        if ttl <= 0:
            return
        with self._lock:
            self._entries[key] = (time.monotonic() + ttl, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

    def delete(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_ABSENT = object()


class RedisCache:
    """JSON values in Redis under the service's key prefix; errors degrade to a miss.

    What was read is also kept in process for ``local_seconds`` (found or not), so a burst of
    requests does not pay one Redis round trip per key per request; other instances see a change
    at most that much later.
    """

    def __init__(self, client: redis.Redis, local_seconds: float = 1.0) -> None:
        self._client = client
        self._local: dict[str, tuple[float, Any]] = {}
        self._local_seconds = local_seconds

    def get(self, key: str) -> Any | None:
        seen = self._local.get(key)
        if seen is not None and seen[0] > time.monotonic():
            return None if seen[1] is _ABSENT else seen[1]
        try:
            raw = self._client.get(KEY_PREFIX + key)
        except redis.RedisError as error:
            log.warning("cache read failed", extra={"error": type(error).__name__})
            return None
        value = None if raw is None else json.loads(raw)
        self._remember(key, _ABSENT if value is None else value)
        return value

    def set(self, key: str, value: Any, ttl: int) -> None:
        if ttl <= 0:
            return
        self._remember(key, value, min(ttl, self._local_seconds))
        try:
            self._client.set(KEY_PREFIX + key, json.dumps(value), ex=ttl)
        except redis.RedisError as error:
            log.warning("cache write failed", extra={"error": type(error).__name__})

    def delete(self, key: str) -> None:
        self._local.pop(key, None)
        try:
            self._client.delete(KEY_PREFIX + key)
        except redis.RedisError as error:
            log.warning("cache delete failed", extra={"error": type(error).__name__})

    def _remember(self, key: str, value: Any, seconds: float | None = None) -> None:
        if len(self._local) > 10_000:
            self._local.clear()
        self._local[key] = (time.monotonic() + (seconds or self._local_seconds), value)


def init_app(app: Flask) -> None:
    """Create the application's caches once, before any thread can race to do it."""
    client = app.extensions.get("telegive.redis")
    app.extensions["telegive.cache"] = RedisCache(client) if client is not None else MemoryCache()
    app.extensions["telegive.secret_cache"] = MemoryCache(max_entries=1_000)


def shared_cache() -> Cache:
    """The cache for non-secret sibling answers: Redis when configured, else in-process."""
    return current_app.extensions["telegive.cache"]


def secret_cache() -> MemoryCache:
    """The in-process cache for secrets: bot tokens are never written to Redis."""
    return current_app.extensions["telegive.secret_cache"]


def cached(cache: Cache, key: str, ttl: int, load: Callable[[], T]) -> T:
    """The cached value of ``key``, loading and storing it on a miss."""
    kind = key.split(":", 1)[0]
    value = cache.get(key)
    if value is None:
        CACHE_LOOKUPS.labels(kind, "miss").inc()
        value = load()
        cache.set(key, value, ttl)
    else:
        CACHE_LOOKUPS.labels(kind, "hit").inc()
    return value
