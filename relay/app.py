"""The Oblivious Relay Resource (RFC 9458 §6.2) as an aiohttp application.

The relay forwards ciphertext to a fixed gateway and passes on nothing that identifies the
client: a fresh minimal header set goes upstream and comes back downstream, bodies stream
byte for byte, nothing is retried, decompressed or logged with a client address.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import os
import re
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial

from aiohttp import web
from multidict import CIMultiDict

from ohttp.aio.guard import ConnectionTracker
from ohttp.aio.serving import Listening, omit_server_header, server_tls_context, serving
from ohttp.chunked import CHUNKED_REQUEST_MEDIA_TYPE, CHUNKED_RESPONSE_MEDIA_TYPE
from ohttp.encapsulation import REQUEST_MEDIA_TYPE, RESPONSE_MEDIA_TYPE
from ohttp.errors import KeyConfigError
from ohttp.keys import KEYS_MEDIA_TYPE, decode_key_configs
from relay.config import RelayConfig
from relay.metrics import Direction, RelayMetrics, Result, create_metrics_app
from relay.upstream import UpstreamError, UpstreamPool, UpstreamResponse, UpstreamTimeout

REQUEST_TYPES = frozenset({REQUEST_MEDIA_TYPE, CHUNKED_REQUEST_MEDIA_TYPE})
RESPONSE_TYPES = frozenset({RESPONSE_MEDIA_TYPE, CHUNKED_RESPONSE_MEDIA_TYPE})
KEYS_TYPE = KEYS_MEDIA_TYPE
KEYS_PATH = "ohttp-keys"
MAX_KEYS_BYTES = 64 * 1024
_ACCEPT_KEYS = b"accept: application/ohttp-keys\r\n"
SMALL_BODY = 64 * 1024  # bodies up to this size are read whole and sent in one write
# Only these gateway response fields reach the client; Content-Length is set from framing.
DOWNSTREAM_FIELDS = frozenset({"content-type", "cache-control", "retry-after", "incremental"})
_SF_BOOLEAN = frozenset({"?0", "?1"})  # RFC 8941 §3.3.6, the Incremental field's type
_DELTA_SECONDS = re.compile(r"[0-9]{1,6}")
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?([0-9]{1,10})\"?\s*(?:,|$)", re.IGNORECASE)


class ClientBodyError(Exception):
    """The client's body could not be relayed; ``status`` is what the client gets."""

    def __init__(self, status: int, result: Result) -> None:
        super().__init__("client body not relayed")
        self.status = status
        self.result = result


# --------------------------------------------------------------------------- key mirror


class KeyMirror:
    """The gateway's application/ohttp-keys, fetched by the relay and served identically to all.

    Clients get keys without revealing themselves to the gateway, and every client in a cache
    window sees the same bytes (key consistency, RFC 9458 §7, RFC 9540 §7).
    """

    def __init__(self, pool: UpstreamPool, config: RelayConfig) -> None:
        self._pool = pool
        self._config = config
        self._lock = asyncio.Lock()
        self._body: bytes | None = None
        self._expires = 0.0

    def cached(self, now: float) -> tuple[bytes, int] | None:
        if self._body is None or now >= self._expires:
            return None
        return self._body, int(self._expires - now)

    async def get(self) -> tuple[bytes, int]:
        """The cached keys and their remaining lifetime; refetches (once, shared) when stale."""
        found = self.cached(time.monotonic())
        if found is not None:
            return found
        async with self._lock:
            found = self.cached(time.monotonic())
            if found is not None:
                return found
            await self._fetch()
        found = self.cached(time.monotonic())
        if found is None:
            raise UpstreamError("keys unavailable")
        return found

    async def refresh(self) -> float:
        """Fetch now; returns the seconds until the next scheduled refresh."""
        async with self._lock:
            try:
                ttl = await self._fetch()
            except UpstreamError:
                return 5.0
        return max(1.0, ttl * 0.8)

    async def refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(await self.refresh())

    async def _fetch(self) -> float:
        response = await self._pool.request("GET", _ACCEPT_KEYS, b"", chunked=False)
        try:
            media_type = _media_type(response.head.get("content-type"))
            if response.status != 200 or media_type != KEYS_TYPE:
                raise UpstreamError("gateway did not serve keys")
            body = await response.read(MAX_KEYS_BYTES)
        finally:
            response.abort()
        _validate_keys(body)
        ttl = self._ttl(response.head.get("cache-control"))
        self._body, self._expires = body, time.monotonic() + ttl
        return ttl

    def _ttl(self, cache_control: str | None) -> float:
        match = _MAX_AGE.search(cache_control or "")
        ttl = float(match.group(1)) if match else self._config.key_cache_default_ttl
        return min(max(ttl, self._config.key_cache_min_ttl), self._config.key_cache_max_ttl)


