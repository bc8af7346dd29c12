"""One request and its answer: what a handler gets from the engine."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

from ohttp.aio.engine._body import Body
from ohttp.aio.engine._head import Head
from ohttp.aio.engine._wire import keep_alive_10, response_head, whole_response

__all__ = ["Exchange", "Handler", "WriteStalled", "log_client_gone"]

log = logging.getLogger("ohttp.serving")


class WriteStalled(ConnectionError):
    """The client took no bytes of a response for the write timeout."""


def log_client_gone(exc: ConnectionError) -> None:
    """A client's disconnect, logged as the normal event it is: info, a fixed code only."""
    code = "write_stalled" if isinstance(exc, WriteStalled) else "connection_lost"
    log.info("client_disconnected", extra={"code": code})


class _Link(Protocol):
    """What an exchange needs of its connection."""

    def send(self, data: bytes) -> None: ...
    @property
    def paused(self) -> bool: ...
    @property
    def gone(self) -> bool: ...
    async def drained(self) -> None: ...
    def abort(self) -> None: ...
    def close_after_answer(self) -> None: ...
    @property
    def peer(self) -> tuple[str, int] | None: ...


class Exchange:
    """A request (``head``, ``body``) and the one answer to it: :meth:`respond` with a whole
    body, or :meth:`start` then :meth:`write` and :meth:`end` for a streamed one (chunked
    transfer coding, RFC 9112 §7.1, or a length given in advance). ``close()`` asks for the
    connection to end after it."""

    __slots__ = ("_close", "_early", "_keep_alive_10", "_link", "_raw", "_started", "body", "ended",
                 "head")

    def __init__(self, head: Head, body: Body, link: _Link, *, keep_alive: bool) -> None:
        self.head = head
        self.body = body
        self._link = link
        self._close = not keep_alive
        self._keep_alive_10 = keep_alive_10(keep_alive, head.http_version)
        self._started = False
        self._early = False  # answered before the request body ended: the connection ends
        self._raw = False  # a streamed body sent as is (its length was given, or HTTP/1.0)
        self.ended = False

    @property
    def peer(self) -> tuple[str, int] | None:
        """The client's address (for rate limiting; never logged)."""
        return self._link.peer

    @property
    def started(self) -> bool:
        """Whether the answer's head has been sent."""
        return self._started

    @property
    def closing(self) -> bool:
        """Whether the connection ends after this answer."""
        return self._close or self._early

    def close(self) -> None:
        """End the connection once the answer is sent."""
        self._close = True

    def respond(self, status: int, headers: Iterable[tuple[str, str]], body: bytes = b"") -> None:
        """The whole answer in one write; HEAD gets the head only (RFC 9110 §9.3.2)."""
        self._begin()
        self._link.send(whole_response(status, headers, body, close=self.closing,
                                       keep_alive_10=self._keep_alive_10,
                                       head_only=self.head.method == "HEAD"))
        self._finish()

    def start(
        self, status: int, headers: Iterable[tuple[str, str]], length: int | None = None
    ) -> None:
        """Send a streamed answer's head; with ``length``, the body's pieces must add up to
        exactly that many bytes (Content-Length framing, RFC 9112 §6.2)."""
        self._begin()
        if length is not None:
            self._raw = True
            framing = b"Content-Length: %d\r\n" % length
        elif self.head.http_version == "1.0":  # no chunked coding: the body ends with the close
            self._close = self._raw = True
            framing = b""
        else:
            framing = b"Transfer-Encoding: chunked\r\n"
        self._link.send(response_head(status, headers, framing, close=self.closing,
                                      keep_alive_10=self._keep_alive_10))

    async def write(self, data: bytes, timeout: float) -> None:
        """One piece of a streamed answer, sent now; waits only while the client is not
        reading, and aborts the connection (``WriteStalled``) after ``timeout`` of that."""
        if self._link.gone:  # as aiohttp's writer: the producer learns the client left
            raise ConnectionResetError("cannot write to a closed connection")
        if not data:
            return
        if self._raw:
            self._link.send(data)
        else:
            self._link.send(b"%x\r\n%s\r\n" % (len(data), data))
        if not self._link.paused:  # the transport took it: no timer needed
            return
        try:
            async with asyncio.timeout(timeout):
                await self._link.drained()
        except TimeoutError:
            self._link.abort()
            raise WriteStalled() from None

    def end(self) -> None:
        """The last piece of a streamed answer."""
        if not self._raw:
            self._link.send(b"0\r\n\r\n")
        self._finish()

    def cut(self) -> None:
        """End the connection once what was sent has been flushed, without ending the answer:
        the client gets every piece so far, then sees a truncated message."""
        self._close = True
        self._finish()

    def abort(self) -> None:
        """Drop the connection now, without ending the answer (the client sees truncation)."""
        self.ended = True
        self._link.abort()

    def _begin(self) -> None:
        if self._started:
            raise RuntimeError("the answer has started already")
        self._started = True
        # An answer before the body ended (a 413, a 401): the engine reads and drops the rest
        # for a while, then ends the connection, so the answer says so (RFC 9112 §9.6).
        self._early = not self.body.complete

    def _finish(self) -> None:
        self.ended = True
        if self._close:
            self._link.close_after_answer()


Handler = Callable[[Exchange], Awaitable[None]]
