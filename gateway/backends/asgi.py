"""An ASGI 3 application as the backend: the HTTP scope, the exchange, the lifespan protocol."""

from __future__ import annotations

import asyncio
import contextlib
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

from gateway.backends.base import StreamedResponse, collect, strip_connection_fields
from gateway.errors import BackendError, BackendTimeout
from ohttp import bhttp
from ohttp.bhttp import Fields

__all__ = ["AsgiApp", "AsgiBackend", "Message", "Receive", "Scope", "Send", "asgi_scope"]


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _server_of(authority: str, scheme: str) -> tuple[str, int | None] | None:
    if not authority:
        return None
    host, sep, port = authority.rpartition(":")
    if not sep or "]" in port:  # no port, or only an IPv6 literal
        return authority.strip("[]"), _DEFAULT_PORTS.get(scheme)
    try:
        return host.strip("[]"), int(port)
    except ValueError:
        return host.strip("[]"), _DEFAULT_PORTS.get(scheme)


def asgi_scope(request: bhttp.Request, *, root_path: str = "") -> dict[str, Any]:
    """The ASGI 3 HTTP connection scope for an inner request (ASGI spec, HTTP scope)."""
    target = request.path
    raw_path, _, query = target.partition(b"?")
    scheme = request.scheme.decode("latin-1")
    authority = request.authority.decode("latin-1")
    headers: list[tuple[bytes, bytes]] = []
    if request.authority:
        # :authority takes the place of Host, as in HTTP/2 (RFC 9113 §8.3.1).
        headers.append((b"host", request.authority))
    headers.extend(
        (name, value)
        for name, value in strip_connection_fields(request.headers)
        if not (name == b"host" and request.authority)
    )
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": request.method.decode("latin-1"),  # case-sensitive (RFC 9110 §9.1)
        "scheme": scheme or "https",
        "path": urllib.parse.unquote(raw_path.decode("latin-1")),
        "raw_path": raw_path,
        "query_string": query,
        "root_path": root_path,
        "headers": headers,
        "client": None,  # the gateway never reveals who asked
        "server": _server_of(authority, scheme),
        "extensions": {},
    }


class _AsgiExchange:
    """One ASGI HTTP request/response cycle: feeds the body, collects what the app sends."""

    def __init__(self, body: bytes, queue_size: int) -> None:
        self._body: bytes | None = body
        self._done = asyncio.Event()
        self.start: asyncio.Future[tuple[int, Fields]] = asyncio.get_running_loop().create_future()
        self.chunks: asyncio.Queue[bytes | None] = asyncio.Queue(queue_size)

    async def receive(self) -> Message:
        if self._body is not None:
            body, self._body = self._body, None
            return {"type": "http.request", "body": body, "more_body": False}
        await self._done.wait()  # the app only hears of a disconnect once it has answered
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        kind = message.get("type")
        if kind == "http.response.start" and not self.start.done():
            headers = tuple((bytes(n).lower(), bytes(v)) for n, v in message.get("headers", ()))
            self.start.set_result((int(message["status"]), headers))
        elif kind == "http.response.body" and self.start.done() and not self._done.is_set():
            body = bytes(message.get("body", b""))
            if body:
                await self.chunks.put(body)
            if not message.get("more_body", False):
                self._done.set()
                await self.chunks.put(None)
        else:
            raise RuntimeError("unexpected ASGI message")

    async def finish(self, error: BaseException | None) -> None:
        if not self.start.done():
            self.start.set_exception(error or BackendError())
        elif not self._done.is_set():
            await self.chunks.put(None)  # a short body: the consumer sees it incomplete

    @property
    def complete(self) -> bool:
        return self._done.is_set()