def _validate_keys(body: bytes) -> None:
    """Reject a key list that does not decode (RFC 9458 §3.2): it would be rejected whole."""
    try:
        configs = decode_key_configs(body)
    except KeyConfigError:
        raise UpstreamError("gateway served an invalid key list") from None
    if not configs:
        raise UpstreamError("gateway served an empty key list")


# --------------------------------------------------------------------------- rate limit


class RateLimiter:
    """Fixed-window request count per client address, the same rule for every client.

    Addresses are held only as keyed hashes (a random per-process key), only for the current
    window: the whole table is dropped when the window ends. Nothing is logged.
    """

    def __init__(self, limit: int, window: float) -> None:
        self._limit = limit
        self._window = window
        self._secret = os.urandom(16)
        self._counts: dict[bytes, int] = {}
        self._window_start = time.monotonic()

    def check(self, address: str | None) -> int | None:
        """None if allowed, else the seconds until the window ends (for Retry-After)."""
        now = time.monotonic()
        if now - self._window_start >= self._window:
            self._counts.clear()
            self._window_start = now
        key = hashlib.blake2b((address or "").encode(), key=self._secret, digest_size=16).digest()
        count = self._counts.get(key, 0) + 1
        self._counts[key] = count
        if count <= self._limit:
            return None
        return max(1, math.ceil(self._window - (now - self._window_start)))


# --------------------------------------------------------------------------- app state


@dataclass
class RelayState:
    config: RelayConfig
    metrics: RelayMetrics
    tracker: ConnectionTracker
    limiter: RateLimiter | None
    pools: dict[str, UpstreamPool] = field(default_factory=dict)
    mirrors: dict[str, KeyMirror] = field(default_factory=dict)
    in_flight: int = 0


STATE_KEY = web.AppKey("relay_state", RelayState)


def create_app(config: RelayConfig, metrics: RelayMetrics | None = None) -> web.Application:
    """The relay application: routes for each configured gateway, /healthz, and its resources."""
    metrics = metrics or RelayMetrics()
    # The tracker feeds the open-connections gauge.
    tracker = ConnectionTracker(config.max_connections, config.header_timeout,
                                partial(setattr, metrics, "connections"))
    limiter = None
    if config.rate_limit:
        limiter = RateLimiter(config.rate_limit, config.rate_limit_window)
    # Never decompress a client body (RFC 9458 §6.2: bytes out == bytes in).
    app = web.Application(handler_args={"auto_decompress": False})
    state = app[STATE_KEY] = RelayState(config, metrics, tracker, limiter)
    metrics.in_flight = lambda: state.in_flight
    app.cleanup_ctx.append(_upstream_resources)
    omit_server_header(app)  # the relay passes on no detail of itself or the gateway
    # Each path's own method first, then any other method on it (405), then anything else (404);
    # a route added right after another on the same path joins that resource.
    routes: list[tuple[str, str, StateHandler]] = [("GET", "/healthz", _healthz)]
    for gateway in config.gateways:
        base = f"/{gateway.name}" if gateway.name else ""
        routes.append(("POST", base or "/", _forward_handler(gateway.name)))
        routes.append(("GET", f"{base}/{KEYS_PATH}", _keys_handler(gateway.name)))
    for method, path, handler in routes:
        app.router.add_route(method, path, _guarded(state, handler))
        app.router.add_route("*", path, _guarded(state, _not_allowed(method)))
    app.router.add_route("*", "/{tail:.*}", _guarded(state, _not_found))
    return app


def upstream_ssl_context(config: RelayConfig) -> ssl.SSLContext:
    """Verifying TLS context for the gateway hop, with the optional CA file and client cert."""
    context = ssl.create_default_context(cafile=config.upstream_ca_file)
    if config.client_cert and config.client_key:
        context.load_cert_chain(config.client_cert, config.client_key)
    return context


