"""A request body as it arrives, with flow control toward the client."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable

__all__ = ["Body"]

HIGH_WATER = 64 * 1024  # buffered body bytes at which reading from the client pauses


class Body:
    """The body's bytes in order. Reads raise ``ConnectionResetError`` once the client has
    gone before the body ended (``asyncio.IncompleteReadError`` for ``readexactly``)."""

    __slots__ = ("_buffered", "_discarding", "_done", "_error", "_pause", "_paused", "_pieces",
                 "_resume", "_truncated", "_waiter")

    def __init__(self, pause: Callable[[], None], resume: Callable[[], None]) -> None:
        self._pieces: deque[bytes] = deque()
        self._buffered = 0
        self._done = False
        self._truncated = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._pause, self._resume = pause, resume
        self._paused = False
        self._discarding = False

    # -- fed by the connection

    def feed(self, data: bytes) -> None:
        if self._discarding:
            return
        self._pieces.append(data)
        self._buffered += len(data)
        if self._buffered >= HIGH_WATER and not self._paused:
            self._paused = True
            self._pause()
        self._wake()

    def end(self, *, truncated: bool = False) -> None:
        """The body ended: complete, or ``truncated`` (the client half-closed or broke the
        framing before its end); reads see the end either way."""
        self._done = True
        self._truncated = truncated
        self._wake()

    def fail(self, error: BaseException) -> None:
        if not self._done:
            self._error = error
            self._wake()

    @property
    def truncated(self) -> bool:
        """Whether the body ended before its framing said it would (for a reader that must
        not take a cut-off body for a whole one, such as a relay)."""
        return self._truncated

    @property
    def complete(self) -> bool:
        """Whether the whole body has arrived (read or not)."""
        return self._done

    async def discard(self) -> None:
        """Drop what has arrived and what arrives until the body ends (or the client leaves)."""
        self._discarding = True
        self._pieces.clear()
        self._buffered = 0
        if self._paused:
            self._paused = False
            self._resume()
        while not self._done and self._error is None:
            await self._wait_quietly()

    async def _wait_quietly(self) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        try:
            await waiter
        finally:
            self._waiter = None

    # -- read by the handler

    def read_nowait(self, limit: int) -> bytes:
        """Up to ``limit`` bytes of what has arrived, without waiting."""
        parts = []
        while self._pieces and limit > 0:
            piece = self._pieces.popleft()
            if len(piece) > limit:
                self._pieces.appendleft(piece[limit:])
                piece = piece[:limit]
            parts.append(piece)
            limit -= len(piece)
        return self._taken(parts[0] if len(parts) == 1 else b"".join(parts))

    async def readexactly(self, length: int) -> bytes:
        """Exactly ``length`` bytes; ``asyncio.IncompleteReadError`` if the body ends first."""
        parts: list[bytes] = []
        needed = length
        while needed:
            piece = self.read_nowait(needed)
            if piece:
                parts.append(piece)
                needed -= len(piece)
                continue
            if self._done:
                raise asyncio.IncompleteReadError(b"".join(parts), length)
            await self._wait()
        return b"".join(parts)

    async def iter_any(self) -> AsyncIterator[bytes]:
        """Each piece as it arrives (pieces already buffered come joined)."""
        while True:
            piece = self.read_nowait(self._buffered)
            if piece:
                yield piece
            elif self._error is not None:  # ended by the client leaving: truncated, not whole
                raise self._error
            elif self._done:
                return
            else:
                await self._wait()

    def _taken(self, data: bytes) -> bytes:
        self._buffered -= len(data)
        if self._paused and self._buffered < HIGH_WATER // 2:
            self._paused = False
            self._resume()
        return data

    async def _wait(self) -> None:
        if self._error is not None:
            raise self._error
        await self._wait_quietly()
        if self._error is not None and not self._pieces and not self._done:
            raise self._error  # (once done, each reader says how a truncated body ends)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
