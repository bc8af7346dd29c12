"""The memory store: check-and-set and counters with expiry, on an injected clock."""

from __future__ import annotations

import pytest

from ohttp.aio.store import MemoryStore, StoreUnavailable


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_add_is_check_and_set_until_expiry() -> None:
    clock = Clock()
    store = MemoryStore(clock=clock)
    assert await store.add(b"k", 10) is True
    assert await store.add(b"k", 10) is False
    clock.now += 9.9
    assert await store.add(b"k", 10) is False
    clock.now += 0.1
    assert await store.add(b"k", 10) is True


async def test_counter_expires_from_its_first_increment() -> None:
    clock = Clock()
    store = MemoryStore(clock=clock)
    assert [await store.incr(b"c", 5) for _ in range(3)] == [1, 2, 3]
    clock.now += 4
    assert await store.incr(b"c", 5) == 4
    clock.now += 1
    assert await store.incr(b"c", 5) == 1


async def test_full_store_refuses_rather_than_evicts() -> None:
    clock = Clock()
    store = MemoryStore(max_entries=2, clock=clock)
    assert await store.add(b"a", 10) and await store.add(b"b", 10)
    with pytest.raises(StoreUnavailable) as caught:
        await store.add(b"c", 10)
    assert caught.value.reason == "full"
    assert await store.add(b"a", 10) is False  # nothing was evicted
    clock.now += 10
    assert await store.add(b"c", 10) is True
    assert len(store) == 1
