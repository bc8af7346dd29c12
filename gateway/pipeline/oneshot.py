"""The one-shot path: a ``message/ohttp-req`` body in, a ``message/ohttp-res`` answer out.

Also the inner checks and the backend call, which the streamed path shares.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from time import perf_counter
from typing import TypeVar

from gateway.backends.base import encode_response
from gateway.errors import (
    BackendError,
    BackendTimeout,
    ExpectNotAllowed,
    ForbiddenTarget,
    InnerError,
    Result,
    inner_reply,
)
from gateway.pipeline.state import Answer, GatewayState, outer_answer
from ohttp import bhttp
from ohttp.encapsulation import RESPONSE_MEDIA_TYPE as OHTTP_RES
from ohttp.encapsulation import decapsulate_request
from ohttp.errors import OHTTPError
from ohttp.padding import pad_message

__all__ = ["at_backend", "check_inner", "handle_encapsulated", "inner_answer"]

logger = logging.getLogger("gateway")

_T = TypeVar("_T")

# RFC 9458 §5: the outer response carries only what is needed and nothing that depends on the
# encapsulated response; this fixed set is all the gateway adds.
_RES_HEADERS: Mapping[str, str] = {"Content-Type": OHTTP_RES}


async def handle_encapsulated(state: GatewayState, body: bytes) -> Answer:
    """One ``message/ohttp-req`` body -> the outer answer (RFC 9458 §5.2)."""
    try:
        started = perf_counter()
        inner, sealer = decapsulate_request(state.keys.ring, body)
        state.metrics.decapsulate_seconds.observe(perf_counter() - started)
    except OHTTPError as exc:
        return outer_answer(exc)
    encoded, result = await inner_answer(state, inner, sealer.enc, sealer.key_id)
    padded = pad_message(encoded, state.config.padding)  # RFC 9292 §3.8, to a size class
    return Answer(200, _RES_HEADERS, sealer.seal(padded), result)


async def inner_answer(
    state: GatewayState, inner: bytes, enc: bytes, key_id: int
) -> tuple[bytes, Result]:
    """Inner layer (RFC 9458 §5.2): every answer is an encoded Binary HTTP response."""
    try:
        request = bhttp.decode_request(inner, state.limits)
        record = check_inner(state, request, enc, key_id)
        if record is not None:
            await record
        if state.tokens is not None:  # Privacy Pass: after decapsulation, before the backend
            request = await state.tokens.check(request)
        started = perf_counter()
        response = await at_backend(state, partial(state.backend.handle, request))
        state.metrics.backend_seconds.observe(perf_counter() - started)
        return encode_response(response), Result.OK
    except (InnerError, OHTTPError) as exc:
        reply = inner_reply(exc)
        return reply.encoded, reply.result


def check_inner(
    state: GatewayState, request: bhttp.Request, enc: bytes, key_id: int
) -> Awaitable[None] | None:
    """The inner request's checks; then the replay record to await, or None when there is
    none to keep (no Date, none required)."""
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
    return state.replay.pending(date, key_id, enc)


async def at_backend(state: GatewayState, call: Callable[[], Awaitable[_T]]) -> _T:
    """``call()`` into the backend under its deadline; its failures become 502/504 only."""
    try:
        return await state.deadlines.run(call())
    except BackendError:
        raise
    except TimeoutError:
        raise BackendTimeout() from None
    except Exception as exc:  # the backend seam: any failure there is a 502, never a 500
        logger.warning("backend_exception", extra={"error": type(exc).__name__})
        raise BackendError() from None
