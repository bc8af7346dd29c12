"""The store of one process: dictionaries with lazy expiry, bounded in size."""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable

from ohttp.aio.store._base import StoreUnavailable


class MemoryStore:
    """A :class:`~ohttp.aio.store.Store` in this process's memory.

    At ``max_entries`` live keys it refuses new ones with ``StoreUnavailable("full")`` rather
    than evict: evicting a replay record or a spent token would let its copy through.

    The ``*_now`` methods are the same operations without a coroutine, for a caller that owns
    the store in its own thread (the supervisor's shared store, :mod:`._shared`).
    """

    def __init__(
        self, *, max_entries: int = 1_000_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_entries = max_entries
        self._clock = clock
        self._values: dict[bytes, tuple[int | bytes, float]] = {}  # key -> (value, expiry)
        self._expiries: list[tuple[float, bytes]] = []

    def __len__(self) -> int:
        self._evict_expired(self._clock())
        return len(self._values)

    async def add(self, key: bytes, ttl: float) -> bool:
        return self.add_now(key, ttl)

    async def incr(self, key: bytes, ttl: float) -> int:
        return self.incr_now(key, ttl)

    async def setdefault(self, key: bytes, value: bytes, ttl: float) -> bytes:
        return self.setdefault_now(key, value, ttl)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._values.clear()
        self._expiries.clear()

    def add_now(self, key: bytes, ttl: float) -> bool:
        now = self._clock()
        self._evict_expired(now)
        if key in self._values:
            return False
        self._insert(key, 1, now + ttl)
        return True

    def incr_now(self, key: bytes, ttl: float) -> int:
        now = self._clock()
        self._evict_expired(now)
        current = self._values.get(key)
        if current is None or not isinstance(current[0], int):
            self._insert(key, 1, now + ttl)
            return 1
        value = current[0] + 1
        self._values[key] = (value, current[1])
        return value

    def setdefault_now(self, key: bytes, value: bytes, ttl: float) -> bytes:
        now = self._clock()
        self._evict_expired(now)
        current = self._values.get(key)
        if current is not None and isinstance(current[0], bytes):
            return current[0]
        self._insert(key, value, now + ttl)
        return value

    def _insert(self, key: bytes, value: int | bytes, expiry: float) -> None:
        if key not in self._values and len(self._values) >= self.max_entries:
            raise StoreUnavailable("full")
        self._values[key] = (value, expiry)
        heapq.heappush(self._expiries, (expiry, key))

    def _evict_expired(self, now: float) -> None:
        expiries = self._expiries
        while expiries and expiries[0][0] <= now:
            expiry, key = heapq.heappop(expiries)
            current = self._values.get(key)
            if current is not None and current[1] == expiry:
                del self._values[key]
