"""The engine's server: the connection cap, the lane and handler, and the shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from ohttp.aio.engine._connection import _Connection
from ohttp.aio.engine._exchange import Handler
from ohttp.aio.engine._lane import Lane

__all__ = ["EngineLimits", "EngineServer"]

_UNWIND_SECONDS = 1.0  # at shutdown, for cancelled answers to finish their cleanup


@dataclass(frozen=True)
class EngineLimits:
    """Per-listener limits. Sizes in bytes; times in seconds."""

    max_connections: int
    header_timeout: float  # a request head must be complete within this
    keepalive_timeout: float  # an idle connection between requests is closed after this
    max_request_line: int = 8190  # as aiohttp's defaults
    max_field_line: int = 8190
    max_fields: int = 100


class EngineServer:
    """Makes a protocol per connection (``factory``), counts them against the cap and ends them
    on :meth:`shutdown`. ``on_count`` hears the number of open connections."""

    def __init__(self, handler: Handler, limits: EngineLimits,
                 on_count: Callable[[int], None] = lambda _: None, *,
                 lane: Lane | None = None) -> None:
        self.handler = handler
        self.lane = lane  # offered each small whole request first (``ohttp.aio.engine._lane``)
        self.limits = limits
        self.on_count = on_count
        self.connections: set[_Connection] = set()
        # Answers lanes spawned (LaneRequest.spawn), until they end: a shutdown waits for them
        # as for the connections, whether or not theirs is still open.
        self.lane_tasks: set[asyncio.Task[None]] = set()
        self.stopping = False

    def factory(self) -> asyncio.Protocol:
        return _Connection(self)

    async def shutdown(self, timeout: float) -> None:
        """Close idle connections now; let answers in progress finish for up to ``timeout``."""
        self.stopping = True
        for connection in list(self.connections):
            connection.stop()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (self.connections or self.lane_tasks) and loop.time() < deadline:
            await asyncio.sleep(0.05)
        cancelled = [task for connection in list(self.connections) if (task := connection.kill())]
        cancelled += self.lane_tasks
        for task in self.lane_tasks:
            task.cancel()
        if cancelled:  # their cleanup (finally blocks) runs before the app's own cleanup
            await asyncio.wait(cancelled, timeout=_UNWIND_SECONDS)

    def admit(self, connection: _Connection) -> bool:
        if len(self.connections) >= self.limits.max_connections or self.stopping:
            return False
        self.connections.add(connection)
        self.on_count(len(self.connections))
        return True

    def release(self, connection: _Connection) -> None:
        self.connections.discard(connection)
        self.on_count(len(self.connections))
