"""The backend seam: where a decapsulated inner request is answered.

A backend takes a Binary HTTP request (``ohttp.bhttp.Request``) and returns a Binary HTTP
response. Every backend has async ``start()`` / ``close()`` so the gateway can hold it in
``cleanup_ctx``; backends that stream also offer ``stream()`` (chunked OHTTP, issue 6).

Failures surface as ``gateway.errors.BackendError`` and its subclasses only, with fixed
messages; ``gateway.errors`` decides the answer. Nothing here logs, and no exception message
carries request content.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from gateway.errors import BackendError, BackendResponseInvalid
from ohttp import bhttp
from ohttp.bhttp import Fields

__all__ = [
    "Backend",
    "Stateless",
    "StreamedResponse",
    "StreamingBackend",
    "backend_authority",
    "collect",
    "encode_response",
    "strip_connection_fields",
]

STREAM_CHUNK = 64 * 1024



@dataclass(frozen=True, slots=True)
class StreamedResponse:
    """A response whose body arrives incrementally.

    The consumer must exhaust ``body`` or call ``aclose()``, which releases the
    underlying connection or task.
    """

    status: int
    headers: Fields
    body: AsyncIterator[bytes]

    async def aclose(self) -> None:
        closer = getattr(self.body, "aclose", None)
        if closer is not None:
            await closer()


@runtime_checkable
class Backend(Protocol):
    """Answers one decapsulated inner request.

    A backend may also have an ``authority: str | None`` attribute: the authority inner
    requests name to reach it, which the gateway allows by default (``backend_authority``).
    """

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def handle(self, request: bhttp.Request) -> bhttp.Response: ...


@runtime_checkable
class StreamingBackend(Backend, Protocol):
    """A backend that can hand back the response body as it is produced."""

    async def stream(self, request: bhttp.Request) -> StreamedResponse: ...


# RFC 9110 §7.6.1: connection-specific fields an intermediary must not forward; RFC 9292 §3.6
# leaves them out of Binary HTTP messages. Names the Connection field lists are removed too.
# RFC 9110 §7.6.1 connection-specific fields, plus the proxy credentials of RFC 9110 §11.7,
# which are meant for the gateway as the next proxy inward, never for the target.
_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"proxy-connection",
        b"keep-alive",
        b"te",
        b"transfer-encoding",
        b"upgrade",
        b"proxy-authorization",
        b"proxy-authenticate",
    }
)


def _connection_options(headers: Fields) -> frozenset[bytes]:
    listed: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            listed.update(part.strip().lower() for part in value.split(b","))
    return frozenset(listed)


def strip_connection_fields(headers: Fields, *, also: Iterable[bytes] = ()) -> Fields:
    """Lower-cased field lines without connection-specific fields (RFC 9110 §7.6.1)."""
    drop = _HOP_BY_HOP | _connection_options(headers) | frozenset(also)
    return tuple((name.lower(), value) for name, value in headers if name.lower() not in drop)


async def collect(streamed: StreamedResponse, limit: int) -> bytes:
    """The whole body of ``streamed`` (released after); ``BackendError`` past ``limit`` bytes."""
    parts: list[bytes] = []
    size = 0
    try:
        async for chunk in streamed.body:
            size += len(chunk)
            if size > limit:
                raise BackendError("backend response too large")
            parts.append(chunk)
    finally:
        await streamed.aclose()
    return b"".join(parts)


def encode_response(response: bhttp.Response) -> bytes:
    """The backend's response as Binary HTTP; ``BackendResponseInvalid`` if it cannot be.

    The bhttp encoder raises ``ValueError`` for an invalid message (a bad field name from the
    backend): that is the backend's failure, so it becomes a backend error here, at the seam.
    """
    try:
        return bhttp.encode_response(response)
    except ValueError:
        raise BackendResponseInvalid() from None


def encode_head(framer: bhttp.StreamingResponseEncoder, status: int, headers: Fields) -> bytes:
    """A streamed response's head; ``BackendResponseInvalid`` if it cannot be encoded."""
    try:
        return framer.head(bhttp.Response(status=status, headers=headers))
    except ValueError:
        raise BackendResponseInvalid() from None


class Stateless:
    """For backends that hold nothing to open or release: ``start()`` and ``close()`` do nothing."""

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None


def backend_authority(backend: Backend) -> str | None:
    """The authority a backend answers under, if it has one (the default target allowlist)."""
    authority = getattr(backend, "authority", None)
    return authority if isinstance(authority, str) else None