async def _upstream_resources(app: web.Application) -> AsyncIterator[None]:
    state = app[STATE_KEY]
    config = state.config
    needs_tls = any(g.tls for g in config.gateways)
    context = upstream_ssl_context(config) if needs_tls else None
    for gateway in config.gateways:
        pool = UpstreamPool(
            gateway, ssl_context=context, connect_timeout=config.connect_timeout,
            read_timeout=config.upstream_timeout, max_idle=config.upstream_pool_size,
            idle_timeout=config.upstream_idle_timeout,
        )
        state.pools[gateway.name] = pool
        state.mirrors[gateway.name] = KeyMirror(pool, config)
    refreshers = [asyncio.create_task(m.refresh_forever()) for m in state.mirrors.values()]
    yield
    for task in refreshers:
        task.cancel()
    await asyncio.gather(*refreshers, return_exceptions=True)
    for pool in state.pools.values():
        pool.close()


# --------------------------------------------------------------------------- handlers


def _plain(status: int, text: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, text=text + "\n", headers=headers)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
StateHandler = Callable[[web.Request, "RelayState"], Awaitable[web.StreamResponse]]


def _guarded(state: RelayState, handler: StateHandler) -> Handler:
    """Every route's wrapper (instead of a middleware, which costs two more calls per request):
    suspends the connection's header deadline while the request is handled (the body deadline
    applies then) and refuses absolute-form targets."""

    async def handle(request: web.Request) -> web.StreamResponse:
        guard = state.tracker.guard_of(request.protocol)
        if guard is not None:
            guard.request_started()
        try:
            if not _origin_form(request.raw_path):
                # An absolute-form target names a host: the relay is no forward proxy, and a
                # client never chooses where its request goes (checklist R9).
                return await _not_found(request, state)
            return await handler(request, state)
        finally:
            if guard is not None:
                guard.request_ended()

    return handle


async def _not_found(_: web.Request, state: RelayState) -> web.StreamResponse:
    state.metrics.count(Result.NOT_FOUND)
    return _plain(404, "Not Found")


def _not_allowed(allow: str) -> StateHandler:
    async def handle(_: web.Request, state: RelayState) -> web.StreamResponse:
        state.metrics.count(Result.METHOD_NOT_ALLOWED)
        return _plain(405, "Method Not Allowed", {"Allow": allow})

    return handle


def _origin_form(target: str) -> bool:
    return target.startswith("/") and not target.startswith("//")


async def _healthz(_: web.Request, __: RelayState) -> web.StreamResponse:
    return _plain(200, "ok")


def _keys_handler(name: str) -> StateHandler:
    async def handle(_: web.Request, state: RelayState) -> web.StreamResponse:
        try:
            body, remaining = await state.mirrors[name].get()
        except UpstreamTimeout:
            state.metrics.count(Result.KEYS_UNAVAILABLE)
            return _plain(504, "gateway timeout")
        except UpstreamError:
            state.metrics.count(Result.KEYS_UNAVAILABLE)
            return _plain(502, "keys unavailable")
        state.metrics.count(Result.KEYS_SERVED)
        # The same bytes for every client; only the remaining lifetime depends on time.
        return web.Response(body=body, headers={
            "Content-Type": KEYS_TYPE, "Cache-Control": f"max-age={remaining}",
        })

    return handle


def _forward_handler(name: str) -> StateHandler:
    async def handle(request: web.Request, state: RelayState) -> web.StreamResponse:
        length = request.content_length
        admitted = _admission(request, state, length)
        if not isinstance(admitted, str):
            return admitted
        state.in_flight += 1
        try:
            return await _forward(request, state, state.pools[name], admitted, length)
        finally:
            state.in_flight -= 1

    return handle


def _media_type(value: str | None) -> str | None:
    return value.strip().lower() if value is not None else None


def _admission(request: web.Request, state: RelayState,
               length: int | None) -> web.StreamResponse | str:
    """Checks that need no body: rate limit, in-flight cap, media type, size (RFC 9458 §5).

    Returns the rejection, or the request's media type (one of REQUEST_TYPES).
    """
    if state.limiter is not None:
        wait = state.limiter.check(request.remote)
        if wait is not None:
            state.metrics.count(Result.RATE_LIMITED)
            return _plain(429, "too many requests", {"Retry-After": str(wait)})
    if state.in_flight >= state.config.max_in_flight:
        state.metrics.count(Result.OVERLOADED)
        return _plain(503, "overloaded", {"Retry-After": "1"})
    content_types = request.headers.getall("Content-Type", ())
    # Exact match, no parameters: RFC 9458 §9 registers the types without parameters.
    media_type = _media_type(content_types[0]) if len(content_types) == 1 else None
    if media_type not in REQUEST_TYPES:
        state.metrics.count(Result.UNSUPPORTED_MEDIA_TYPE)
        return _plain(415, "unsupported media type")
    if length is not None and length > state.config.max_body_bytes:
        state.metrics.count(Result.TOO_LARGE)
        return _plain(413, "request too large", {"Connection": "close"})
    if length == 0 or (length is None and not request.body_exists):
        state.metrics.count(Result.BAD_REQUEST)
        return _plain(400, "empty request")
    assert media_type is not None
    return media_type


