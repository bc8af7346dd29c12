"""The one place that maps errors to gateway answers (RFC 9458 §5.2).

Errors found before decapsulation get a plain (unencapsulated) HTTP status. Errors found after
decapsulation, and failures of the target, become an inner Binary HTTP response that is sealed
inside an outer ``200 message/ohttp-res``. Each mapping also names the closed metric result.
Nothing here depends on request content: bodies and messages are fixed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from email.utils import formatdate
from enum import StrEnum
from typing import ClassVar, TypeVar

from gateway.backends import BackendError, BackendTimeout
from ohttp import bhttp
from ohttp.errors import (
    PROBLEM_DATE,
    PROBLEM_JSON,
    PROBLEM_OHTTP_KEY,
    DecapsulationError,
    DecryptionError,
    MalformedError,
    MessageTooLargeError,
    OHTTPError,
)

__all__ = [
    "BadMediaType",
    "BadMethod",
    "BodyTooLarge",
    "DateOutOfWindow",
    "ExpectNotAllowed",
    "ForbiddenTarget",
    "GatewayError",
    "InnerReply",
    "OuterReply",
    "Overloaded",
    "Replay",
    "Result",
    "inner_reply",
    "outer_reply",
]

_T = TypeVar("_T")


class Result(StrEnum):
    """The closed set of request outcomes used as the only metric label."""

    OK = "ok"
    BAD_MEDIA_TYPE = "bad_media_type"
    BAD_METHOD = "bad_method"
    TOO_LARGE = "too_large"
    MALFORMED = "malformed"
    KEY_UNKNOWN = "key_unknown"
    DECRYPT_FAILED = "decrypt_failed"
    REPLAY = "replay"
    DATE = "date"
    FORBIDDEN_TARGET = "forbidden_target"
    BACKEND_ERROR = "backend_error"
    BACKEND_TIMEOUT = "backend_timeout"
    OVERLOADED = "overloaded"


class GatewayError(Exception):
    """Base of the gateway's own errors. Messages are fixed strings."""

    message: ClassVar[str] = "gateway error"

    def __init__(self) -> None:
        super().__init__(self.message)


# Before decapsulation: plain statuses.
class BadMethod(GatewayError):
    message = "method not allowed"


class BadMediaType(GatewayError):
    message = "unsupported media type"


class BodyTooLarge(GatewayError):
    message = "request body too large"


class Overloaded(GatewayError):
    message = "too many requests in flight"


# After decapsulation: encapsulated statuses.
class ForbiddenTarget(GatewayError):
    message = "target not allowed"


class ExpectNotAllowed(GatewayError):
    message = "expectation not supported"


class DateOutOfWindow(GatewayError):
    message = "date outside the accepted window"


class Replay(GatewayError):
    message = "request already seen"


@dataclass(frozen=True, slots=True)
class OuterReply:
    """A plain response sent before decapsulation; bodies and headers are precomputed."""

    status: int
    headers: dict[str, str]
    body: bytes
    result: Result


def _problem(type_: str, title: str, status: int) -> bytes:
    return json.dumps({"type": type_, "title": title, "status": status}).encode()


def _plain(status: int, result: Result, **extra: str) -> OuterReply:
    return OuterReply(status, {"Content-Type": "text/plain", **extra}, b"", result)


# RFC 9458 §5.3: one problem document for every decapsulation failure, so the response never
# says which step failed (checklist C8); only the metric result differs.
_OHTTP_KEY_BODY = _problem(PROBLEM_OHTTP_KEY, "key configuration not usable", 422)
_OHTTP_KEY_HEADERS = {"Content-Type": PROBLEM_JSON}

