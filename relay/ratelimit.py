"""The relay's per-client request limit, the same rule for every client, on the state store.

This is the only place the relay uses a client address, and it never stores one: the store
key is ``rate:`` + the window's number + a keyed BLAKE2b hash of the address, whose key is a
random secret drawn for each window and shared through the store (``setdefault``) by every
worker and replica, so they all count a client under the same key. When the window ends the
secret and the counters expire with it: the next window's keys cannot be linked to this
window's, and nothing links a key to an address without the secret (docs/state.md).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import time
from collections.abc import Callable

from ohttp.aio.store import Store, StoreHealth, StoreUnavailable, store_ready
from relay.errors import RateLimited, StateUnavailable

__all__ = ["RateLimiter"]

logger = logging.getLogger("relay")

_SLACK = 1.0  # seconds keys outlive their window, for clocks that differ by about a second


class RateLimiter:
    """Fixed windows aligned on the clock (the same on every replica); ``limit`` requests per
    client address per window."""

    def __init__(
        self, store: Store, limit: int, window: float, *,
        clock: Callable[[], float] = time.time,
    ) -> None:  # fmt: skip
        self.store = store
        self._limit = limit
        self._window = window
        self._clock = clock
        self._health = StoreHealth(logger)
        self._secret_of: tuple[int, bytes] = (-1, b"")  # (window number, its secret)

    async def admit(self, address: str | None) -> None:
        """Return if ``address`` may send another request now; raise RateLimited (with the
        seconds until the window ends) or StateUnavailable (the store did not answer)."""
        now = self._clock()
        number = int(now // self._window)
        remaining = (number + 1) * self._window - now
        try:
            secret = await self._secret(number, remaining + _SLACK)
            hashed = hashlib.blake2b((address or "").encode(), key=secret, digest_size=16)
            key = b"rate:" + number.to_bytes(8, "big") + hashed.digest()
            count = await self.store.incr(key, remaining + _SLACK)
        except StoreUnavailable as exc:
            self._health.failed(exc.reason)
            raise StateUnavailable(exc.reason) from None
        self._health.answered()
        if count > self._limit:
            raise RateLimited(max(1, math.ceil(remaining)))

    async def ready(self) -> bool:
        """Whether the store answers: the relay's readiness when it limits rates."""
        return await store_ready(self.store)

    async def close(self) -> None:
        await self.store.close()

    async def _secret(self, number: int, ttl: float) -> bytes:
        known, secret = self._secret_of
        if known != number:  # once per window and process: one more round trip
            key = b"rate-secret:" + number.to_bytes(8, "big")
            secret = await self.store.setdefault(key, os.urandom(16), ttl)
            self._secret_of = (number, secret)
        return secret