class AsgiBackend:
    """Calls an ASGI 3 application in-process with a full HTTP scope.

    ``client`` is None: the app never learns who asked. With ``lifespan=True`` (standalone
    use) ``start()``/``close()`` run the ASGI lifespan protocol; leave it False when the host
    server already runs it (the ASGI middleware). ``timeout`` bounds the whole exchange.
    """

    def __init__(
        self,
        app: AsgiApp,
        *,
        timeout: float | None = None,
        lifespan: bool = False,
        root_path: str = "",
        max_response_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        self._app = app
        self._timeout = timeout
        self._root_path = root_path
        self._max_response_bytes = max_response_bytes
        self._lifespan = _Lifespan(app) if lifespan else None

    async def start(self) -> None:
        if self._lifespan is not None:
            await self._lifespan.startup()

    async def close(self) -> None:
        if self._lifespan is not None:
            await self._lifespan.shutdown()

    def _scope(self, request: bhttp.Request) -> dict[str, Any]:
        scope = asgi_scope(request, root_path=self._root_path)
        if self._lifespan is not None and self._lifespan.state is not None:
            scope["state"] = dict(self._lifespan.state)
        return scope

    async def handle(self, request: bhttp.Request) -> bhttp.Response:
        try:
            async with asyncio.timeout(self._timeout):
                streamed = await self._stream(request, queue_size=0)
                content = await collect(streamed, self._max_response_bytes)
        except TimeoutError:
            raise BackendTimeout from None
        return bhttp.Response(status=streamed.status, headers=streamed.headers, content=content)

    async def stream(self, request: bhttp.Request) -> StreamedResponse:
        """Returns once the app has sent its status; ``timeout`` bounds only that wait."""
        try:
            async with asyncio.timeout(self._timeout):
                return await self._stream(request, queue_size=4)
        except TimeoutError:
            raise BackendTimeout from None

    async def _stream(self, request: bhttp.Request, *, queue_size: int) -> StreamedResponse:
        exchange = _AsgiExchange(request.content, queue_size)
        task = asyncio.create_task(self._run(request, exchange))
        try:
            status, headers = await exchange.start
        except BaseException:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            raise
        body = _asgi_body(exchange, task)
        return StreamedResponse(status, strip_connection_fields(headers), body)

    async def _run(self, request: bhttp.Request, exchange: _AsgiExchange) -> None:
        try:
            await self._app(self._scope(request), exchange.receive, exchange.send)
        except Exception:
            await exchange.finish(BackendError())
        else:
            await exchange.finish(None)


async def _asgi_body(exchange: _AsgiExchange, task: asyncio.Task[None]) -> AsyncIterator[bytes]:
    try:
        while (chunk := await exchange.chunks.get()) is not None:
            yield chunk
        if not exchange.complete:
            raise BackendError
    finally:
        if not task.done():
            task.cancel()
        with contextlib.suppress(BaseException):
            await task


class _Lifespan:
    """The ASGI lifespan protocol, driven from a backend's start()/close()."""

    def __init__(self, app: AsgiApp) -> None:
        self._app = app
        self._inbox: asyncio.Queue[Message] = asyncio.Queue()
        self._outbox: asyncio.Queue[Message] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._supported = True
        self.state: dict[str, Any] | None = None

    async def _run(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}}
        scope["state"] = self.state = {}
        try:
            await self._app(scope, self._inbox.get, self._outbox.put)
        except Exception:
            # ASGI lifespan spec: an app that raises does not support lifespan; carry on.
            self._supported = False
        finally:
            await self._outbox.put({"type": "lifespan.finished"})

    async def _exchange(self, event: str) -> None:
        await self._inbox.put({"type": f"lifespan.{event}"})
        reply = await self._outbox.get()
        if reply["type"] == f"lifespan.{event}.failed":
            raise RuntimeError(f"ASGI application {event} failed")

    async def startup(self) -> None:
        self._task = asyncio.create_task(self._run())
        await self._exchange("startup")
        if not self._supported:
            self.state = None

    async def shutdown(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        if self._supported and not task.done():
            await self._exchange("shutdown")
        with contextlib.suppress(BaseException):
            await task

