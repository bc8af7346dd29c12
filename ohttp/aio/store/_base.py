"""The store interface."""

from __future__ import annotations

from typing import Final, Protocol

# The closed set of reasons, safe as log fields and metric labels: "timeout" (no answer in
# time), "connection" (cannot connect, or the connection broke), "full" (no room for a new
# key), "error" (the store answered with an error), "closed" (the store was closed).
REASONS: Final = ("timeout", "connection", "full", "error", "closed")


class StoreUnavailable(Exception):
    """The store could not answer (down, slow or full). Callers fail closed on it.

    ``reason`` is one of :data:`REASONS`.
    """

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

    async def setdefault(self, key: bytes, value: bytes, ttl: float) -> bytes:
        """Record ``value`` under ``key`` for ``ttl`` seconds if it is absent; the recorded value.

        Every caller that races on an absent key gets the one value that won (a secret that all
        workers and replicas must share, such as the relay's rate-limit key of a window).
        """
        ...

    async def ping(self) -> None:
        """Return when the store answers; raise :class:`StoreUnavailable` otherwise."""
        ...

    async def close(self) -> None:
        """Release connections; the store is not used afterwards."""
        ...