_OUTER: dict[type[BaseException], OuterReply] = {
    BadMethod: _plain(405, Result.BAD_METHOD, Allow="GET, POST"),
    BadMediaType: _plain(415, Result.BAD_MEDIA_TYPE),
    BodyTooLarge: _plain(413, Result.TOO_LARGE),
    Overloaded: _plain(503, Result.OVERLOADED, **{"Retry-After": "1"}),
    DecryptionError: OuterReply(422, _OHTTP_KEY_HEADERS, _OHTTP_KEY_BODY, Result.DECRYPT_FAILED),
    DecapsulationError: OuterReply(422, _OHTTP_KEY_HEADERS, _OHTTP_KEY_BODY, Result.KEY_UNKNOWN),
    MalformedError: _plain(400, Result.MALFORMED),
    OHTTPError: _plain(400, Result.MALFORMED),
}


def _lookup(table: dict[type[BaseException], _T], exc: BaseException) -> _T | None:
    for cls in type(exc).__mro__:
        found = table.get(cls)
        if found is not None:
            return found
    return None


def outer_reply(exc: BaseException) -> OuterReply | None:
    """The plain answer for an error raised before decapsulation, or None if it has none."""
    return _lookup(_OUTER, exc)


@dataclass(frozen=True, slots=True)
class InnerReply:
    """An encapsulated error: a Binary HTTP response, its encoding, and the metric result."""

    response: bhttp.Response
    result: Result
    encoded: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "encoded", bhttp.encode_response(self.response))


def _inner(status: int, title: str, result: Result) -> InnerReply:
    body = _problem("about:blank", title, status)
    headers = ((b"content-type", PROBLEM_JSON.encode()),)
    return InnerReply(bhttp.Response(status=status, headers=headers, content=body), result)


_INNER: dict[type[BaseException], InnerReply] = {
    MessageTooLargeError: _inner(413, "message too large", Result.TOO_LARGE),
    MalformedError: _inner(400, "malformed request", Result.MALFORMED),
    ForbiddenTarget: _inner(403, "target not allowed", Result.FORBIDDEN_TARGET),
    # RFC 9458 §5.1: a gateway that receives Expect: 100-continue MUST generate an error.
    ExpectNotAllowed: _inner(417, "expectation failed", Result.MALFORMED),
    # BackendTimeout subclasses BackendError: the MRO walk finds it first.
    BackendTimeout: _inner(504, "gateway timeout", Result.BACKEND_TIMEOUT),
    BackendError: _inner(502, "bad gateway", Result.BACKEND_ERROR),
    # The bhttp encoders raise ValueError for an invalid message. After decapsulation the only
    # message the gateway encodes that it did not build itself is the backend's response (a
    # bad field from the backend): a 502, like any other backend failure.
    ValueError: _inner(502, "bad gateway", Result.BACKEND_ERROR),
    Overloaded: _inner(503, "service unavailable", Result.OVERLOADED),
}
_DATE_BODY = _problem(PROBLEM_DATE, "date not acceptable", 400)
_INNER_FALLBACK = _inner(500, "internal error", Result.BACKEND_ERROR)


def _date_problem(result: Result) -> InnerReply:
    # RFC 9458 §6.5.2: 400 with the #date problem type and the gateway's Date, and marked
    # uncacheable because the answer depends on the clock.
    headers = (
        (b"content-type", PROBLEM_JSON.encode()),
        (b"date", formatdate(usegmt=True).encode()),
        (b"cache-control", b"no-store"),
    )
    return InnerReply(bhttp.Response(status=400, headers=headers, content=_DATE_BODY), result)


def inner_reply(exc: BaseException) -> InnerReply:
    """The encapsulated answer for an error raised after decapsulation.

    A replay gets the same answer as a Date outside the window (RFC 9458 §6.5: the gateway
    rejects it; the client's remedy, a fresh request with a current Date, is the same), so
    the two are indistinguishable even by size; only the metric result differs.
    """
    if isinstance(exc, Replay):
        return _date_problem(Result.REPLAY)
    if isinstance(exc, DateOutOfWindow):
        return _date_problem(Result.DATE)
    return _lookup(_INNER, exc) or _INNER_FALLBACK
