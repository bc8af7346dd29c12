"""The gateway's exceptions, and the one place that maps them to answers (RFC 9458 §5.2).

The two planes are two base classes. An ``OuterError`` happens before decapsulation and gets a
plain (unencapsulated) HTTP status. An ``InnerError`` happens after it, and becomes an inner
Binary HTTP response sealed inside an outer ``200 message/ohttp-res``; failures of the target
(``BackendError``) are inner errors. Core errors (``ohttp.errors``) carry no plane: the
pipeline passes them to ``outer_reply`` or ``inner_reply`` by where they were raised. No
builtin exception has an entry: whatever is not an error of these tables (a bug) gets the
inner 500 fallback. Each mapping also names the closed metric result. Nothing here depends on
request content: bodies and messages are fixed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from email.utils import formatdate
from enum import StrEnum
from typing import ClassVar, TypeVar

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
    "BackendError",
    "BackendResponseInvalid",
    "BackendTimeout",
    "BadContentEncoding",
    "BadMediaType",
    "BadMethod",
    "BodyTimeout",
    "BodyTooLarge",
    "DateOutOfWindow",
    "ExpectNotAllowed",
    "ForbiddenTarget",
    "GatewayError",
    "InnerError",
    "InnerReply",
    "OuterError",
    "OuterReply",
    "Overloaded",
    "Replay",
    "ReplayCacheFull",
    "Result",
    "StateUnavailable",
    "TokenChallengeMismatch",
    "TokenForged",
    "TokenKeysUnavailable",
    "TokenMalformed",
    "TokenMissing",
    "TokenRejected",
    "TokenSpent",
    "TokenUnknownKey",
    "TransferCodingNotImplemented",
    "Unauthorized",
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
    # Privacy Pass (--require-token): one result per reason a token is refused (labels, not
    # secrets, whatever the S105 lint guesses from the name).
    TOKEN_MISSING = "token_missing"  # noqa: S105 - a metric label
    TOKEN_MALFORMED = "token_malformed"  # noqa: S105 - a metric label
    TOKEN_UNKNOWN_KEY = "token_unknown_key"  # noqa: S105 - a metric label
    TOKEN_WRONG_CHALLENGE = "token_wrong_challenge"  # noqa: S105 - a metric label
    TOKEN_FORGED = "token_forged"  # noqa: S105 - a metric label
    TOKEN_SPENT = "token_spent"  # noqa: S105 - a metric label
    STATE_UNAVAILABLE = "state_unavailable"
    BODY_TIMEOUT = "body_timeout"
    UNAUTHORIZED = "unauthorized"


class GatewayError(Exception):
    """Base of the gateway's own errors. Messages are fixed strings."""

    message: ClassVar[str] = "gateway error"

    def __init__(self) -> None:
        super().__init__(self.message)


class OuterError(GatewayError):
    """Found before decapsulation: answered with a plain HTTP status."""


class InnerError(GatewayError):
    """Found after decapsulation: answered with an encapsulated Binary HTTP response."""


class BadMethod(OuterError):
    message = "method not allowed"


class BadMediaType(OuterError):
    message = "unsupported media type"


class BadContentEncoding(OuterError):
    """RFC 9110 §8.4: an encapsulated request is never content-coded; refused unread."""

    message = "unsupported content coding"


class TransferCodingNotImplemented(OuterError):
    """RFC 9112 §6.1: a transfer coding other than exactly ``chunked``; the body is not read."""

    message = "transfer coding not implemented"


class BodyTooLarge(OuterError):
    message = "request body too large"


class BodyTimeout(OuterError):
    """The request body did not arrive within ``body_timeout`` of its head (slow body)."""

    message = "request body timed out"


class Overloaded(OuterError):
    """Too many requests in flight: refused before any decryption work."""

    message = "too many requests in flight"


class Unauthorized(OuterError):
    """``--relay-token-file``: the request carries no accepted token; refused unread."""

    message = "relay not authenticated"


class ForbiddenTarget(InnerError):
    message = "target not allowed"


class ExpectNotAllowed(InnerError):
    message = "expectation not supported"


class DateOutOfWindow(InnerError):
    message = "date outside the accepted window"


class Replay(InnerError):
    message = "request already seen"


class ReplayCacheFull(InnerError):
    """The replay cache holds as many live requests as it may: no room to remember this one."""

    message = "replay cache full"


class StateUnavailable(InnerError):
    """The shared state store (replay records, spent tokens) did not answer: the request
    cannot be checked."""

    message = "state store unavailable"


class BackendError(InnerError):
    """The backend failed to produce a response: an inner 502.

    ``message`` may be replaced by another fixed string; never by request content.
    """

    message = "backend failed"

    def __init__(self, message: str | None = None) -> None:
        Exception.__init__(self, self.message if message is None else message)


