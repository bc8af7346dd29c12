"""The processing service as the gateway's backend, called in-process: no socket, no HTTP."""

from __future__ import annotations

import urllib.parse
from collections.abc import AsyncIterator
from email.utils import formatdate
from typing import ClassVar

from gateway.backends.base import Stateless, StreamedResponse
from gateway.config import PROCESSING_AUTHORITY
from gateway.processing.service import Reply, answer
from ohttp import bhttp
from ohttp.bhttp import Fields

__all__ = ["ProcessingBackend"]

_NO_STORE = (b"cache-control", b"no-store")  # results are private to one request


class ProcessingBackend(Stateless):
    """Answers inner requests for ``processing.internal`` by calling the service directly.

    The same routes, statuses and bodies as the aiohttp app (``processing.create_app``);
    a streamed summary is handed over line by line (``stream``).
    """

    authority: ClassVar[str] = PROCESSING_AUTHORITY

    async def handle(self, request: bhttp.Request) -> bhttp.Response:
        reply = await _reply(request)
        if reply.lines is None:
            return bhttp.Response(reply.status, _headers(reply), reply.body)
        content = b"".join([line async for line in reply.lines])
        return bhttp.Response(reply.status, _headers(reply), content)

    async def stream(self, request: bhttp.Request) -> StreamedResponse:
        reply = await _reply(request)
        body = reply.lines if reply.lines is not None else _whole(reply.body)
        return StreamedResponse(reply.status, _headers(reply), body)


async def _reply(request: bhttp.Request) -> Reply:
    path = request.path.partition(b"?")[0].decode("latin-1")
    return await answer(request.method.decode("latin-1"), urllib.parse.unquote(path),
                        request.content)


def _headers(reply: Reply) -> Fields:
    content_type = (b"content-type", f"{reply.content_type}; charset=utf-8".encode("ascii"))
    headers: list[tuple[bytes, bytes]] = [content_type]
    if reply.lines is None:
        headers.append((b"content-length", str(len(reply.body)).encode("ascii")))
    if reply.allow is not None:
        headers.append((b"allow", reply.allow.encode("ascii")))
    headers.append(_NO_STORE)
    # RFC 9110 §6.6.1: an origin server with a clock sends Date (as the aiohttp app did).
    headers.append((b"date", formatdate(usegmt=True).encode("ascii")))
    return tuple(headers)


async def _whole(body: bytes) -> AsyncIterator[bytes]:
    yield body
