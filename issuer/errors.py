"""The issuer's errors and the one place that maps them to HTTP answers.

Bodies are empty and headers fixed: nothing in an answer depends on what the client sent.
``SigningError`` (the issuer's own signature failed its check) is a 500 with nothing else;
``StoreUnavailable`` fails closed with a 503.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ohttp.aio.store import StoreUnavailable
from ohttp.privacypass import SigningError, TokenFormatError, TokenRequestError

__all__ = [
    "BadMediaType",
    "IssuerError",
    "IssuerReply",
    "Outcome",
    "QuotaExceeded",
    "RequestTooLarge",
    "Unauthorized",
    "reply_for",
]


class Outcome(StrEnum):
    """The closed set of issuance outcomes (log and metric values)."""

    ISSUED = "issued"
    UNAUTHORIZED = "unauthorized"
    QUOTA = "quota"
    BAD_MEDIA_TYPE = "bad_media_type"
    BAD_REQUEST = "bad_request"
    STORE_UNAVAILABLE = "store_unavailable"
    SIGNING_FAILED = "signing_failed"


class IssuerError(Exception):
    """Base of the issuer's own errors; fixed messages."""


class Unauthorized(IssuerError):
    """No ``Authorization: Bearer`` credential, or one of no known account."""


class QuotaExceeded(IssuerError):
    """The account has had its tokens for this window."""


class BadMediaType(IssuerError):
    """Not ``application/private-token-request``."""


class RequestTooLarge(IssuerError):
    """A body longer than any TokenRequest: refused before it is read whole."""


@dataclass(frozen=True)
class IssuerReply:
    status: int
    headers: dict[str, str]
    outcome: Outcome


_NO_STORE = {"Cache-Control": "no-store"}
_REPLIES: dict[type[BaseException], IssuerReply] = {
    # RFC 9110 §11.6.1: a 401 carries a challenge; RFC 6750 §3 names the Bearer scheme.
    Unauthorized: IssuerReply(
        401, {**_NO_STORE, "WWW-Authenticate": "Bearer"}, Outcome.UNAUTHORIZED
    ),
    BadMediaType: IssuerReply(415, dict(_NO_STORE), Outcome.BAD_MEDIA_TYPE),
    # RFC 9578 §6.2: a request of the wrong length, type or key is 422 Unprocessable Content.
    RequestTooLarge: IssuerReply(422, dict(_NO_STORE), Outcome.BAD_REQUEST),
    TokenRequestError: IssuerReply(422, dict(_NO_STORE), Outcome.BAD_REQUEST),
    TokenFormatError: IssuerReply(422, dict(_NO_STORE), Outcome.BAD_REQUEST),
    StoreUnavailable: IssuerReply(
        503, {**_NO_STORE, "Retry-After": "1"}, Outcome.STORE_UNAVAILABLE
    ),
    SigningError: IssuerReply(500, dict(_NO_STORE), Outcome.SIGNING_FAILED),
}


def reply_for(exc: BaseException, window: float) -> IssuerReply | None:
    """The answer for ``exc``, or None if it is not one of the issuer's errors (a bug)."""
    if isinstance(exc, QuotaExceeded):
        # RFC 6585 §4: 429, with how long until the account's window has surely passed.
        retry = {**_NO_STORE, "Retry-After": str(int(window))}
        return IssuerReply(429, retry, Outcome.QUOTA)
    for cls in type(exc).__mro__:
        found = _REPLIES.get(cls)
        if found is not None:
            return found
    return None