class BackendTimeout(BackendError):
    """The backend did not answer in time: an inner 504."""

    message = "backend timed out"


class BackendResponseInvalid(BackendError):
    """The backend's response cannot be encoded as Binary HTTP (e.g. a bad field name)."""

    message = "backend response not encodable"


class TokenRejected(InnerError):
    """No acceptable Privacy Pass token: a 401 with ``challenge`` (a WWW-Authenticate value)."""

    message = "token required"
    result: ClassVar[Result] = Result.TOKEN_MALFORMED  # each subclass names its own reason

    def __init__(self, challenge: str) -> None:
        super().__init__()
        self.challenge = challenge


class TokenMissing(TokenRejected):
    result = Result.TOKEN_MISSING


class TokenMalformed(TokenRejected):
    result = Result.TOKEN_MALFORMED


class TokenUnknownKey(TokenRejected):
    result = Result.TOKEN_UNKNOWN_KEY


class TokenChallengeMismatch(TokenRejected):
    result = Result.TOKEN_WRONG_CHALLENGE


class TokenForged(TokenRejected):
    result = Result.TOKEN_FORGED


class TokenSpent(TokenRejected):
    result = Result.TOKEN_SPENT


class TokenKeysUnavailable(InnerError):
    """The issuer's keys have not been fetched yet: no token can be checked."""

    message = "token keys unavailable"


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


def _key_problem(result: Result) -> OuterReply:
    return OuterReply(422, {"Content-Type": PROBLEM_JSON}, _OHTTP_KEY_BODY, result)


_OUTER: dict[type[BaseException], OuterReply] = {
    BadMethod: _plain(405, Result.BAD_METHOD, Allow="GET, POST"),
    BadMediaType: _plain(415, Result.BAD_MEDIA_TYPE),
    # RFC 9110 §15.5.16 / §12.5.3: 415 for a content coding, naming the only one accepted.
    BadContentEncoding: _plain(415, Result.BAD_MEDIA_TYPE, **{"Accept-Encoding": "identity"}),
    BodyTooLarge: _plain(413, Result.TOO_LARGE),
    # RFC 9112 §6.1, §6.3: an unknown transfer coding is 501, and the framing is unknowable,
    # so the connection is closed.
    TransferCodingNotImplemented: _plain(501, Result.MALFORMED, Connection="close"),
    Overloaded: _plain(503, Result.OVERLOADED, **{"Retry-After": "1"}),
    # RFC 9110 §15.5.9: 408, and the connection is closed (the rest of the body is unread).
    BodyTimeout: _plain(408, Result.BODY_TIMEOUT, Connection="close"),
    # RFC 9110 §11.6.1: a 401 names the scheme it wants.
    Unauthorized: _plain(401, Result.UNAUTHORIZED, **{"WWW-Authenticate": "Bearer"}),
    DecryptionError: _key_problem(Result.DECRYPT_FAILED),
    DecapsulationError: _key_problem(Result.KEY_UNKNOWN),
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
    ReplayCacheFull: _inner(503, "service unavailable", Result.OVERLOADED),
    TokenKeysUnavailable: _inner(503, "service unavailable", Result.OVERLOADED),
}
# The store is back within seconds or the operator is on it: come back soon, with a fresh
# request (a request the gateway could not check was not processed).
_INNER[StateUnavailable] = InnerReply(
    bhttp.Response(
        status=503,
        headers=((b"content-type", PROBLEM_JSON.encode()), (b"retry-after", b"1")),
        content=_problem("about:blank", "service unavailable", 503),
    ),
    Result.STATE_UNAVAILABLE,
)
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
    if isinstance(exc, TokenRejected):
        return _token_problem(exc)
    return _lookup(_INNER, exc) or _INNER_FALLBACK


_TOKEN_BODY = _problem("about:blank", "token required", 401)
_TOKEN_REPLIES: dict[tuple[Result, str], InnerReply] = {}


def _token_problem(exc: TokenRejected) -> InnerReply:
    # RFC 9577 §2.1: 401 with a PrivateToken challenge. One body for every reason, so the
    # answer says nothing of why; the challenge only changes when the issuer's keys do.
    reply = _TOKEN_REPLIES.get((exc.result, exc.challenge))
    if reply is None:
        headers = (
            (b"content-type", PROBLEM_JSON.encode()),
            (b"www-authenticate", exc.challenge.encode("ascii")),
            (b"cache-control", b"no-store"),
        )
        response = bhttp.Response(status=401, headers=headers, content=_TOKEN_BODY)
        reply = InnerReply(response, exc.result)
        if len(_TOKEN_REPLIES) >= 64:  # old challenges after rotations
            _TOKEN_REPLIES.clear()
        _TOKEN_REPLIES[(exc.result, exc.challenge)] = reply
    return reply
