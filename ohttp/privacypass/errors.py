"""The exception tree of Privacy Pass, under :class:`ohttp.errors.OHTTPError`.

Every message is a fixed string: no input bytes, token bytes or key material ever appear in
one, so an error can be logged or answered without leaking what a client sent.

- :class:`PrivacyPassError`: base of everything below;
- :class:`TokenFormatError` (also a :class:`~ohttp.errors.MalformedError`): bytes that do not
  follow the RFC 9577/9578 encodings; :class:`AuthHeaderError` for HTTP header fields and
  :class:`KeyFormatError` for key encodings are kinds of it;
- :class:`BlindingError`: the client cannot blind this message under this key (RFC 9474 §4.2);
- :class:`TokenRequestError`: the issuer rejects a TokenRequest (type, key id, length);
- :class:`SigningError`: the issuer's own signature failed its check (a fault), never returned;
- :class:`InvalidSignatureError`: an RSA-PSS signature does not verify (the client's Finalize);
- :class:`TokenVerificationError`: the origin rejects a token; one subclass per reason.
"""

from __future__ import annotations

from ohttp.errors import MalformedError, OHTTPError

__all__ = [
    "AuthHeaderError",
    "BlindingError",
    "ChallengeMismatchError",
    "InvalidSignatureError",
    "InvalidTokenSignatureError",
    "KeyFormatError",
    "PrivacyPassError",
    "SigningError",
    "TokenFormatError",
    "TokenRequestError",
    "TokenVerificationError",
    "UnknownTokenKeyError",
    "WrongTokenTypeError",
]


class PrivacyPassError(OHTTPError):
    """Base class of every Privacy Pass error."""


class TokenFormatError(PrivacyPassError, MalformedError):
    """Bytes that do not follow a Privacy Pass encoding (RFC 9577 §2.1, RFC 9578 §6)."""


class AuthHeaderError(TokenFormatError):
    """A ``PrivateToken`` WWW-Authenticate or Authorization field that does not parse."""


class KeyFormatError(TokenFormatError):
    """An issuer key encoding that is not the one RFC 9578 §6.5 prescribes."""


class BlindingError(PrivacyPassError):
    """The message cannot be blinded under this key (RFC 9474 §4.2)."""


class TokenRequestError(PrivacyPassError):
    """The issuer rejects a TokenRequest: wrong type, key id or length (RFC 9578 §6.3)."""


class SigningError(PrivacyPassError):
    """The issuer's signature failed its own check; nothing is returned (RFC 9474 §4.3)."""


class InvalidSignatureError(PrivacyPassError):
    """An RSASSA-PSS signature does not verify (RFC 9474 §4.4)."""


class TokenVerificationError(PrivacyPassError):
    """The origin rejects a token (RFC 9578 §6.4); the subclass says why."""


class WrongTokenTypeError(TokenVerificationError):
    """The token's type is not the one expected."""


class UnknownTokenKeyError(TokenVerificationError):
    """The token names an issuer key the origin does not know."""


class ChallengeMismatchError(TokenVerificationError):
    """The token was issued for another challenge."""


class InvalidTokenSignatureError(TokenVerificationError):
    """The token's authenticator is not a valid signature of its token input."""
