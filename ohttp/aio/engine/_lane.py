"""The engine's lane: a small whole request answered before any handler, without an exchange.

A server's common request is small and arrives whole in one read. Such a request can be
offered to a *lane* first: a function that either takes it (and later answers it through
:meth:`LaneRequest.respond`, from callbacks or from a coroutine it gives the engine to run
with :meth:`LaneRequest.spawn`, or hands it to a coroutine handler after all with
:meth:`LaneRequest.hand_over`), or declines it, and the engine's handler answers it as any
other. A lane is for speed only: everything it declines, and every answer of its own it
does not want to give, goes the usual way, so the rules stay in one place. A bug the engine
cannot see (in a lane's own callbacks) is given to :meth:`LaneRequest.fail`, which answers as
a handler's bug is answered.

The engine offers a request only when nothing else is in progress on its connection, the
request has a Content-Length body of at most :data:`LANE_MAX_BODY` bytes that arrived in
the same read as its head, and it has neither Expect nor Upgrade: every limit, deadline and
parsing rule of the engine applied to it as to any request, and requests pipelined behind it
wait for its answer.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable
from typing import Any, Protocol

from ohttp.aio.engine._exchange import Handler
from ohttp.aio.engine._head import Head
from ohttp.aio.engine._wire import keep_alive_10, whole_response

__all__ = ["LANE_MAX_BODY", "Lane", "LaneRequest"]

LANE_MAX_BODY = 64 * 1024  # as Body's high-water mark: a lane body is never flow-controlled


class _LaneLink(Protocol):
    """What a lane request needs of its connection."""

    def lane_respond(self, request: LaneRequest, data: bytes) -> None: ...
    def lane_hand_over(self, request: LaneRequest, handler: Handler) -> None: ...
    def lane_spawn(self, request: LaneRequest, answer: Coroutine[Any, Any, None]) -> None: ...
    def lane_fail(self, request: LaneRequest, error: Exception) -> None: ...
    @property
    def peer(self) -> tuple[str, int] | None: ...


class LaneRequest:
    """A whole request offered to a lane: its ``head``, its ``body``, and the one answer."""

    __slots__ = ("_link", "body", "closing", "head", "keep_alive", "spawned")

    def __init__(self, head: Head, body: bytes, link: _LaneLink, *, keep_alive: bool) -> None:
        self.head = head
        self.body = body
        self._link = link
        self.keep_alive = keep_alive
        self.closing = not keep_alive  # the connection ends after the answer
        self.spawned = False  # a coroutine answers it (spawn): taken, whatever the lane says

    @property
    def peer(self) -> tuple[str, int] | None:
        """The client's address and port, as ``Exchange.peer``."""
        return self._link.peer

    def respond(self, status: int, headers: Iterable[tuple[str, str]], body: bytes = b"", *,
                close: bool = False) -> None:
        """The whole answer in one write (as ``Exchange.respond``); ``close`` ends the
        connection after it."""
        self.closing = self.closing or close
        self._link.lane_respond(self, whole_response(
            status, headers, body, close=self.closing,
            keep_alive_10=keep_alive_10(self.keep_alive, self.head.http_version),
            head_only=self.head.method == "HEAD",
        ))

    def spawn(self, answer: Coroutine[Any, Any, None]) -> None:
        """Answer from ``answer``, a coroutine the engine runs in a task of its own (cancelled,
        as a handler's, when a shutdown runs out of time), for an answer that may wait but
        needs no exchange: ``answer`` answers through :meth:`respond` or :meth:`hand_over`.
        One that raises or ends without answering gets the fixed 500, as a handler's bug."""
        self._link.lane_spawn(self, answer)
        self.spawned = True

    def fail(self, error: Exception) -> None:
        """Answer as a handler's bug is answered (the fixed 500, the connection ends), for a
        lane's callback that raised: ``error``'s type is logged, nothing else of it, and only
        logged if the request was answered or handed over already."""
        self._link.lane_fail(self, error)

    def hand_over(self, handler: Handler) -> None:
        """Answer through ``handler`` after all, as an exchange whose body is complete (for an
        answer the lane cannot give by callbacks: a streamed one, say)."""
        self._link.lane_hand_over(self, handler)


Lane = Callable[[LaneRequest], bool]
