"""The gateway's request handling, independent of the HTTP server in front of it.

One request to the gateway resource, as method + Content-Type + Content-Length + a body reader
in, and one ``Answer`` (status, headers, body, metric result) out:
outer checks -> decapsulate -> Binary HTTP -> policy -> backend -> seal (RFC 9458 §5).
``gateway.app`` (aiohttp) and ``gateway.asgi`` (ASGI) both serve it, so both transports give
byte-identical answers. Which answer each error gets is decided in ``gateway.errors`` alone.

This is the hot path: answers that do not depend on the request are built once, metrics are
plain counters (``gateway.metrics``), and nothing here logs unless something failed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from time import perf_counter
from typing import NamedTuple

from gateway.backends import Backend, BackendError, BackendTimeout, backend_authority
from gateway.config import GatewayConfig, TargetPolicy
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
from gateway.metrics import GatewayMetrics
from gateway.replay import ReplayGuard
from ohttp import bhttp
from ohttp.encapsulation import decapsulate_request
from ohttp.errors import EncapsulationError, OHTTPError
from ohttp.keys import KeyRing

__all__ = [
    "OHTTP_KEYS",
    "OHTTP_REQ",
    "OHTTP_RES",
    "Answer",
    "BodyReader",
    "GatewayState",
    "KeyDocument",
    "answer_request",
    "handle_encapsulated",
    "inner_answer",
    "read_chunks",
]

OHTTP_REQ = "message/ohttp-req"  # RFC 9458 §9.1
OHTTP_RES = "message/ohttp-res"  # RFC 9458 §9.2
OHTTP_KEYS = "application/ohttp-keys"  # RFC 9458 §9.3

logger = logging.getLogger("gateway")

# RFC 9458 §5: the outer response carries only what is needed and nothing that depends on the
# encapsulated response; this fixed set is all the gateway adds.
_RES_HEADERS: Mapping[str, str] = {"Content-Type": OHTTP_RES}

BodyReader = Callable[[int | None, int], Awaitable[bytes]]
"""``read(content_length, limit)``: the whole request body. Raises ``BodyTooLarge`` once more
than ``limit`` bytes arrive and ``EncapsulationError`` when fewer than ``content_length`` do;
``ConnectionError`` when the client goes away."""


class KeyDocument:
    """A key ring and its public ``application/ohttp-keys`` document.

    The document is recomputed at most once per second, and only from the key schedule, so
    every client gets the same bytes (checklist K1).
    """

    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring
        self._second = -1
        self._headers: dict[str, str] = {}
        self._body = b""

    def current(self) -> tuple[bytes, dict[str, str]]:
        now = int(time.time())
        if now != self._second:
            self._body = self.ring.encode_public(now)
            # RFC 9540 §5 / checklist K4: cacheable, never no-store or private.
            max_age = max(0, self.ring.max_age(now))
            self._headers = {"Content-Type": OHTTP_KEYS, "Cache-Control": f"max-age={max_age}"}
            self._second = now
        return self._body, self._headers


@dataclass(eq=False)
class GatewayState:
    """What the handlers share. ``keys`` is swapped whole on reload."""

    config: GatewayConfig
    keys: KeyDocument
    backend: Backend
    metrics: GatewayMetrics
    policy: TargetPolicy
    replay: ReplayGuard
    limits: bhttp.Limits
    in_flight: int = 0
    reloads: int = field(default=0)

    @classmethod
    def from_config(
        cls,
        config: GatewayConfig,
        keys: KeyRing,
        backend: Backend,
        *,
        metrics: GatewayMetrics | None = None,
        policy: TargetPolicy | None = None,
    ) -> GatewayState:
        """The state for ``config``. ``policy`` defaults to the backend's own authority (if
        it has one, ``backends.backend_authority``) plus ``config.allow_target``; a policy
        that allows nothing is a configuration error (every request would get a 403)."""
        if policy is None:
            policy = config.target_policy(backend_authority(backend))
        if not policy.allowed:
            raise ValueError("no target authority allowed: set allow_target")
        return cls(
            config=config,
            keys=KeyDocument(keys),
            backend=backend,
            metrics=metrics if metrics is not None else GatewayMetrics(),
            policy=policy,
            replay=ReplayGuard(
                config.date_window,
                require_date=config.require_date,
                max_entries=config.replay_cache_size,
            ),
            limits=bhttp.Limits(max_content_bytes=config.max_body),
        )


class Answer(NamedTuple):
    """What to send back: status, header fields, body; ``result`` is for metrics only
    (None for key-configuration requests)."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    result: Result | None


