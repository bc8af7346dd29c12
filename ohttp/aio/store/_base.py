"""The store interface."""

from __future__ import annotations

from typing import Protocol


class StoreUnavailable(Exception):
    """The store could not answer (down, slow or full). Callers fail closed on it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # a fixed code, safe for logs and metric labels


class Store(Protocol):
    """Atomic operations with expiry; every method may raise :class:`StoreUnavailable`."""

    async def add(self, key: bytes, ttl: float) -> bool:
        """Record ``key`` for ``ttl`` seconds if it is absent: True if it was added.

        False means the key is already recorded (a replay, a spent token).
        """
        ...

    async def incr(self, key: bytes, ttl: float) -> int:
        """Add one to the counter ``key`` and return its new value.

        A counter that did not exist starts at 1 and expires ``ttl`` seconds later.
        """
        ...

    async def ping(self) -> None:
        """Return when the store answers; raise :class:`StoreUnavailable` otherwise."""
        ...

    async def close(self) -> None:
        """Release connections; the store is not used afterwards."""
        ...
