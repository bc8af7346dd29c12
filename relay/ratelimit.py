"""The relay's per-client request limit, the same rule for every client."""

from __future__ import annotations

import hashlib
import math
import os
import time


class RateLimiter:
    """Fixed-window request count per client address, the same rule for every client.

    Addresses are held only as keyed hashes (a random per-process key), only for the current
    window: the whole table is dropped when the window ends. Nothing is logged.
    """

    def __init__(self, limit: int, window: float) -> None:
        self._limit = limit
        self._window = window
        self._secret = os.urandom(16)
        self._counts: dict[bytes, int] = {}
        self._window_start = time.monotonic()

    def check(self, address: str | None) -> int | None:
        """None if allowed, else the seconds until the window ends (for Retry-After)."""
        now = time.monotonic()
        if now - self._window_start >= self._window:
            self._counts.clear()
            self._window_start = now
        key = hashlib.blake2b((address or "").encode(), key=self._secret, digest_size=16).digest()
        count = self._counts.get(key, 0) + 1
        self._counts[key] = count
        if count <= self._limit:
            return None
        return max(1, math.ceil(self._window - (now - self._window_start)))