_INTERNAL_ERROR = Answer(500, {}, b"", Result.BACKEND_ERROR)
_OUTER_ANSWERS: dict[type[BaseException], Answer] = {}


def _outer(exc: BaseException) -> Answer:
    # Each error class always gets the same precomputed answer: build it once.
    answer = _OUTER_ANSWERS.get(type(exc))
    if answer is None:
        reply = outer_reply(exc)
        if reply is None:  # not reachable for the errors passed here
            return _INTERNAL_ERROR
        answer = Answer(reply.status, reply.headers, reply.body, reply.result)
        _OUTER_ANSWERS[type(exc)] = answer
    return answer


async def answer_request(
    state: GatewayState,
    method: str,
    content_type: str | None,
    content_length: int | None,
    read_body: BodyReader,
) -> Answer:
    """The gateway resource: GET/HEAD -> key configurations (RFC 9540 §5), POST -> OHTTP.

    ``ConnectionError`` from ``read_body`` (the client went away) propagates to the transport.
    """
    if method == "POST":
        return await _answer_post(state, content_type, content_length, read_body)
    if method in ("GET", "HEAD"):
        state.metrics.key_requests += 1
        document, headers = state.keys.current()
        return Answer(200, headers, document, None)
    state.metrics.count(Result.BAD_METHOD)
    return _outer(BadMethod())


async def _answer_post(
    state: GatewayState,
    content_type: str | None,
    content_length: int | None,
    read_body: BodyReader,
) -> Answer:
    metrics = state.metrics
    if state.in_flight >= state.config.max_in_flight:
        metrics.count(Result.OVERLOADED)
        return _outer(Overloaded())
    started = perf_counter()
    state.in_flight += 1
    metrics.in_flight += 1
    try:
        try:
            # RFC 9458 §4.1 / §9.1: the media type must match exactly; no parameters.
            if content_type is None or content_type.lower() != OHTTP_REQ:
                raise BadMediaType()
            limit = state.config.max_body
            if content_length is not None and content_length > limit:
                raise BodyTooLarge()  # decided before reading a byte
            data = await read_body(content_length, limit)
            if not data:
                raise EncapsulationError("empty request")
        except (GatewayError, OHTTPError) as exc:
            answer = _outer(exc)
        else:
            answer = await handle_encapsulated(state, data)
    except ConnectionError:
        raise  # the client went away while sending: the transport has nobody to answer
    except Exception as exc:  # a bug: a fixed 500, the type logged only, no traceback
        logger.error("internal_error", extra={"error": type(exc).__name__})
        answer = _INTERNAL_ERROR
    finally:
        state.in_flight -= 1
        metrics.in_flight -= 1
    if answer.result is not None:
        metrics.count(answer.result)
    metrics.total_seconds.observe(perf_counter() - started)
    return answer


async def read_chunks(
    chunks: AsyncIterable[bytes], content_length: int | None, limit: int
) -> bytes:
    """A ``BodyReader`` over body chunks, for transports without a one-read path."""
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:  # enforced while reading when no Content-Length bounds it
            raise BodyTooLarge()
        parts.append(chunk)
    if content_length is not None and size != content_length:
        raise EncapsulationError("request body truncated")
    return b"".join(parts)


async def handle_encapsulated(state: GatewayState, body: bytes) -> Answer:
    """One ``message/ohttp-req`` body -> the outer answer (RFC 9458 §5.2)."""
    try:
        started = perf_counter()
        inner, sealer = decapsulate_request(state.keys.ring, body)
        state.metrics.decapsulate_seconds.observe(perf_counter() - started)
    except OHTTPError as exc:
        return _outer(exc)
    encoded, result = await inner_answer(state, inner, sealer.enc)
    return Answer(200, _RES_HEADERS, sealer.seal(encoded), result)


async def inner_answer(state: GatewayState, inner: bytes, enc: bytes) -> tuple[bytes, Result]:
    """Inner layer (RFC 9458 §5.2): every answer is an encoded Binary HTTP response."""
    try:
        request = bhttp.decode_request(inner, state.limits)
        _check_inner(state, request, enc)
        started = perf_counter()
        response = await _call_backend(state, request)
        state.metrics.backend_seconds.observe(perf_counter() - started)
        # ValueError: the backend's response cannot be encoded (e.g. a bad field name).
        return bhttp.encode_response(response), Result.OK
    except (GatewayError, OHTTPError, BackendError, ValueError) as exc:
        reply = inner_reply(exc)
        return reply.encoded, reply.result


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
