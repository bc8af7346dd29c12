"""Shared state for the servers: check-and-set and counters, each with an expiry.

One small async interface (:class:`Store`) with interchangeable backends, so that replay records,
spent tokens and rate-limit counters can be shared by every worker and replica. The memory store
serves one process; other backends are added beside it.

Keys are opaque bytes chosen by the caller. They never hold a client address or request content:
callers pass digests (the relay's rate limit passes a keyed hash that rotates with its window).
"""

from ohttp.aio.store._base import Store, StoreUnavailable
from ohttp.aio.store._memory import MemoryStore

__all__ = ["MemoryStore", "Store", "StoreUnavailable"]
