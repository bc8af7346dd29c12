"""The Oblivious Relay Resource (RFC 9458 §6.2) as an aiohttp application: routes and resources.

The relay forwards ciphertext to a fixed gateway and passes on nothing that identifies the
client: a fresh minimal header set goes upstream and comes back downstream, bodies stream
byte for byte, nothing is retried, decompressed or logged with a client address.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from functools import partial

from aiohttp import web
from multidict import CIMultiDict

from ohttp.aio.guard import ConnectionTracker, client_gone, send_and_close, write_within
from ohttp.aio.readiness import readiness_of, remembered
from ohttp.aio.serving import omit_server_header
from ohttp.aio.store import open_store
from relay.config import RelayConfig
from relay.exchange import Answer
from relay.keymirror import KeyMirror
from relay.logmirror import LOG_MIRROR, LogMirror, log_mirror_context
from relay.metrics import RelayMetrics
from relay.ratelimit import RateLimiter
from relay.routes import RouteHandler, RouteTable, answer, not_allowed, not_found, relay_routes
from relay.state import STATE_KEY, RelayState
from relay.upstream import UpstreamPool

__all__ = ["ROUTES", "create_app", "upstream_ssl_context", "web_response"]

ROUTES = web.AppKey("relay_routes", RouteTable)


def create_app(config: RelayConfig, metrics: RelayMetrics | None = None) -> web.Application:
    """The relay application: routes for each configured gateway, /healthz, and its resources."""
    metrics = metrics or RelayMetrics()
    # The tracker feeds the open-connections gauge.
    tracker = ConnectionTracker(config.max_connections, config.header_timeout,
                                partial(setattr, metrics, "connections"))
    limiter = None
    if config.rate_limit:
        limiter = RateLimiter(open_store(config.state), config.rate_limit, config.rate_limit_window)
    # Never decompress a client body (RFC 9458 §6.2: bytes out == bytes in).
    app = web.Application(handler_args={"auto_decompress": False})
    state = app[STATE_KEY] = RelayState(config, metrics, tracker, limiter)
    metrics.in_flight = lambda: state.in_flight
    app.cleanup_ctx.append(_upstream_resources)
    omit_server_header(app)  # the relay passes on no detail of itself or the gateway
    checks = readiness_of(app)  # per-gateway checks come with the mirrors (_upstream_resources)
    if limiter is not None:  # a relay that cannot count requests refuses them: not ready
        checks.add("state", remembered(limiter.ready))
    log_mirror = None
    if config.log_mirror is not None:  # the key transparency log, mirrored like the keys
        log_mirror = app[LOG_MIRROR] = LogMirror(config.log_mirror, config.upstream_timeout)
        app.cleanup_ctx.append(log_mirror_context)
    routes = relay_routes(config, checks, log_mirror)
    app[ROUTES] = RouteTable(routes)  # the same routes on the serving engine (relay.engine)
    # Each path's own method first, then any other method on it (405), then anything else (404);
    # a route added right after another on the same path joins that resource.
    for route in routes:
        path = route.path + "{rest:.+}" if route.prefix else route.path
        if route.method == "GET":  # and HEAD
            app.router.add_get(path, _guarded(state, route.handler))
        else:
            app.router.add_route(route.method, path, _guarded(state, route.handler))
        app.router.add_route("*", path, _guarded(state, not_allowed(route.method)))
    app.router.add_route("*", "/{tail:.*}", _guarded(state, not_found))
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
        mirror = state.mirrors[gateway.name] = KeyMirror(pool, config)
        _add_checks(app, gateway.name, mirror)
    refreshers = [asyncio.create_task(m.refresh_forever()) for m in state.mirrors.values()]
    yield
    for task in refreshers:
        task.cancel()
    await asyncio.gather(*refreshers, return_exceptions=True)
    for pool in state.pools.values():
        pool.close()
    if state.limiter is not None:
        await state.limiter.close()


def _add_checks(app: web.Application, name: str, mirror: KeyMirror) -> None:
    """Readiness per gateway: it serves a valid key list now, and the mirror holds keys."""
    suffix = f":{name}" if name else ""
    checks = readiness_of(app)
    checks.add(f"gateway{suffix}", remembered(mirror.probe))

    async def keys() -> bool:
        return mirror.cached(time.monotonic()) is not None

    checks.add(f"keys{suffix}", keys)


def _guarded(
    state: RelayState, handler: RouteHandler
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Every route's wrapper on aiohttp (instead of a middleware, which costs two more calls
    per request): suspends the connection's header deadline while the request is handled (the
    body deadline applies then) and answers through ``relay.routes.answer``."""

    async def handle(request: web.Request) -> web.StreamResponse:
        guard = state.tracker.guard_of(request.protocol)
        if guard is not None:
            guard.request_started()
        try:
            client = _AiohttpRequest(request, state.config.write_timeout)
            reply = await answer(handler, client, state, request.raw_path)
            if reply is None:  # streamed through the client
                assert client.response is not None
                return client.response
            response = web_response(reply)
            if reply.close:
                await send_and_close(request, response)  # the header alone does not end it
            return response
        except ConnectionError as exc:  # the client left: a normal event, logged as one
            return client_gone(request, exc)
        finally:
            if guard is not None:
                guard.request_ended()

    return handle


class _AiohttpRequest:
    """An aiohttp request as the relay's ``ClientRequest``."""

    __slots__ = ("_request", "_write_timeout", "response")

    def __init__(self, request: web.Request, write_timeout: float) -> None:
        self._request = request
        self._write_timeout = write_timeout
        self.response: web.StreamResponse | None = None

    @property
    def path(self) -> str:
        return self._request.path

    @property
    def content_length(self) -> int | None:
        return self._request.content_length

    @property
    def body_exists(self) -> bool:
        return self._request.body_exists

    @property
    def peer(self) -> str | None:
        return self._request.remote

    def fields(self, name: str) -> list[str]:
        return self._request.headers.getall(name, [])

    def read_nowait(self) -> bytes:
        return self._request.content.read_nowait(-1)

    async def readany(self) -> bytes:
        return await self._request.content.readany()

    async def start(self, status: int, headers: Sequence[tuple[str, str]],
                    length: int | None) -> None:
        response = self.response = web.StreamResponse(status=status, headers=CIMultiDict(headers))
        if length is not None:
            response.content_length = length
        await response.prepare(self._request)

    async def write(self, piece: bytes) -> None:
        assert self.response is not None
        await write_within(self._request, self.response, piece, self._write_timeout)

    async def end(self) -> None:
        assert self.response is not None
        await self.response.write_eof()

    def truncate(self) -> None:
        if self._request.transport is not None:
            self._request.transport.close()


def web_response(answer: Answer) -> web.Response:
    """``answer`` (``relay.errors.error_answer``'s, a route's) as an aiohttp response."""
    headers = CIMultiDict(answer.headers)
    if answer.close:
        headers["Connection"] = "close"
    response = web.Response(status=answer.status, body=answer.body, headers=headers)
    if answer.close:
        response.force_close()  # the header alone does not end an aiohttp connection
    return response
