"""Short-lived caches for answers of the sibling services.

Redis when configured (shared by every instance), otherwise a bounded in-process cache. A cache
failure never fails a request: a Redis error is logged and the value is fetched again. Secrets
(bot tokens) only ever go to the in-process cache: see ``secret_cache``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol, TypeVar

import redis
from cachetools import TLRUCache
from flask import Flask, current_app

from utils.metrics import CACHE_LOOKUPS

KEY_PREFIX = "telegive:participant:"
log = logging.getLogger("telegive.cache")
T = TypeVar("T")


class Cache(Protocol):
    def get(self, key: str) -> Any | None: ...
    def set(self, key: str, value: Any, ttl: int) -> None: ...
    def delete(self, key: str) -> None: ...


class _Entry(NamedTuple):
    value: Any
    ttl: float


def _expires_at(_key: str, entry: _Entry, now: float) -> float:
    return now + entry.ttl


class MemoryCache:
    """An in-process cache of at most ``max_entries`` values, each kept for its own ``ttl``
    seconds; when full, the least recently used value goes. Safe to share between threads."""

    def __init__(
        self, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._entries: TLRUCache[str, _Entry] = TLRUCache(max_entries, _expires_at, timer=clock)
        self._lock = threading.Lock()  # cachetools caches are not thread-safe themselves

    def get(self, key: str) -> Any | None:
        """The value, or None when absent or expired."""
        with self._lock:
            try:
                return self._entries[key].value  # one lookup (``get`` would make two)
            except KeyError:
                return None

    def set(self, key: str, value: Any, ttl: float) -> None:
        """Keep ``value`` for ``ttl`` seconds (not at all when ``ttl`` is not positive)."""
        if ttl <= 0:
            return
        with self._lock:
            self._entries[key] = _Entry(value, ttl)

    def delete(self, key: str) -> None:
        """Forget ``key``."""
        with self._lock:
            self._entries.pop(key, None)


_ABSENT = object()


class RedisCache:
    """JSON values in Redis under the service's key prefix; errors degrade to a miss.

    What was read is also kept in process for ``local_seconds`` (found or not), so a burst of
    requests does not pay one Redis round trip per key per request; other instances see a change
    at most that much later.
    """

    def __init__(self, client: redis.Redis, local_seconds: float = 1.0) -> None:
        self._client = client
        self._local = MemoryCache(max_entries=10_000)
        self._local_seconds = local_seconds

    def get(self, key: str) -> Any | None:
        """The value, or None when absent, expired or Redis cannot be read."""
        seen = self._local.get(key)
        if seen is not None:
            return None if seen is _ABSENT else seen
        try:
            raw = self._client.get(KEY_PREFIX + key)
        except redis.RedisError as error:
            log.warning("cache read failed", extra={"error": type(error).__name__})
            return None
        value = None if raw is None else json.loads(raw)
        self._local.set(key, _ABSENT if value is None else value, self._local_seconds)
        return value

    def set(self, key: str, value: Any, ttl: int) -> None:
        """Keep ``value`` for ``ttl`` seconds (not at all when ``ttl`` is not positive)."""
        if ttl <= 0:
            return
        self._local.set(key, value, min(ttl, self._local_seconds))
        try:
            self._client.set(KEY_PREFIX + key, json.dumps(value), ex=ttl)
        except redis.RedisError as error:
            log.warning("cache write failed", extra={"error": type(error).__name__})

    def delete(self, key: str) -> None:
        """Forget ``key`` here and in Redis."""
        self._local.delete(key)
        try:
            self._client.delete(KEY_PREFIX + key)
        except redis.RedisError as error:
            log.warning("cache delete failed", extra={"error": type(error).__name__})


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
