"""The gateway's request handling, independent of the HTTP server in front of it.

One request to the gateway resource, as method + Content-Type + Content-Length + body chunks
in, and one ``Answer`` (status, headers, body, metric result) out:
outer checks -> decapsulate -> Binary HTTP -> policy -> backend -> seal (RFC 9458 §5).
``gateway.asgi`` serves it to any ASGI host; ``gateway.app`` can serve it to aiohttp the same
way, so both transports give byte-identical answers. Which answer each error gets is decided
in ``gateway.errors`` alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterable, Mapping
from dataclasses import dataclass
from time import perf_counter
from typing import TYPE_CHECKING

from gateway.backends import BackendError, BackendTimeout
from gateway.errors import (
    BadMediaType,
    BadMethod,
    BodyTooLarge,
    ExpectNotAllowed,
    ForbiddenTarget,
    GatewayError,
    Overloaded,
    Result,
    inner_reply,
    outer_reply,
)
from gateway.replay import enc_of
from ohttp import bhttp
from ohttp.encapsulation import decapsulate_request
from ohttp.errors import EncapsulationError, OHTTPError

if TYPE_CHECKING:
    from gateway.app import GatewayState

__all__ = [
    "OHTTP_KEYS",
    "OHTTP_REQ",
    "OHTTP_RES",
    "Answer",
    "answer_request",
    "handle_encapsulated",
    "inner_answer",
]

OHTTP_REQ = "message/ohttp-req"  # RFC 9458 §9.1
OHTTP_RES = "message/ohttp-res"  # RFC 9458 §9.2
OHTTP_KEYS = "application/ohttp-keys"  # RFC 9458 §9.3

logger = logging.getLogger("gateway")

# RFC 9458 §5: the outer response carries only what is needed and nothing that depends on the
# encapsulated response; this fixed set is all the gateway adds.
_RES_HEADERS: Mapping[str, str] = {"Content-Type": OHTTP_RES}


@dataclass(frozen=True, slots=True)
class Answer:
    """What to send back: status, header fields, body; ``result`` is for metrics only
    (None for key-configuration requests)."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    result: Result | None


def _outer(exc: BaseException) -> Answer:
    reply = outer_reply(exc)
    if reply is None:  # not reachable for the errors passed here
        return Answer(500, {}, b"", Result.BACKEND_ERROR)
    return Answer(reply.status, reply.headers, reply.body, reply.result)


async def answer_request(
    state: GatewayState,
    method: str,
    content_type: str | None,
    content_length: int | None,
    body: AsyncIterable[bytes],
) -> Answer:
    """The gateway resource: GET/HEAD -> key configurations (RFC 9540 §5), POST -> OHTTP.

    ``ConnectionError`` from ``body`` (the client went away) propagates to the transport.
    """
    if method == "POST":
        return await _answer_post(state, content_type, content_length, body)
    if method in ("GET", "HEAD"):
        state.metrics.key_requests.inc()
        document, headers = state.keys.current()
        return Answer(200, headers, document, None)
    state.metrics.count(Result.BAD_METHOD)
    return _outer(BadMethod())


async def _answer_post(
    state: GatewayState,
    content_type: str | None,
    content_length: int | None,
    body: AsyncIterable[bytes],
) -> Answer:
    metrics = state.metrics
    if state.in_flight >= state.config.max_in_flight:
        metrics.count(Result.OVERLOADED)
        return _outer(Overloaded())
    started = perf_counter()
    state.in_flight += 1
    metrics.in_flight.inc()
    try:
        try:
            data = await _read_encapsulated(
                content_type, content_length, body, state.config.max_body
            )
        except (GatewayError, OHTTPError) as exc:
            answer = _outer(exc)
        else:
            answer = await handle_encapsulated(state, data)
    except ConnectionError:
        raise  # the client went away while sending: the transport has nobody to answer
    except Exception as exc:  # a bug: a fixed 500, the type logged only, no traceback
        logger.error("internal_error", extra={"error": type(exc).__name__})
        answer = Answer(500, {}, b"", Result.BACKEND_ERROR)
    finally:
        state.in_flight -= 1
        metrics.in_flight.dec()
    if answer.result is not None:
        metrics.count(answer.result)
    metrics.total_seconds.observe(perf_counter() - started)
    return answer