# The only client-derived values that go upstream, as ready header lines (RFC 9458 §6.2).
_CONTENT_TYPE_LINES = {t: f"content-type: {t}\r\n".encode() for t in REQUEST_TYPES}
_INCREMENTAL_LINES = {v: f"incremental: {v}\r\n".encode() for v in _SF_BOOLEAN}


def _upstream_headers(request: web.Request, media_type: str, config: RelayConfig) -> bytes:
    """A fresh minimal set (RFC 9458 §6.2): nothing the client sent except these.

    Content-Length or Transfer-Encoding is added by the upstream client from the framing.
    """
    lines = _CONTENT_TYPE_LINES[media_type]
    incremental = request.headers.getall("Incremental", ())
    if len(incremental) == 1:
        lines += _INCREMENTAL_LINES.get(incremental[0].strip(), b"")
    if config.gateway_token:
        lines += f"authorization: Bearer {config.gateway_token}\r\n".encode("latin-1")
    return lines


async def _read_some(request: web.Request, deadline: float) -> bytes:
    remaining = deadline - time.monotonic()
    try:
        async with asyncio.timeout(max(remaining, 0.0)):
            return await request.content.readany()
    except TimeoutError:
        raise ClientBodyError(408, Result.CLIENT_TIMEOUT) from None
    except Exception:
        raise ClientBodyError(400, Result.CLIENT_ABORTED) from None


async def _stream_body(request: web.Request, first: bytes, state: RelayState,
                       deadline: float) -> AsyncIterator[bytes]:
    """The client's body as it arrives, within the size limit and the body deadline."""
    total = len(first)
    yield first
    while piece := await _read_some(request, deadline):
        total += len(piece)
        if total > state.config.max_body_bytes:
            raise ClientBodyError(413, Result.TOO_LARGE)
        yield piece
        state.metrics.add_bytes(Direction.UPSTREAM, len(piece))


async def _read_small(request: web.Request, length: int, deadline: float) -> bytes:
    # Usually the whole small body arrived with the head: take it without waiting.
    body = request.content.read_nowait(-1)
    if len(body) >= length:
        return body
    collected = bytearray(body)
    while len(collected) < length:
        piece = await _read_some(request, deadline)
        if not piece:
            raise ClientBodyError(400, Result.CLIENT_ABORTED)
        collected += piece
    return bytes(collected)


async def _forward(request: web.Request, state: RelayState, pool: UpstreamPool,
                   media_type: str, length: int | None) -> web.StreamResponse:
    started = time.monotonic()
    deadline = started + state.config.body_timeout
    headers = _upstream_headers(request, media_type, state.config)
    try:
        if length is not None and length <= SMALL_BODY:
            body = await _read_small(request, length, deadline)
            state.metrics.add_bytes(Direction.UPSTREAM, len(body))
            response = await pool.request("POST", headers, body, chunked=False)
        else:
            first = await _read_some(request, deadline)
            if not first:
                state.metrics.count(Result.BAD_REQUEST)
                return _plain(400, "empty request")
            state.metrics.add_bytes(Direction.UPSTREAM, len(first))
            if length is not None:
                headers += b"content-length: %d\r\n" % length
            stream = _stream_body(request, first, state, deadline)
            response = await pool.request("POST", headers, stream, chunked=length is None)
    except ClientBodyError as exc:
        state.metrics.count(exc.result)
        return _plain(exc.status, "request not relayed", {"Connection": "close"})
    except UpstreamTimeout:
        state.metrics.count(Result.UPSTREAM_TIMEOUT)
        return _plain(504, "gateway timeout")
    except UpstreamError:
        state.metrics.count(Result.UPSTREAM_UNAVAILABLE)
        return _plain(502, "bad gateway")
    state.metrics.observe_latency(time.monotonic() - started)
    try:
        return await _respond(request, state, response)
    finally:
        response.abort()  # no-op when the body was read completely and the connection pooled


