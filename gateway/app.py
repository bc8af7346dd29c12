"""The Oblivious Gateway Resource as an aiohttp application (RFC 9458 §5, RFC 9540).

``create_app`` returns an application that runs standalone or mounts as a sub-app. Routes,
relative to where it is mounted:

- ``GET /.well-known/ohttp-gateway``: the key configurations (``application/ohttp-keys``,
  RFC 9540 §5), the same bytes for every client.
- ``POST /.well-known/ohttp-gateway``: ``message/ohttp-req`` in, ``message/ohttp-res`` out;
  ``message/ohttp-chunked-req`` in, ``message/ohttp-chunked-res`` out, each chunk flushed as
  the backend produces it (draft-ietf-ohai-chunked-ohttp-08).
- ``GET /healthz`` (liveness) and ``GET /readyz`` (readiness: keys, origin; see
  ``ohttp.aio.readiness``), HEAD too.

Request handling lives in ``gateway.pipeline`` (shared with the ASGI middleware); which
answer each error gets is decided in ``gateway.errors`` alone.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import AsyncIterator

from aiohttp import hdrs, web

from gateway.auth import RELAY_TOKENS, load_tokens
from gateway.backends import Backend, backend_from_spec
from gateway.config import GatewayConfig
from gateway.errors import Unauthorized
from gateway.health import add_gateway_checks
from gateway.keylog import load_logged_keys
from gateway.metrics import GatewayMetrics
from gateway.pipeline import (
    BodyDeadline,
    GatewayState,
    KeyDocument,
    StreamAborted,
    StreamedAnswer,
    answer_request,
    read_body_within,
)
from gateway.pipeline.state import refused
from ohttp.aio.guard import send_and_close, write_within
from ohttp.aio.keyfile import load_key_file
from ohttp.aio.readiness import healthz, readyz
from ohttp.aio.serving import tracked
from ohttp.aio.store import Store
from ohttp.errors import OHTTPError
from ohttp.keys import KeyRing

__all__ = [
    "GATEWAY_PATH",
    "GATEWAY_STATE",
    "GatewayState",
    "KeyDocument",
    "create_app",
    "reload_keys",
]

GATEWAY_PATH = "/.well-known/ohttp-gateway"  # RFC 9540 §5

logger = logging.getLogger("gateway")


GATEWAY_STATE = web.AppKey("ohttp_gateway_state", GatewayState)


def create_app(
    config: GatewayConfig,
    *,
    keys: KeyRing | None = None,
    backend: Backend | None = None,
    metrics: GatewayMetrics | None = None,
    store: Store | None = None,
) -> web.Application:
    """The gateway application; ``keys`` default to ``config.keys`` loaded from disk and
    ``backend`` to ``config.backend``. Serve ``metrics.registry`` on a separate listener.

    Inner requests may name the backend's own authority (``echo.internal``,
    ``processing.internal``, an origin URL's; an explicit ``backend`` only if it has an
    ``authority``) and ``config.allow_target``; ``config.backend`` says nothing about an
    explicit ``backend``. ValueError if that allows no authority at all. ``store`` holds
    the replay records and spent Privacy Pass tokens (default: the store ``config.state``
    names, ``ohttp.aio.store.open_store``); it is closed with the app.
    """
    if keys is None:
        if config.keys is None:
            raise ValueError("a key ring or a key file is required")
        keys = load_key_file(config.keys)
    origin = None
    if backend is None:
        backend = backend_from_spec(config.backend)
        origin = config.backend if config.backend.startswith(("http://", "https://")) else None
    state = GatewayState.from_config(config, keys, backend, metrics=metrics, store=store)
    # Never decompress (RFC 9110 §8.4): a content-coded request is refused unread.
    app = web.Application(handler_args={"auto_decompress": False})
    app[GATEWAY_STATE] = state
    app.cleanup_ctx.append(_lifecycle)
    # tracked: the request-head deadline of `ohttp gateway` spares requests being handled.
    app.router.add_route("*", GATEWAY_PATH, tracked(_gateway_resource))
    app.router.add_get("/healthz", tracked(healthz))
    app.router.add_get("/readyz", tracked(readyz))
    add_gateway_checks(app, state, origin)
    state.metrics.key_expiry = lambda: state.keys.expires_in(time.time())
    if config.relay_token_file is not None:
        app[RELAY_TOKENS] = load_tokens(config.relay_token_file)
    return app


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    state = app[GATEWAY_STATE]
    await state.backend.start()
    loop = asyncio.get_running_loop()
    reload_on_hup = state.config.reload_on_sighup and state.config.keys is not None
    if reload_on_hup:
        # The loop runs the reload between requests; in-flight ones keep the old ring.
        loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(reload_keys(app)))
    try:
        yield
    finally:
        if reload_on_hup:
            loop.remove_signal_handler(signal.SIGHUP)
        await state.backend.close()
        if state.tokens is not None:
            await state.tokens.close()
        await state.replay.close()


async def reload_keys(app: web.Application) -> bool:
    """Load the key file again and swap the ring; keeps the old one if the file is bad."""
    state = app[GATEWAY_STATE]
    path = state.config.keys
    if path is None:
        return False
    try:
        ring = await load_logged_keys(state.config)  # and vouched for by the log, if any
    except (OSError, OHTTPError, ValueError) as exc:
        state.metrics.key_reloads.labels("failed").inc()
        logger.warning("keys_reload_failed", extra={"error": type(exc).__name__})
        return False
    state.keys = KeyDocument(ring)
    state.metrics.key_reloads.labels("ok").inc()
    logger.info("keys_reloaded", extra={"advertised": len(ring.current())})
    return True


async def _gateway_resource(request: web.Request) -> web.StreamResponse:
    tokens = request.app.get(RELAY_TOKENS)
    if tokens is not None and not tokens.accepts(request.headers.get(hdrs.AUTHORIZATION)):
        refusal = refused(request.app[GATEWAY_STATE], Unauthorized())
        return web.Response(status=refusal.status, headers=refusal.headers, body=refusal.body)
    # The handling itself is gateway.pipeline's, shared with the ASGI middleware so both
    # transports give byte-identical answers.
    state = request.app[GATEWAY_STATE]
    body = BodyDeadline(state.config.body_timeout)  # the head is complete: the body's clock
    answer = await answer_request(
        state,
        request.method,
        request.headers.get(hdrs.CONTENT_TYPE),
        request.content_length,
        lambda length, limit: read_body_within(request.content, length, limit, body),
        body_chunks=lambda: body.chunks(request.content.iter_any()),
        content_encoding=_joined(request.headers.getall(hdrs.CONTENT_ENCODING, [])),
        transfer_encoding=_joined(request.headers.getall(hdrs.TRANSFER_ENCODING, [])),
    )
    if isinstance(answer, StreamedAnswer):
        return await _send_streamed(request, answer)
    response = web.Response(status=answer.status, headers=answer.headers, body=answer.body)
    if answer.headers.get("Connection") == "close":
        await send_and_close(request, response)  # the header alone does not end it
    return response


def _joined(values: list[str]) -> str | None:
    return ", ".join(values) if values else None


async def _send_streamed(request: web.Request, answer: StreamedAnswer) -> web.StreamResponse:
    """Each piece written as it is produced (chunked transfer coding; ``write`` sends at once
    and waits only when the peer is slow to read)."""
    response = web.StreamResponse(status=answer.status, headers=answer.headers)
    try:
        await response.prepare(request)
        write_timeout = request.app[GATEWAY_STATE].config.write_timeout
        async for piece in answer:
            await write_within(request, response, piece, write_timeout)
    except StreamAborted:
        # chunked-08 §7.1: end the connection without ending the message, so the client sees
        # truncation and never a complete response.
        if request.transport is not None:
            request.transport.close()
        return response
    finally:
        await answer.aclose()
    await response.write_eof()
    return response
