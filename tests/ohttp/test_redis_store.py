"""The Redis store against a real redis-server: atomic check-and-set, counters and shared
values with expiry, fixed reason codes when Redis is down or slow, recovery on its own."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from ohttp.aio.store import StoreUnavailable, open_store, store_ready
from ohttp.aio.store._redis import RedisStore
from tests.redis_support import RedisServer, redis_server


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path) as server:
        yield server


def pttl(server: RedisServer, key: str) -> int:
    return int(server.command("PTTL", key).lstrip(b":"))


async def test_add_is_check_and_set_with_the_ttl(redis: RedisServer) -> None:
    store = open_store(redis.url)
    assert isinstance(store, RedisStore)
    try:
        assert await store.add(b"k", 30) is True
        assert await store.add(b"k", 30) is False
        assert 29_000 < pttl(redis, "ohttp:k") <= 30_000
        assert await store.add(b"other", 0.0001) is True  # at least one millisecond
    finally:
        await store.close()


async def test_add_races_have_one_winner(redis: RedisServer) -> None:
    stores = [open_store(redis.url) for _ in range(4)]
    try:
        results = await asyncio.gather(*(s.add(b"race", 10) for s in stores for _ in range(5)))
        assert sorted(results) == [False] * 19 + [True]
    finally:
        for store in stores:
            await store.close()


async def test_counter_expiry_is_set_by_the_first_increment(redis: RedisServer) -> None:
    store = open_store(redis.url)
    try:
        assert [await store.incr(b"c", 20) for _ in range(3)] == [1, 2, 3]
        first = pttl(redis, "ohttp:c")
        assert 19_000 < first <= 20_000
        assert await store.incr(b"c", 1000) == 4
        assert pttl(redis, "ohttp:c") <= first  # later increments leave the window alone
    finally:
        await store.close()


async def test_setdefault_keeps_the_first_value(redis: RedisServer) -> None:
    store = open_store(redis.url)
    try:
        assert await store.setdefault(b"s", b"first", 10) == b"first"
        assert await store.setdefault(b"s", b"second", 10) == b"first"
        assert 9_000 < pttl(redis, "ohttp:s") <= 10_000
    finally:
        await store.close()


async def test_down_is_connection_and_it_recovers_by_itself(redis: RedisServer) -> None:
    store = open_store(redis.url, timeout=0.5)
    try:
        assert await store.add(b"before", 10)
        redis.stop()
        for _ in range(2):  # the pooled connection broke, then no connection at all
            with pytest.raises(StoreUnavailable) as caught:
                await store.add(b"during", 10)
            assert caught.value.reason == "connection"
        assert not await store_ready(store)
        redis.start()  # the same port, empty (no persistence)
        assert await store_ready(store)
        assert await store.add(b"during", 10) is True
    finally:
        await store.close()


async def test_slow_is_timeout(redis: RedisServer) -> None:
    store = open_store(redis.url, timeout=0.2)
    try:
        await store.ping()
        redis.pause()
        try:
            with pytest.raises(StoreUnavailable) as caught:
                await store.add(b"slow", 10)
            assert caught.value.reason == "timeout"
            assert not await store_ready(store)
        finally:
            redis.resume()
        assert await store_ready(store)  # the next call reconnects
    finally:
        await store.close()


async def test_out_of_memory_is_full(redis: RedisServer) -> None:
    store = open_store(redis.url)
    try:
        await store.add(b"filler", 100)
        assert redis.command("CONFIG", "SET", "maxmemory", "1") == b"+OK"
        with pytest.raises(StoreUnavailable) as caught:
            await store.add(b"more", 10)
        assert caught.value.reason == "full"
    finally:
        await store.close()


def test_only_redis_urls(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="state"):
        open_store("http://127.0.0.1:6379/0")
