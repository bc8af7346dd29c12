"""The ``PrivateToken`` HTTP authentication scheme (RFC 9577), parsed strictly.

Origin::

    www_authenticate(challenge, token_key)             # -> WWW-Authenticate field value
    token_bytes = parse_authorization(authorization)   # None: another scheme

Client::

    for offer in parse_www_authenticate(field_value):  # every PrivateToken challenge
        offer.challenge, offer.token_key, offer.max_age
    authorization(token)                               # -> Authorization field value

Values are emitted as padded base64url inside quoted strings (RFC 9577 §2.1 and §2.2, as
Safari expects). On input a value may be padded or unpadded, quoted or, when it is a valid
RFC 9110 ``token`` (unpadded base64url only: ``=`` is no tchar), bare. Anything else raises
:class:`~ohttp.privacypass.errors.AuthHeaderError` with a fixed message. A WWW-Authenticate
field may carry several challenges of several schemes, separated by commas like their
parameters (RFC 9110 §11.6.1); the others are skipped but must still parse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ohttp.privacypass._base64 import b64url_decode, b64url_encode
from ohttp.privacypass.blindrsa import BlindRSAPublicKey
from ohttp.privacypass.errors import AuthHeaderError
from ohttp.privacypass.keys import decode_public_key, encode_public_key
from ohttp.privacypass.tokens import Token, TokenChallenge

__all__ = [
    "SCHEME",
    "PrivateTokenChallenge",
    "authorization",
    "parse_authorization",
    "parse_www_authenticate",
    "www_authenticate",
]

SCHEME = "PrivateToken"

# RFC 9110 §5.6.2 token, §5.6.4 quoted-string, §11.2 token68; OWS / BWS are SP and HTAB.
_TCHARS = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
# Unrolled (runs of qdtext between quoted-pairs): one step per run rather than per character,
# and no two ways to match the same text, so a failing match stays linear.
_QDTEXT = r"[\t !#-\[\]-~\x80-\xff]*"
_QUOTED = rf'"{_QDTEXT}(?:\\[\t -~\x80-\xff]{_QDTEXT})*"'
_OWS = r"[ \t]*"
_PARAM = re.compile(rf"({_TCHARS}){_OWS}={_OWS}({_TCHARS}|{_QUOTED})")
_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_SCHEME = re.compile(rf"({_TCHARS})(?: +|(?=[ \t]*(?:,|$)))")
_MAX_AGE = re.compile(r"[0-9]{1,10}")


def _skip_separators(text: str, pos: int) -> int:
    """The position after OWS and commas (empty list elements are allowed, RFC 9110 §5.6.1)."""
    while pos < len(text) and text[pos] in ", \t":
        pos += 1
    return pos


def _error() -> AuthHeaderError:
    return AuthHeaderError("malformed PrivateToken header")


@dataclass(frozen=True)
class PrivateTokenChallenge:
    """One ``PrivateToken`` challenge of a WWW-Authenticate field (RFC 9577 §2.1)."""

    challenge: TokenChallenge
    token_key: BlindRSAPublicKey
    max_age: int | None = None


_Challenge = tuple[str, dict[str, str] | None]  # (scheme, params); None: token68 or nothing


def _unquote(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value[1:-1]) if value.startswith('"') else value


def _params(text: str, pos: int) -> tuple[dict[str, str], int]:
    """auth-params from ``pos`` up to the next scheme; names lower-cased, no duplicates."""
    params: dict[str, str] = {}
    while match := _PARAM.match(text, pos):
        name = match.group(1).lower()
        if name in params:  # RFC 9110 §11.2: each parameter name only once per challenge
            raise _error()
        params[name] = _unquote(match.group(2))
        pos = match.end()
        after = _skip_separators(text, pos)
        if "," not in text[pos:after] or not _PARAM.match(text, after):
            break  # the end, or the next challenge's scheme
        pos = after
    return params, pos


def _challenges(text: str) -> list[_Challenge]:
    """Split a WWW-Authenticate value into challenges (RFC 9110 §11.6.1, §5.6.1 lists)."""
    found: list[_Challenge] = []
    pos = _skip_separators(text, 0)
    while pos < len(text):
        scheme = _SCHEME.match(text, pos)
        if scheme is None:
            raise _error()
        pos = scheme.end()
        token68 = _TOKEN68.match(text, pos)
        if token68 and not _PARAM.match(text, pos):
            found.append((scheme.group(1), None))
            pos = token68.end()
        else:
            params, pos = _params(text, pos)
            found.append((scheme.group(1), params))
        after = _skip_separators(text, pos)
        if after < len(text) and "," not in text[pos:after]:
            raise _error()
        pos = after
    return found


def _decode(params: dict[str, str], name: str) -> bytes:
    value = params.get(name)
    if value is None:
        raise _error()
    return b64url_decode(value, _error())


def _offer(params: dict[str, str]) -> PrivateTokenChallenge:
    challenge = TokenChallenge.decode(_decode(params, "challenge"))
    token_key = decode_public_key(_decode(params, "token-key"))
    max_age = params.get("max-age")
    if max_age is not None and not _MAX_AGE.fullmatch(max_age):
        raise _error()
    return PrivateTokenChallenge(challenge, token_key, None if max_age is None else int(max_age))


def parse_www_authenticate(value: str) -> list[PrivateTokenChallenge]:
    """Every ``PrivateToken`` challenge in a WWW-Authenticate field value, in order.

    Unknown parameters are ignored (RFC 9110 §11.2); ``challenge`` and ``token-key`` are
    required (RFC 9577 §2.1). Raises :class:`AuthHeaderError`, or a
    :class:`~ohttp.privacypass.errors.KeyFormatError` /
    :class:`~ohttp.privacypass.errors.TokenFormatError` for a bad key or challenge.
    """
    offers = []
    for scheme, params in _challenges(value):
        if scheme.lower() == SCHEME.lower():
            if params is None:  # RFC 9577 §2.1 uses auth-params, never token68
                raise _error()
            offers.append(_offer(params))
    return offers


def www_authenticate(
    challenge: TokenChallenge, token_key: BlindRSAPublicKey, max_age: int | None = None
) -> str:
    """A WWW-Authenticate value with one ``PrivateToken`` challenge (RFC 9577 §2.1)."""
    value = (
        f'{SCHEME} challenge="{b64url_encode(challenge.encode())}", '
        f'token-key="{b64url_encode(encode_public_key(token_key))}"'
    )
    return value if max_age is None else f"{value}, max-age={max_age}"


def authorization(token: Token) -> str:
    """An Authorization value carrying ``token`` (RFC 9577 §2.2)."""
    return f'{SCHEME} token="{b64url_encode(token.encode())}"'


def parse_authorization(value: str) -> bytes | None:
    """The token bytes of a ``PrivateToken`` Authorization value; None for another scheme.

    RFC 9110 §11.6.2: one credentials; RFC 9577 §2.2: a required ``token`` parameter.
    The bytes are not decoded here: :func:`~ohttp.privacypass.issuance.verify_token` does it.
    """
    challenges = _challenges(value)
    if len(challenges) != 1:
        raise _error()
    scheme, params = challenges[0]
    if scheme.lower() != SCHEME.lower():
        return None
    if params is None:
        raise _error()
    return _decode(params, "token")
