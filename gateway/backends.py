"""The backend seam: where a decapsulated inner request is answered.

A backend takes a Binary HTTP request (``ohttp.bhttp.Request``) and returns a Binary HTTP
response. Every backend has async ``start()`` / ``close()`` so the gateway can hold it in
``cleanup_ctx``; backends that stream also offer ``stream()`` (chunked OHTTP, issue 6).

Failures surface as two exceptions only, with fixed messages: ``BackendTimeout`` (the gateway
answers an encapsulated 504) and ``BackendError`` (encapsulated 502). Nothing here logs, and
no exception message carries request content.

Decisions (documented in docs/embedding.md):
- Echo JSON strings are the field bytes decoded as latin-1: every byte maps to exactly one
  code point, so the JSON is lossless and ASCII-only (non-ASCII bytes appear as ``\\u00XX``).
- HttpOriginBackend sends ``Host`` from the origin URL (matching the TLS server name); with
  ``forward_authority=True`` it sends the inner authority instead (virtual hosting). The
  connection always goes to the configured origin, never to the inner authority.
- Inner request trailers are not forwarded (aiohttp cannot send them), and no backend
  returns trailers.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import shutil
import ssl as ssl_module
import tempfile
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii
from typing import Any, ClassVar, NamedTuple, Protocol, runtime_checkable

import aiohttp
from aiohttp import web
from yarl import URL

from ohttp import bhttp
from ohttp.bhttp import Fields

__all__ = [
    "AiohttpAppBackend",
    "AsgiBackend",
    "Backend",
    "BackendError",
    "BackendTimeout",
    "CallableBackend",
    "EchoBackend",
    "Fields",
    "HttpOriginBackend",
    "OriginSettings",
    "PoolUse",
    "StreamedResponse",
    "StreamingBackend",
    "backend_authority",
    "backend_from_spec",
    "default_authority",
]

ECHO_AUTHORITY = "echo.internal"
PROCESSING_AUTHORITY = "processing.internal"
_STREAM_CHUNK = 64 * 1024


class BackendError(Exception):
    """The backend failed to produce a response; the gateway answers an inner 502."""

    status: ClassVar[int] = 502

    def __init__(self, message: str = "backend failed") -> None:
        super().__init__(message)


class BackendTimeout(BackendError):
    """The backend did not answer in time; the gateway answers an inner 504.

    A subclass of ``BackendError`` so one ``except`` catches both; map it first.
    """

    status: ClassVar[int] = 504

    def __init__(self, message: str = "backend timed out") -> None:
        super().__init__(message)


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


# --- header hygiene -----------------------------------------------------------------------

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


async def _collect(streamed: StreamedResponse, limit: int) -> bytes:
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


# --- echo ---------------------------------------------------------------------------------


class EchoBackend:
    """Answers 200 ``application/json`` describing the inner request.

    ``{"method", "scheme", "authority", "path", "headers": [[name, value], ...],
    "body_base64"}``; strings are the bytes decoded as latin-1, serialized compactly in that
    key order.
    """

    authority: ClassVar[str] = ECHO_AUTHORITY

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def handle(self, request: bhttp.Request) -> bhttp.Response:
        return bhttp.Response(200, _JSON_HEADERS, echo_body(request))


_JSON_HEADERS: Fields = ((b"content-type", b"application/json"),)
def echo_body(request: bhttp.Request) -> bytes:
    """The exact JSON body ``EchoBackend`` answers for ``request``.

    Byte for byte what ``json.dumps(document, separators=(",", ":"))`` gives, assembled
    directly: strings go through json's own escaping (``ensure_ascii``), the base64 text
    needs none. Less than half the CPU of building and encoding the dict.
    """
    headers = ",".join(
        [f"[{_json_str(name)},{_json_str(value)}]" for name, value in request.headers]
    )
    head = (
        f'{{"method":{_json_str(request.method)},"scheme":{_json_str(request.scheme)},'
        f'"authority":{_json_str(request.authority)},"path":{_json_str(request.path)},'
        f'"headers":[{headers}],"body_base64":"'
    )
    return head.encode("ascii") + base64.b64encode(request.content) + b'"}'


def _json_str(value: bytes) -> str:
    return encode_basestring_ascii(value.decode("latin-1"))


# --- plain callable -----------------------------------------------------------------------


class CallableBackend:
    """Wraps ``async def fn(request: bhttp.Request) -> bhttp.Response``.

    ``TimeoutError`` (including ``timeout`` seconds elapsing) becomes ``BackendTimeout``;
    any other exception becomes ``BackendError``.
    """

    def __init__(
        self,
        fn: Callable[[bhttp.Request], Awaitable[bhttp.Response]],
        *,
        timeout: float | None = None,
    ) -> None:
        self._fn = fn
        self._timeout = timeout

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def handle(self, request: bhttp.Request) -> bhttp.Response:
        try:
            async with asyncio.timeout(self._timeout):
                return await self._fn(request)
        except BackendError:
            raise
        except TimeoutError:
            raise BackendTimeout from None
        except Exception:
            raise BackendError from None


# --- HTTP forwarding (origin and in-process aiohttp app) ----------------------------------


@dataclass(frozen=True, slots=True)
class OriginSettings:
    """Timeouts and pool limits of the client that forwards inner requests."""

    connect_timeout: float = 5.0  # connection from the pool or a new one, seconds
    read_timeout: float = 30.0  # between reads from the origin, seconds
    max_connections: int = 100
    keepalive_timeout: float = 15.0
    max_response_bytes: int = 16 * 1024 * 1024  # bhttp.Limits.max_content_bytes default


def _checked_path(path: bytes) -> str:
    # The path is appended to a fixed base URL: only an origin-form target starting with "/"
    # keeps the inner request from re-pointing the URL ("@evil/" after the host is userinfo).
    # Visible ASCII only, no fragment (RFC 9112 §3.2.1 origin-form).
    if not path.startswith(b"/") or any(b < 0x21 or b > 0x7E or b == 0x23 for b in path):
        raise BackendError("backend cannot serve this request target")
    return path.decode("ascii")


class PoolUse(NamedTuple):
    """A backend connection pool's state: connections handed out, and the most it allows."""

    in_use: int
    limit: int


