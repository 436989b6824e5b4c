"""The in-process caches: each value lives for its own ttl, and a full cache loses one value, not
all of them."""

from __future__ import annotations

from services.cache import KEY_PREFIX, MemoryCache, RedisCache


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingRedis:
    """Enough of a Redis client for RedisCache, counting the reads that reach it."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.reads = 0

    def get(self, key: str) -> str | None:
        self.reads += 1
        return self.values.get(key)

    def set(self, key: str, value: str, ex: int) -> None:
        self.values[key] = value

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


def test_each_value_lives_for_its_own_ttl():
    clock = Clock()
    cache = MemoryCache(clock=clock)
    cache.set("giveaway:1", {"status": "active"}, 30)
    cache.set("channel:42", {"channel_id": -100}, 300)
    cache.set("nothing", "kept", 0)
    clock.now += 31
    assert cache.get("giveaway:1") is None
    assert cache.get("channel:42") == {"channel_id": -100}
    assert cache.get("nothing") is None
    clock.now += 270
    assert cache.get("channel:42") is None


def test_a_full_cache_drops_the_least_recently_used_value_only():
    cache = MemoryCache(max_entries=3)
    for key in ("a", "b", "c"):
        cache.set(key, key.upper(), 60)
    assert cache.get("a") == "A"  # "b" is now the least recently used
    cache.set("d", "D", 60)
    assert [cache.get(key) for key in ("a", "b", "c", "d")] == ["A", None, "C", "D"]


def test_a_deleted_value_is_gone():
    cache = MemoryCache()
    cache.set("bot_token:42", "secret", 300)
    cache.delete("bot_token:42")
    cache.delete("never-set")
    assert cache.get("bot_token:42") is None


def test_redis_answers_are_kept_in_process_and_a_flood_of_keys_keeps_the_recent_ones():
    client = CountingRedis()
    cache = RedisCache(client)  # type: ignore[arg-type]
    cache.set("giveaway:1", {"status": "active"}, 30)
    assert client.values[KEY_PREFIX + "giveaway:1"] == '{"status": "active"}'
    for _ in range(5):
        assert cache.get("giveaway:1") == {"status": "active"}
    assert client.reads == 0  # served in process
    for number in range(10_050):
        cache.get(f"unknown:{number}")  # "not found" is remembered too
    reads = client.reads
    for number in range(9_950, 10_050):  # on both sides of the 10,000th key
        assert cache.get(f"unknown:{number}") is None
    assert client.reads == reads  # the latest reads survived: nothing was cleared wholesale
