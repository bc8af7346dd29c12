"""The Oblivious Relay Resource (RFC 9458 §6.2) as an aiohttp application: routes and resources.

The relay forwards ciphertext to a fixed gateway and passes on nothing that identifies the
client: a fresh minimal header set goes upstream and comes back downstream, bodies stream
byte for byte, nothing is retried, decompressed or logged with a client address.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator
from functools import partial

from aiohttp import web

from ohttp.aio.guard import ConnectionTracker, client_gone, send_and_close
from ohttp.aio.readiness import healthz, readiness_of, readyz, remembered
from ohttp.aio.serving import omit_server_header
from ohttp.aio.store import open_store
from ohttp.codings import only_chunked_transfer
from ohttp.keys import KEYS_MEDIA_TYPE
from relay.config import RelayConfig
from relay.errors import (
    MethodNotAllowed,
    NotFound,
    RelayError,
    TransferCodingNotImplemented,
    to_response,
)
from relay.events import log_failure
from relay.forward import forward_handler
from relay.keymirror import KEYS_PATH, KeyMirror
from relay.logmirror import LOG_MIRROR, LogMirror, log_mirror_context, log_routes
from relay.metrics import RelayMetrics, Result
from relay.ratelimit import RateLimiter
from relay.state import STATE_KEY, Handler, RelayState, StateHandler
from relay.upstream import UpstreamPool


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
    # Each path's own method first, then any other method on it (405), then anything else (404);
    # a route added right after another on the same path joins that resource.
    checks = readiness_of(app)  # per-gateway checks come with the mirrors (_upstream_resources)
    if limiter is not None:  # a relay that cannot count requests refuses them: not ready
        checks.add("state", remembered(limiter.ready))
    routes: list[tuple[str, str, StateHandler]] = [
        ("GET", "/healthz", _plain_handler(healthz)), ("GET", "/readyz", _plain_handler(readyz)),
    ]
    for gateway in config.gateways:
        base = f"/{gateway.name}" if gateway.name else ""
        routes.append(("POST", base or "/", forward_handler(gateway.name)))
        routes.append(("GET", f"{base}/{KEYS_PATH}", _keys_handler(gateway.name)))
    if config.log_mirror is not None:  # the key transparency log, mirrored like the keys
        app[LOG_MIRROR] = LogMirror(config.log_mirror, config.upstream_timeout)
        app.cleanup_ctx.append(log_mirror_context)
        routes += log_routes()
    for method, path, handler in routes:
        if method == "GET":  # and HEAD
            app.router.add_get(path, _guarded(state, handler))
        else:
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


def _plain_handler(handler: Handler) -> StateHandler:
    async def handle(request: web.Request, _: RelayState) -> web.StreamResponse:
        return await handler(request)

    return handle


def _guarded(state: RelayState, handler: StateHandler) -> Handler:
    """Every route's wrapper (instead of a middleware, which costs two more calls per request):
    suspends the connection's header deadline while the request is handled (the body deadline
    applies then), refuses absolute-form targets and answers every RelayError the handler
    raises through the one mapping, ``relay.errors.to_response``."""

    async def handle(request: web.Request) -> web.StreamResponse:
        guard = state.tracker.guard_of(request.protocol)
        if guard is not None:
            guard.request_started()
        try:
            if not _origin_form(request.raw_path):
                # An absolute-form target names a host: the relay is no forward proxy, and a
                # client never chooses where its request goes (checklist R9).
                raise NotFound("absolute-form target")
            if transfer_codings := request.headers.getall("Transfer-Encoding", ()):
                _check_transfer_coding(transfer_codings)
            return await handler(request, state)
        except ConnectionError as exc:  # the client left: a normal event, logged as one
            return client_gone(request, exc)
        except RelayError as error:
            log_failure(error)
            response = to_response(error, state.metrics)
            if response.headers.get("Connection") == "close":
                await send_and_close(request, response)  # the header alone does not end it
            return response
        finally:
            if guard is not None:
                guard.request_ended()

    return handle


async def _not_found(_: web.Request, __: RelayState) -> web.StreamResponse:
    raise NotFound("no route")


def _not_allowed(allow: str) -> StateHandler:
    async def handle(_: web.Request, __: RelayState) -> web.StreamResponse:
        raise MethodNotAllowed(allow)

    return handle


def _check_transfer_coding(values: list[str]) -> None:
    # RFC 9112 §6.1: only exactly "chunked" is understood; anything else is 501, body unread.
    if not only_chunked_transfer(values):
        raise TransferCodingNotImplemented("transfer coding")


def _origin_form(target: str) -> bool:
    return target.startswith("/") and not target.startswith("//")


def _keys_handler(name: str) -> StateHandler:
    async def handle(_: web.Request, state: RelayState) -> web.StreamResponse:
        body, remaining = await state.mirrors[name].get()
        state.metrics.count(Result.KEYS_SERVED)
        # The same bytes for every client; only the remaining lifetime depends on time.
        return web.Response(body=body, headers={
            "Content-Type": KEYS_MEDIA_TYPE, "Cache-Control": f"max-age={remaining}",
        })

    return handle