async def _respond(request: web.Request, state: RelayState,
                   upstream: UpstreamResponse) -> web.StreamResponse:
    head = upstream.head
    status = head.status
    if 200 <= status < 300 and _media_type(head.get("content-type")) not in RESPONSE_TYPES:
        status = 502
    if status == 503:
        # Load shedding is worth passing on, with the relay's own body and a checked Retry-After.
        state.metrics.count(Result.GATEWAY_SERVER_ERROR)
        retry = (head.get("retry-after") or "").strip()
        valid = _DELTA_SECONDS.fullmatch(retry) is not None
        return _plain(503, "gateway unavailable", {"Retry-After": retry} if valid else None)
    if not (200 <= status < 300 or 400 <= status < 500):
        # 3xx (never followed), 5xx and malformed 2xx: no gateway detail reaches the client.
        state.metrics.count(Result.GATEWAY_SERVER_ERROR)
        return _plain(502, "bad gateway")
    headers = CIMultiDict((n, v) for n, v in head.headers if n in DOWNSTREAM_FIELDS)
    if head.content_length is not None and head.content_length <= SMALL_BODY:
        return await _respond_small(state, upstream, status, headers)
    response = web.StreamResponse(status=status, headers=headers)
    if head.content_length is not None:
        response.content_length = head.content_length
    await response.prepare(request)
    if not await _copy_body(request, state, upstream, response):
        return response
    state.metrics.count(Result.FORWARDED if status < 300 else Result.GATEWAY_CLIENT_ERROR)
    await response.write_eof()
    return response


async def _respond_small(state: RelayState, upstream: UpstreamResponse, status: int,
                         headers: CIMultiDict[str]) -> web.StreamResponse:
    """A small fixed-length answer is sent in one write; it has no chunks to deliver early."""
    try:
        body = upstream.read_complete(SMALL_BODY)
        if body is None:
            body = await upstream.read(SMALL_BODY)
    except UpstreamError as exc:
        timed_out = isinstance(exc, UpstreamTimeout)
        state.metrics.count(Result.UPSTREAM_TIMEOUT if timed_out else Result.UPSTREAM_UNAVAILABLE)
        return _plain(504 if timed_out else 502, "gateway timeout" if timed_out else "bad gateway")
    state.metrics.add_bytes(Direction.DOWNSTREAM, len(body))
    state.metrics.count(Result.FORWARDED if status < 300 else Result.GATEWAY_CLIENT_ERROR)
    return web.Response(status=status, body=body, headers=headers)


async def _copy_body(request: web.Request, state: RelayState, upstream: UpstreamResponse,
                     response: web.StreamResponse) -> bool:
    """Stream the gateway's body; on failure close the client connection so it sees truncation."""
    try:
        async for piece in upstream.chunks():
            await response.write(piece)  # each piece is written (flushed) as it arrives
            state.metrics.add_bytes(Direction.DOWNSTREAM, len(piece))
    except UpstreamError as exc:
        timed_out = isinstance(exc, UpstreamTimeout)
        state.metrics.count(Result.UPSTREAM_TIMEOUT if timed_out else Result.UPSTREAM_UNAVAILABLE)
    except (ConnectionError, asyncio.CancelledError):
        state.metrics.count(Result.CLIENT_ABORTED)
        upstream.abort()
        raise
    else:
        return True
    upstream.abort()
    if request.transport is not None:
        request.transport.close()  # no final chunk: the client sees an incomplete response
    return False


# --------------------------------------------------------------------------- serving


@contextlib.asynccontextmanager
async def serve(config: RelayConfig, *, app: web.Application | None = None,
                reuse_port: bool = False) -> AsyncIterator[Listening]:
    """Run the relay (and its metrics listener) until the block ends; port 0 picks a free one."""
    app = app or create_app(config)
    state = app[STATE_KEY]
    metrics = None
    if config.metrics_host is not None and config.metrics_port is not None:
        metrics = (create_metrics_app(state.metrics), (config.metrics_host, config.metrics_port))
    tls = server_tls_context(config.tls_cert, config.tls_key)
    async with serving(app, (config.listen_host, config.listen_port), state.tracker, tls=tls,
                       reuse_port=reuse_port, metrics=metrics) as listening:
        yield listening
