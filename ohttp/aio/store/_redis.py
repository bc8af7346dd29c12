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
from collections.abc import Awaitable, Callable, Iterator

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, RedisError, ResponseError
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
    first use; after an outage the next call reconnects by itself.

    Calls made in the same turn of the event loop go out together as one pipeline (one
    write, one read, one pooled connection): under load this is several times cheaper per
    call than a command each (benchmarks/store_bench.py); a lone call pays one more turn
    of the loop (a few µs), an idle server's cost only.
    ``pipeline=False`` sends every call on its own (for comparison).
    """

    def __init__(
        self, url: str, *, timeout: float = 0.5, prefix: bytes = b"ohttp:",
        max_connections: int = 64, pipeline: bool = True,
    ) -> None:  # fmt: skip
        self._timeout = timeout
        self._pipeline = pipeline
        self._prefix = prefix
        self._redis = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            retry_on_timeout=False,
            max_connections=max_connections,
        )
        # redis-py leaves execute_command untyped; it returns the decoded reply.
        self._command: Callable[..., Awaitable[object]] = self._redis.execute_command
        self._batch: list[tuple[tuple[object, ...], asyncio.Future[object]]] = []
        self._flushes: set[asyncio.Task[None]] = set()

    async def add(self, key: bytes, ttl: float) -> bool:
        done = await self._call("SET", self._prefix + key, b"1", "NX", "PX", _ms(ttl))
        return done is not None

    async def incr(self, key: bytes, ttl: float) -> int:
        value = await self._call("EVAL", _INCR, 1, self._prefix + key, _ms(ttl))
        assert isinstance(value, int)
        return value

    async def setdefault(self, key: bytes, value: bytes, ttl: float) -> bytes:
        stored = await self._call("EVAL", _SETDEFAULT, 1, self._prefix + key, value, _ms(ttl))
        assert isinstance(stored, bytes)
        return stored

    async def ping(self) -> None:
        with _translated():
            async with asyncio.timeout(self._timeout):
                await self._redis.ping()

    async def close(self) -> None:
        for task in list(self._flushes):
            task.cancel()
        with contextlib.suppress(RedisError, OSError):
            await self._redis.aclose()

    async def _call(self, *command: object) -> object:
        if not self._pipeline:
            with _translated():
                async with asyncio.timeout(self._timeout):
                    return await self._command(*command)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[object] = loop.create_future()
        if not self._batch:  # the first call of this turn: flush once the turn is over
            loop.call_soon(self._start_flush)
        self._batch.append((command, future))
        with _translated():
            async with asyncio.timeout(self._timeout):
                return await future  # a caller's timeout cancels only its own future

    def _start_flush(self) -> None:
        batch, self._batch = self._batch, []
        task = asyncio.get_running_loop().create_task(self._flush(batch))
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _flush(self, batch: list[tuple[tuple[object, ...], asyncio.Future[object]]]) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                results = await self._execute([command for command, _ in batch])
        except (Exception, asyncio.CancelledError) as exc:
            results = [exc] * len(batch)
        for (_, future), result in zip(batch, results, strict=True):  # in the order sent
            if future.done():
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def _execute(self, commands: list[tuple[object, ...]]) -> list[object]:
        if len(commands) == 1:  # a pipeline costs more than the command alone
            try:
                return [await self._command(*commands[0])]
            except ResponseError as exc:  # that command's own error, as in a pipeline
                return [exc]
        pipe = self._redis.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        return list(await pipe.execute(raise_on_error=False))
