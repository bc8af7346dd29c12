"""Shared state for the servers: check-and-set and counters, each with an expiry.

One small async interface (:class:`Store`) with interchangeable backends, so that replay records,
spent tokens and rate-limit counters can be shared by every worker and replica:

- :class:`MemoryStore`, one process (the default with one worker);
- the supervisor's store, shared by forked workers without Redis (``_shared``; the default
  with ``workers > 1``);
- :class:`RedisStore` (``redis://``, ``rediss://``, ``unix://``), every worker and replica.

:func:`open_store` picks one from the ``state`` setting. docs/state.md has the whole picture.

Keys are opaque bytes chosen by the caller. They never hold a client address or request content:
callers pass digests (the relay's rate limit passes a keyed hash that rotates with its window).
"""

from __future__ import annotations

import asyncio
import logging

from ohttp.aio.store._base import REASONS, Store, StoreUnavailable
from ohttp.aio.store._memory import MemoryStore
from ohttp.aio.store._shared import SharedStoreClient, SharedStoreServer, take_inherited_socket

__all__ = [
    "REASONS",
    "STATE_SCHEMES",
    "MemoryStore",
    "SharedStoreServer",
    "Store",
    "StoreHealth",
    "StoreUnavailable",
    "open_store",
    "store_ready",
]

STATE_SCHEMES = ("redis://", "rediss://", "unix://")


def open_store(url: str | None, *, max_entries: int = 1_000_000, timeout: float = 0.5) -> Store:
    """The store for the ``state`` setting ``url``.

    None: the supervisor's store when this process is a forked worker of
    :func:`ohttp.aio.supervisor.run_workers`, else a :class:`MemoryStore` of ``max_entries``.
    Calls time out after ``timeout`` seconds (``StoreUnavailable("timeout")``).
    """
    if url is None:
        sock = take_inherited_socket()
        if sock is not None:
            return SharedStoreClient(sock, timeout=timeout)
        return MemoryStore(max_entries=max_entries)
    if not url.startswith(STATE_SCHEMES):
        raise ValueError("state: expected a redis://, rediss:// or unix:// URL")
    from ohttp.aio.store._redis import RedisStore  # redis loads only when it is used

    return RedisStore(url, timeout=timeout)


async def store_ready(store: Store, timeout: float = 1.0) -> bool:
    """Whether ``store`` answers within ``timeout`` seconds: the readiness of a server using it."""
    try:
        async with asyncio.timeout(timeout):
            await store.ping()
    except (StoreUnavailable, TimeoutError):
        return False
    return True


class StoreHealth:
    """Logs a store's outages and recoveries once each, not once per request.

    ``failed(reason)`` logs ``store_unavailable`` with the fixed reason (its ``error`` field,
    one of :data:`REASONS`) on the first failure
    after a success; ``answered()`` logs ``store_available`` on the first success after that.
    """

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self.down: str | None = None  # the reason of the outage in progress

    def failed(self, reason: str) -> None:
        if self.down != reason:
            self._logger.warning("store_unavailable", extra={"error": reason})
            self.down = reason

    def answered(self) -> None:
        if self.down is not None:
            self._logger.info("store_available")
            self.down = None