class _HttpForwarder:
    """Sends inner requests over one pooled aiohttp ClientSession to a fixed base URL."""

    def __init__(
        self,
        base_url: str,
        settings: OriginSettings,
        connector_factory: Callable[[], aiohttp.BaseConnector],
    ) -> None:
        self._base = base_url.rstrip("/")
        self._settings = settings
        self._connector_factory = connector_factory
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is not None:
            return
        settings = self._settings
        self._session = aiohttp.ClientSession(
            connector=self._connector_factory(),
            timeout=aiohttp.ClientTimeout(
                total=None, connect=settings.connect_timeout, sock_read=settings.read_timeout
            ),
            # Nothing may link requests: no cookies kept between them, no environment proxy.
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
        )

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise BackendError("backend not started")
        return self._session

    def pool_use(self) -> PoolUse:
        if self._session is None:
            return PoolUse(0, self._settings.max_connections)
        connector = self._session.connector
        if connector is None:
            return PoolUse(0, self._settings.max_connections)
        # aiohttp keeps the connections handed out in ``_acquired`` and offers no public
        # count; read at scrape time only, so nothing on the request path pays for it.
        acquired = getattr(connector, "_acquired", ())
        return PoolUse(len(acquired), connector.limit)

    async def handle(self, request: bhttp.Request, host: bytes) -> bhttp.Response:
        streamed = await self.stream(request, host)
        content = await _collect(streamed, self._settings.max_response_bytes)
        return bhttp.Response(status=streamed.status, headers=streamed.headers, content=content)

    async def stream(self, request: bhttp.Request, host: bytes) -> StreamedResponse:
        url = URL(self._base + _checked_path(request.path), encoded=True)
        if not request.method.isupper():
            # RFC 9110 §9.1: methods are case-sensitive, and aiohttp upper-cases them; refuse
            # rather than send another method than the client's.
            raise BackendError
        try:
            headers = _client_headers(request.headers, host)
            response = await self.session.request(
                request.method.decode("ascii"),
                url,
                headers=headers,
                data=request.content if request.content else None,
                allow_redirects=False,
            )
        except TimeoutError:
            raise BackendTimeout from None
        except (aiohttp.ClientError, OSError, ValueError, UnicodeError):
            raise BackendError from None
        return StreamedResponse(
            status=response.status,
            headers=strip_connection_fields(response.raw_headers),
            body=_response_chunks(response),
        )


