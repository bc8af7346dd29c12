"""What the relay's request handling needs of a transport, and the answers it gives.

The handling (``relay.forward``, ``relay.routes``) is the same on both transports: the aiohttp
application of ``relay.app`` (for embedding) and the serving engine of ``relay.engine`` (for
``ohttp relay``). Each transport wraps its request in a :class:`ClientRequest` and sends the
:class:`Answer` a handler returns; a streamed answer is sent through the request itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ohttp.aio.engine import TEXT_PLAIN

__all__ = ["TEXT_PLAIN", "Answer", "ClientRequest", "plain_answer"]


@dataclass(slots=True)  # not frozen: made per request, and a frozen one costs 3x to make
class Answer:
    """A whole answer: status, header fields, body; ``close`` ends the connection after it
    (the transport sends ``Connection: close``). Never changed after it is made."""

    status: int
    headers: Sequence[tuple[str, str]]
    body: bytes = b""
    close: bool = False

    @property
    def content_type(self) -> str:
        """The Content-Type field's value, or "" without one."""
        for name, value in self.headers:
            if name.lower() == "content-type":
                return value
        return ""


def plain_answer(
    status: int, text: str, headers: Sequence[tuple[str, str]] = (), *, close: bool = False
) -> Answer:
    """A short text/plain answer of the relay's own."""
    return Answer(status, [TEXT_PLAIN, *headers], (text + "\n").encode(), close)


class ClientRequest(Protocol):
    """A client's request as the relay reads it, and the way to stream an answer to it.

    Field names are lower case; reads raise on a client that left or a body cut off before
    its framing's end (the caller turns that into the relay's own error).
    """

    @property
    def path(self) -> str: ...
    @property
    def content_length(self) -> int | None:
        """The declared length; None without one (a chunked body, or none at all)."""
    @property
    def body_exists(self) -> bool: ...
    @property
    def peer(self) -> str | None:
        """The client's address: for the rate limiter only, never logged."""
    def fields(self, name: str) -> list[str]: ...
    def read_nowait(self) -> bytes:
        """What has arrived of the body, without waiting."""
    async def readany(self) -> bytes:
        """The next piece of the body; b"" at its end."""
    async def start(self, status: int, headers: Sequence[tuple[str, str]],
                    length: int | None) -> None:
        """Send a streamed answer's head (``length``: its Content-Length, if known)."""
    async def write(self, piece: bytes) -> None:
        """Send a piece now; a client taking nothing for the write timeout is dropped
        (a ``ConnectionError``)."""
    async def end(self) -> None:
        """End the streamed answer."""
    def truncate(self) -> None:
        """End the connection without ending the answer: the client sees truncation."""
