"""The gateway's routes on the serving engine (``ohttp.aio.engine``), for ``ohttp gateway``.

The same routes and answers as the aiohttp application of ``gateway.app``, whose state,
lifecycle and readiness checks it uses: ``engine_handler(app)`` after the app started. The
request handling is ``gateway.pipeline``'s, shared with the aiohttp and ASGI transports.
"""

from __future__ import annotations

from aiohttp import web

from gateway.app import GATEWAY_PATH, GATEWAY_STATE
from gateway.auth import RELAY_TOKENS
from gateway.errors import Unauthorized
from gateway.pipeline import (
    Answer,
    BodyDeadline,
    GatewayState,
    StreamAborted,
    StreamedAnswer,
    answer_request,
    read_body_within,
)
from gateway.pipeline.state import refused
from ohttp.aio.engine import TEXT_PLAIN, Exchange, Handler, fixed_text
from ohttp.aio.readiness import LIVENESS_ANSWER, READINESS, readiness_answer

__all__ = ["engine_handler"]

_PROBES = frozenset(("GET", "HEAD"))


def engine_handler(app: web.Application) -> Handler:
    """The engine handler for the gateway ``app`` (made by ``gateway.app.create_app``)."""
    state = app[GATEWAY_STATE]
    tokens = app.get(RELAY_TOKENS)
    checks = app.get(READINESS)

    async def handle(exchange: Exchange) -> None:
        path = exchange.head.path
        if path == GATEWAY_PATH:
            if tokens is not None and not tokens.accepts(
                exchange.head.headers.get("authorization")
            ):
                _respond(exchange, refused(state, Unauthorized()))
                return
            await _gateway_resource(state, exchange)
        elif path in ("/healthz", "/readyz") and exchange.head.method in _PROBES:
            status, text, headers = (
                LIVENESS_ANSWER if path == "/healthz" else await readiness_answer(checks)
            )
            exchange.respond(status, [TEXT_PLAIN, *headers.items()], text.encode())
        elif path in ("/healthz", "/readyz"):
            _fixed(exchange, 405, [("Allow", "GET, HEAD")])
        else:
            _fixed(exchange, 404)

    return handle


async def _gateway_resource(state: GatewayState, exchange: Exchange) -> None:
    head = exchange.head
    body = exchange.body
    deadline = BodyDeadline(state.config.body_timeout)  # the head is complete: the body's clock
    answer = await answer_request(
        state,
        head.method,
        head.headers.get("content-type"),
        head.content_length,
        lambda length, limit: read_body_within(body, length, limit, deadline),
        body_chunks=lambda: deadline.chunks(body.iter_any()),
        content_encoding=head.headers.joined("content-encoding"),
        transfer_encoding=head.headers.joined("transfer-encoding"),
    )
    if isinstance(answer, StreamedAnswer):
        await _send_streamed(exchange, answer, state.config.write_timeout)
    else:
        _respond(exchange, answer)


def _respond(exchange: Exchange, answer: Answer) -> None:
    headers = answer.headers
    if "Connection" in headers:
        # The engine sends the field itself and ends the connection after the answer.
        exchange.close()
        headers = {name: value for name, value in headers.items() if name != "Connection"}
    exchange.respond(answer.status, headers.items(), answer.body)


async def _send_streamed(exchange: Exchange, answer: StreamedAnswer, write_timeout: float) -> None:
    """Each piece written as it is produced (chunked transfer coding)."""
    try:
        exchange.start(answer.status, answer.headers.items())
        async for piece in answer:
            await exchange.write(piece, write_timeout)
    except StreamAborted:
        # chunked-08 §7.1: end the connection without ending the message, so the client sees
        # truncation and never a complete response.
        exchange.abort()
        return
    finally:
        await answer.aclose()
    exchange.end()


def _fixed(exchange: Exchange, status: int, extra: list[tuple[str, str]] | None = None) -> None:
    # The text of the fixed error pages, keeping the connection (a well-formed request).
    exchange.respond(status, [TEXT_PLAIN, *(extra or [])], fixed_text(status))