def _client_headers(fields: bhttp.Fields, host: bytes) -> list[tuple[str, str]]:
    # aiohttp writes header lines UTF-8 encoded, so decoding as UTF-8 sends the exact bytes;
    # a value that is not UTF-8 cannot be sent exactly and fails (UnicodeDecodeError).
    sent = strip_connection_fields(fields, also=(b"host", b"content-length"))
    headers = [(name.decode("ascii"), value.decode("utf-8")) for name, value in sent]
    headers.append(("Host", host.decode("ascii")))
    return headers


async def _response_chunks(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    try:
        async for chunk in response.content.iter_chunked(_STREAM_CHUNK):
            yield chunk
    except TimeoutError:
        raise BackendTimeout from None
    except (aiohttp.ClientError, OSError):
        raise BackendError from None
    finally:
        response.release()


def _parse_origin(origin_url: str) -> URL:
    url = URL(origin_url)
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError("origin URL must be http:// or https:// with a host")
    if url.user is not None or url.password is not None or url.query_string or url.fragment:
        raise ValueError("origin URL must not carry userinfo, a query or a fragment")
    return url


class HttpOriginBackend:
    """Forwards inner requests to one HTTP(S) origin through a pooled client.

    No redirect is followed, nothing is decompressed, no cookie is kept, and
    connection-specific fields are removed both ways (RFC 9110 §7.6.1). The inner path is
    appended to the origin URL's path. ``Host`` is the origin's authority, or the inner
    authority when ``forward_authority`` is set.
    """

    def __init__(
        self,
        origin_url: str,
        settings: OriginSettings = OriginSettings(),
        *,
        ssl: ssl_module.SSLContext | bool = True,
        forward_authority: bool = False,
    ) -> None:
        url = _parse_origin(origin_url)
        self.authority: str | None = url.raw_authority
        self._origin_host = url.raw_authority.encode("ascii")
        self._forward_authority = forward_authority
        self._settings = settings

        def connector() -> aiohttp.BaseConnector:
            return aiohttp.TCPConnector(
                limit=settings.max_connections,
                keepalive_timeout=settings.keepalive_timeout,
                ssl=ssl,
            )

        self._forwarder = _HttpForwarder(str(url).rstrip("/"), settings, connector)

    @property
    def settings(self) -> OriginSettings:
        return self._settings

    async def start(self) -> None:
        await self._forwarder.start()

    async def close(self) -> None:
        await self._forwarder.close()

    def _host(self, request: bhttp.Request) -> bytes:
        if self._forward_authority and request.authority:
            return request.authority
        return self._origin_host

    async def handle(self, request: bhttp.Request) -> bhttp.Response:
        return await self._forwarder.handle(request, self._host(request))

    async def stream(self, request: bhttp.Request) -> StreamedResponse:
        return await self._forwarder.stream(request, self._host(request))

    def pool_use(self) -> PoolUse:
        """Connections of the pool in use now, and its limit (0: unlimited)."""
        return self._forwarder.pool_use()


class _FixedEventFilter(logging.Filter):
    """Reduces a record to a fixed event and the error type: the messages and tracebacks of
    an in-process app's failures can carry request content."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        record.msg, record.args = "backend_app_error", ()
        record.error = type(error).__name__ if error is not None else None
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


_app_server_log = logging.getLogger("gateway.backend_app")
_app_server_log.addFilter(_FixedEventFilter())


class AiohttpAppBackend:
    """Serves an aiohttp ``Application`` in-process over a private unix socket.

    ``start()`` runs the app on a socket in a fresh 0700 temporary directory (only this user
    can connect; no TCP port another local user could reach around the gateway's policy) and
    opens a pooled client to it. The app sees ``Host`` = the inner authority; its
    ``request.scheme`` is ``http`` and ``request.remote`` is empty. No access log is written;
    the app server's error log carries a fixed event and the error type only.
    ``authority``, if given, is the one inner requests name to reach the app.
    """

    def __init__(
        self,
        app: web.Application,
        settings: OriginSettings = OriginSettings(),
        *,
        authority: str | None = None,
    ) -> None:
        self.authority = authority
        self._app = app
        self._settings = settings
        self._runner: web.AppRunner | None = None
        self._directory: str | None = None
        self._forwarder: _HttpForwarder | None = None

    async def start(self) -> None:
        if self._runner is not None:
            return
        directory = tempfile.mkdtemp(prefix="ohttp-app-")
        socket_path = os.path.join(directory, "app.sock")
        runner = web.AppRunner(
            self._app, access_log=None, handle_signals=False, logger=_app_server_log
        )
        await runner.setup()
        await web.UnixSite(runner, socket_path).start()
        self._runner, self._directory = runner, directory
        settings = self._settings

        def connector() -> aiohttp.BaseConnector:
            return aiohttp.UnixConnector(
                socket_path,
                limit=settings.max_connections,
                keepalive_timeout=settings.keepalive_timeout,
            )

        # The URL host only names the pool; Host is set from the inner authority.
        self._forwarder = _HttpForwarder("http://app.internal", settings, connector)
        await self._forwarder.start()

    async def close(self) -> None:
        forwarder, self._forwarder = self._forwarder, None
        runner, self._runner = self._runner, None
        directory, self._directory = self._directory, None
        if forwarder is not None:
            await forwarder.close()
        if runner is not None:
            await runner.cleanup()
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)

    def _started(self) -> _HttpForwarder:
        if self._forwarder is None:
            raise BackendError("backend not started")
        return self._forwarder

    async def handle(self, request: bhttp.Request) -> bhttp.Response:
        return await self._started().handle(request, request.authority or b"app.internal")

    async def stream(self, request: bhttp.Request) -> StreamedResponse:
        return await self._started().stream(request, request.authority or b"app.internal")


# --- ASGI ---------------------------------------------------------------------------------

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
                content = await _collect(streamed, self._max_response_bytes)
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


# --- from the command line ----------------------------------------------------------------


def backend_from_spec(spec: str, settings: OriginSettings = OriginSettings()) -> Backend:
    """``echo``, ``processing`` or an ``http(s)://`` origin URL, as given to ``--backend``;
    ``settings`` apply to the client of the last two."""
    if spec == "echo":
        return EchoBackend()
    if spec == "processing":
        from gateway import processing  # lazily: the processing app is heavier

        return AiohttpAppBackend(
            processing.create_app(), settings, authority=PROCESSING_AUTHORITY
        )
    if spec.startswith(("http://", "https://")):
        return HttpOriginBackend(spec, settings)
    raise ValueError("backend must be 'echo', 'processing' or an http:// or https:// URL")


def backend_authority(backend: Backend) -> str | None:
    """The authority a backend answers under, if it has one (the default target allowlist)."""
    authority = getattr(backend, "authority", None)
    return authority if isinstance(authority, str) else None


def default_authority(spec: str) -> str:
    """The authority inner requests name for a backend spec: the default target allowlist."""
    if spec == "echo":
        return ECHO_AUTHORITY
    if spec == "processing":
        return PROCESSING_AUTHORITY
    if spec.startswith(("http://", "https://")):
        return _parse_origin(spec).raw_authority
    raise ValueError("backend must be 'echo', 'processing' or an http:// or https:// URL")
