"""Every answer the relay gives itself, as one exception tree, and the one mapping to a response.

Handlers raise; :func:`error_answer` decides status, body, headers and the metric result from
the exception's class. Bodies are fixed texts and headers carry nothing from the request, so no
client or gateway detail can leak through an error. Foreign exceptions (OSError, TimeoutError,
the parser's ProtocolError, aiohttp's read errors) are translated into this tree where they
occur: connecting and parsing in ``relay.upstream``, reading the client body in
``relay.forward``, fetching keys in ``relay.keymirror``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import ClassVar

from relay.exchange import Answer, plain_answer
from relay.metrics import RelayMetrics, Result

_CLOSE = MappingProxyType({"Connection": "close"})
_NONE: Mapping[str, str] = MappingProxyType({})


class RelayError(Exception):
    """A request the relay answers itself; the class fixes the status, text and metric."""

    status: ClassVar[int]
    text: ClassVar[str]
    result: ClassVar[Result]
    headers: Mapping[str, str] | None = None


# --------------------------------------------------------------------------- the request


class NotFound(RelayError):
    """No route, or an absolute-form target (the relay is no forward proxy)."""

    status, text, result = 404, "Not Found", Result.NOT_FOUND


class MethodNotAllowed(RelayError):
    status, text, result = 405, "Method Not Allowed", Result.METHOD_NOT_ALLOWED

    def __init__(self, allow: str) -> None:
        super().__init__(self.text)
        self.headers = {"Allow": allow}


class RateLimited(RelayError):
    status, text, result = 429, "too many requests", Result.RATE_LIMITED

    def __init__(self, retry_after: int) -> None:
        super().__init__(self.text)
        self.headers = {"Retry-After": str(retry_after)}


class Overloaded(RelayError):
    """The in-flight cap is reached."""

    status, text, result = 503, "overloaded", Result.OVERLOADED
    headers = MappingProxyType({"Retry-After": "1"})


class StateUnavailable(RelayError):
    """The shared state store (rate-limit counters) did not answer: refused, never let through
    unchecked (fail closed). The message is the store's fixed reason code."""

    status, text, result = 503, "service unavailable", Result.STATE_UNAVAILABLE
    headers = MappingProxyType({"Retry-After": "1"})


class UnsupportedMediaType(RelayError):
    status, text, result = 415, "unsupported media type", Result.UNSUPPORTED_MEDIA_TYPE


class UnsupportedContentCoding(UnsupportedMediaType):
    """RFC 9110 §8.4, §15.5.16: an encapsulated request is never content-coded."""

    text = "unsupported content coding"
    headers = MappingProxyType({"Accept-Encoding": "identity"})


class TransferCodingNotImplemented(RelayError):
    """RFC 9112 §6.1: a transfer coding other than exactly ``chunked``; the framing is unknown,
    so the body is not read and the connection is closed."""

    status, text, result = 501, "transfer coding not implemented", Result.BAD_REQUEST
    headers = _CLOSE


class RequestTooLarge(RelayError):
    """The declared Content-Length is over the limit."""

    status, text, result = 413, "request too large", Result.TOO_LARGE
    headers = _CLOSE


class EmptyRequest(RelayError):
    status, text, result = 400, "empty request", Result.BAD_REQUEST


class ClientBodyError(RelayError):
    """The client's body could not be relayed; the connection is closed after the answer."""

    text = "request not relayed"
    headers = _CLOSE


class ClientTimeout(ClientBodyError):
    status, result = 408, Result.CLIENT_TIMEOUT


class ClientAborted(ClientBodyError):
    status, result = 400, Result.CLIENT_ABORTED


class BodyTooLarge(ClientBodyError):
    """The streamed body grew over the limit."""

    status, result = 413, Result.TOO_LARGE


# --------------------------------------------------------------------------- the gateway hop


class UpstreamError(RelayError):
    """The forward failed (unreachable, broke off, invalid answer). Messages are fixed strings."""

    status, text, result = 502, "bad gateway", Result.UPSTREAM_UNAVAILABLE


class UpstreamTimeout(UpstreamError):
    """The gateway did not answer in time."""

    status, text, result = 504, "gateway timeout", Result.UPSTREAM_TIMEOUT


class GatewayUntrusted(UpstreamError):
    """The gateway's TLS certificate did not verify (or it refused ours)."""


class UpstreamProtocolError(UpstreamError):
    """The gateway's answer was not valid HTTP/1.1 within our limits."""


class GatewayRefused(RelayError):
    """The gateway answered 3xx, 5xx or a 2xx of the wrong media type: none of it is passed on."""

    status, text, result = 502, "bad gateway", Result.GATEWAY_SERVER_ERROR


class GatewayUnavailable(GatewayRefused):
    """The gateway sheds load (503): passed on with the relay's own body and a checked
    Retry-After."""

    status, text = 503, "gateway unavailable"

    def __init__(self, retry_after: str | None) -> None:
        super().__init__(self.text)
        self.headers = {"Retry-After": retry_after} if retry_after is not None else None


class KeysUnavailable(RelayError):
    """The key mirror has no valid keys to serve."""

    status, text, result = 502, "keys unavailable", Result.KEYS_UNAVAILABLE


class KeysTimeout(KeysUnavailable):
    status, text = 504, "gateway timeout"


def error_answer(error: RelayError, metrics: RelayMetrics) -> Answer:
    """The one mapping: the error's status, fixed text and headers; its result is counted."""
    metrics.count(error.result)
    headers = error.headers or _NONE
    close = headers.get("Connection") == "close"
    passed = [(name, value) for name, value in headers.items() if name != "Connection"]
    return plain_answer(error.status, error.text, passed, close=close)