async def _read_encapsulated(
    content_type: str | None,
    content_length: int | None,
    body: AsyncIterable[bytes],
    limit: int,
) -> bytes:
    # RFC 9458 §4.1 / §9.1: the media type must match exactly; parameters are not allowed.
    if content_type is None or content_type.lower() != OHTTP_REQ:
        raise BadMediaType()
    if content_length is not None and content_length > limit:
        raise BodyTooLarge()  # decided before reading a byte
    parts: list[bytes] = []
    size = 0
    async for chunk in body:
        size += len(chunk)
        if size > limit:  # enforced while reading when no Content-Length bounds it
            raise BodyTooLarge()
        parts.append(chunk)
    if content_length is not None and size != content_length:
        raise EncapsulationError("request body truncated")
    if not size:
        raise EncapsulationError("empty request")
    return b"".join(parts)


async def handle_encapsulated(state: GatewayState, body: bytes) -> Answer:
    """One ``message/ohttp-req`` body -> the outer answer (RFC 9458 §5.2)."""
    try:
        started = perf_counter()
        inner, sealer = decapsulate_request(state.keys.ring, body)
        state.metrics.decapsulate_seconds.observe(perf_counter() - started)
    except OHTTPError as exc:
        return _outer(exc)
    encoded, result = await inner_answer(state, inner, enc_of(body))
    return Answer(200, _RES_HEADERS, sealer.seal(encoded), result)


async def inner_answer(state: GatewayState, inner: bytes, enc: bytes) -> tuple[bytes, Result]:
    """Inner layer (RFC 9458 §5.2): every answer is an encoded Binary HTTP response."""
    try:
        request = bhttp.decode_request(inner, state.limits)
        _check_inner(state, request, enc)
        started = perf_counter()
        response = await _call_backend(state, request)
        state.metrics.backend_seconds.observe(perf_counter() - started)
        try:
            return bhttp.encode_response(response), Result.OK
        except (OHTTPError, ValueError):  # the backend produced an unencodable response
            raise BackendError() from None
    except (GatewayError, OHTTPError, BackendError) as exc:
        reply = inner_reply(exc)
        return bhttp.encode_response(reply.response), reply.result


def _check_inner(state: GatewayState, request: bhttp.Request, enc: bytes) -> None:
    # RFC 9458 §6.3, §6.10: no tunnels, no protocol switches, allowlisted targets only.
    if request.method == b"CONNECT":
        raise ForbiddenTarget()
    date: bytes | None = None
    host: bytes | None = None
    for name, value in request.headers:
        if name == b"date":
            date = value
        elif name == b"host":
            host = value
        elif name == b"upgrade":
            raise ForbiddenTarget()
        elif name == b"expect":  # RFC 9458 §5.1: Expect: 100-continue MUST get an error
            raise ExpectNotAllowed()
    authority = request.authority or host or b""  # RFC 9292 §3.4: Host if no authority
    if not state.policy.allows(request.scheme, authority):
        raise ForbiddenTarget()
    # Last, so only requests that reach the backend occupy the replay cache (RFC 9458 §6.5).
    state.replay.check(date, enc)


async def _call_backend(state: GatewayState, request: bhttp.Request) -> bhttp.Response:
    try:
        async with asyncio.timeout(state.config.backend_timeout):
            return await state.backend.handle(request)
    except BackendError:
        raise
    except TimeoutError:
        raise BackendTimeout() from None
    except Exception as exc:  # the backend seam: any failure there is a 502, never a 500
        logger.warning("backend_exception", extra={"error": type(exc).__name__})
        raise BackendError() from None
