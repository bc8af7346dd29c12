"""The gateway's routes on the serving engine (``ohttp.aio.engine``), for ``ohttp gateway``.

The same routes and answers as the aiohttp application of ``gateway.app``, whose state,
lifecycle and readiness checks it uses: ``engine_handler(app)`` after the app started. The
request handling is ``gateway.pipeline``'s, shared with the aiohttp and ASGI transports.

``gateway_lane(app)`` is the engine's lane for the common request: a one-shot OHTTP POST
whose body arrived whole is answered by the same pipeline in a task the engine runs for it
(``LaneRequest.spawn``), without an exchange or a body to read. It declines what the handler
answers otherwise (another target, the chunked media type, which may stream, and a relay
token the gateway refuses); the pipeline answers any method, as for the handler.
"""

from __future__ import annotations

from collections.abc import Awaitable

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
    streams,
)
from gateway.pipeline.admission import BodyChunks, BodyReader
from gateway.pipeline.state import refused
from ohttp.aio.engine import TEXT_PLAIN, Exchange, Handler, Head, Lane, LaneRequest, fixed_text
from ohttp.aio.readiness import LIVENESS_ANSWER, READINESS, readiness_answer

__all__ = ["engine_handler", "gateway_lane"]

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


def gateway_lane(app: web.Application) -> Lane:
    """The engine lane for the gateway ``app``'s one-shot OHTTP request (see the module's
    text)."""
    state = app[GATEWAY_STATE]
    tokens = app.get(RELAY_TOKENS)

    def lane(request: LaneRequest) -> bool:
        head = request.head
        if head.target != GATEWAY_PATH or streams(head.headers.get("content-type")):
            return False
        if tokens is not None and not tokens.accepts(head.headers.get("authorization")):
            return False  # the handler's 401
        request.spawn(_lane_answer(state, request))
        return True

    return lane


async def _lane_answer(state: GatewayState, request: LaneRequest) -> None:
    body = request.body

    async def whole(_length: int | None, _limit: int) -> bytes:
        return body  # all of it arrived, and its Content-Length passed the size check

    answer = await _pipeline(state, request.head, whole)
    if isinstance(answer, StreamedAnswer):  # the lane declines what streams: a bug, a 500
        await answer.aclose()  # (which gives back its in-flight slot)
        raise TypeError("a streamed answer on the gateway's lane")
    fields, close = _outer_fields(answer)
    request.respond(answer.status, fields, answer.body, close=close)


async def _gateway_resource(state: GatewayState, exchange: Exchange) -> None:
    body = exchange.body
    deadline = BodyDeadline(state.config.body_timeout)  # the head is complete: the body's clock
    answer = await _pipeline(
        state, exchange.head, lambda length, limit: read_body_within(body, length, limit, deadline),
        lambda: deadline.chunks(body.iter_any()),
    )
    if isinstance(answer, StreamedAnswer):
        await _send_streamed(exchange, answer, state.config.write_timeout)
    else:
        _respond(exchange, answer)


def _respond(exchange: Exchange, answer: Answer) -> None:
    fields, close = _outer_fields(answer)
    if close:
        exchange.close()  # the engine sends the field and ends the connection after the answer
    exchange.respond(answer.status, fields, answer.body)


def _pipeline(state: GatewayState, head: Head, read_body: BodyReader,
              body_chunks: BodyChunks | None = None) -> Awaitable[Answer | StreamedAnswer]:
    return answer_request(
        state, head.method, head.headers.get("content-type"), head.content_length, read_body,
        body_chunks=body_chunks, content_encoding=head.headers.joined("content-encoding"),
        transfer_encoding=head.headers.joined("transfer-encoding"),
    )


def _outer_fields(answer: Answer) -> tuple[tuple[tuple[str, str], ...], bool]:
    # The answer's fields for the engine (a tuple: it keeps their encoding for repeats), and
    # whether it ends the connection: the engine sends Connection itself.
    headers = answer.headers
    if "Connection" in headers:
        return tuple((name, value) for name, value in headers.items() if name != "Connection"), True
    return tuple(headers.items()), False


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
