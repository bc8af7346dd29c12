"""The Redis (or Valkey) store, shared by every worker and replica, over ``redis.asyncio``.

Each operation is one round trip and atomic on the server: ``SET key 1 NX PX ttl`` for
``add``; a Lua script for ``incr`` (INCR, and PEXPIRE only when the counter is new, so the
window is fixed by the first request) and for ``setdefault``. Every call runs under a
deadline: a slow Redis is an unavailable Redis. Nothing is retried: a command whose answer
was lost may have run (a retried ``add`` would report its own key as a replay), so the
caller fails closed and its client sends a fresh request.

redis-py's exceptions become :class:`StoreUnavailable` in one place, :func:`_translated`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Iterator

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ohttp.aio.store._base import StoreUnavailable

__all__ = ["RedisStore"]

# Counters start their window on the first increment; later increments leave the expiry alone.
_INCR = """
local value = redis.call('INCR', KEYS[1])
if value == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return value
"""
# SET NX GET would do this in one command from Redis 7.0 only; the script runs on older too.
_SETDEFAULT = """
local current = redis.call('GET', KEYS[1])
if current then return current end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return ARGV[1]
"""


def _ms(ttl: float) -> int:
    return max(1, math.ceil(ttl * 1000))  # PX takes whole milliseconds, at least one


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    """The one boundary where the client's errors become fixed reason codes."""
    try:
        yield
    except (TimeoutError, RedisTimeoutError):
        raise StoreUnavailable("timeout") from None
    except (RedisConnectionError, OSError):
        raise StoreUnavailable("connection") from None
    except OutOfMemoryError:  # at maxmemory with noeviction, Redis refuses writes
        raise StoreUnavailable("full") from None
    except RedisError:
        raise StoreUnavailable("error") from None


class RedisStore:
    """A :class:`~ohttp.aio.store.Store` on Redis at ``url`` (``redis://``, ``rediss://``,
    ``unix://``); keys are prefixed with ``prefix``. Connections are pooled and opened on
    first use; after an outage the next call reconnects by itself."""

    def __init__(
        self, url: str, *, timeout: float = 0.5, prefix: bytes = b"ohttp:",
        max_connections: int = 64,
    ) -> None:  # fmt: skip
        self._timeout = timeout
        self._prefix = prefix
        self._redis = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            retry_on_timeout=False,
            max_connections=max_connections,
        )
        self._incr = self._redis.register_script(_INCR)
        self._setdefault = self._redis.register_script(_SETDEFAULT)

    async def add(self, key: bytes, ttl: float) -> bool:
        with _translated():
            async with asyncio.timeout(self._timeout):
                done = await self._redis.set(self._prefix + key, b"1", nx=True, px=_ms(ttl))
        return bool(done)

    async def incr(self, key: bytes, ttl: float) -> int:
        with _translated():
            async with asyncio.timeout(self._timeout):
                value = await self._incr(keys=[self._prefix + key], args=[_ms(ttl)])
        return int(value)

    async def setdefault(self, key: bytes, value: bytes, ttl: float) -> bytes:
        with _translated():
            async with asyncio.timeout(self._timeout):
                stored = await self._setdefault(keys=[self._prefix + key], args=[value, _ms(ttl)])
        return bytes(stored)

    async def ping(self) -> None:
        with _translated():
            async with asyncio.timeout(self._timeout):
                await self._redis.ping()

    async def close(self) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self._redis.aclose()
