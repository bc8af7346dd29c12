"""The PrivateToken HTTP authentication scheme (RFC 9577 §2), parsed strictly."""

from __future__ import annotations

import base64

import pytest

from ohttp.privacypass import (
    AuthHeaderError,
    KeyFormatError,
    Token,
    TokenChallenge,
    TokenFormatError,
    authorization,
    encode_public_key,
    parse_authorization,
    parse_www_authenticate,
    www_authenticate,
)
from tests.ohttp.privacypass_support import TYPE2, unhex, vector_issuer

CHALLENGE = TokenChallenge.decode(unhex(TYPE2[0]["token_challenge"]))
TOKEN = Token.decode(unhex(TYPE2[0]["token"]))
KEY = vector_issuer().public_key


def _b64(data: bytes, *, pad: bool = True) -> str:
    text = base64.urlsafe_b64encode(data).decode()
    return text if pad else text.rstrip("=")


C64, K64, T64 = _b64(CHALLENGE.encode()), _b64(encode_public_key(KEY)), _b64(TOKEN.encode())


def test_www_authenticate_is_padded_base64url_in_quotes() -> None:
    value = www_authenticate(CHALLENGE, KEY, max_age=10)
    assert value == f'PrivateToken challenge="{C64}", token-key="{K64}", max-age=10'
    assert C64.endswith("==")  # a 67-byte challenge needs padding
    [offer] = parse_www_authenticate(value)
    assert (offer.challenge, offer.token_key, offer.max_age) == (CHALLENGE, KEY, 10)


def test_authorization_round_trips() -> None:
    value = authorization(TOKEN)
    assert value == f'PrivateToken token="{T64}"'
    assert parse_authorization(value) == TOKEN.encode()


@pytest.mark.parametrize(
    "value",
    [
        f'PrivateToken token="{T64.rstrip("=")}"',  # unpadded, quoted
        f"PrivateToken token={T64.rstrip('=')}",  # unpadded bare token (RFC 9110 token)
        f'privatetoken TOKEN = "{T64}"',  # case-insensitive scheme and name, BWS
        f'PrivateToken   token="{T64}", other=1',  # unknown parameters are ignored
    ],
)
def test_authorization_accepts_what_the_rfcs_allow(value: str) -> None:
    assert parse_authorization(value) == TOKEN.encode()


@pytest.mark.parametrize(
    "value",
    [
        "PrivateToken token=AA==",  # '=' is no tchar: padded values must be quoted
        f"PrivateToken {T64}",  # token68 form
        'PrivateToken token="a+b/"',  # base64, not base64url
        'PrivateToken token="AB=C"',  # padding inside
        'PrivateToken token="A"',  # impossible length
        'PrivateToken token="AB"',  # non-zero trailing bits (canonical is "AA")
        f'PrivateToken token="{T64}", token="{T64}"',  # duplicate parameter
        "PrivateToken other=1",  # token missing
        f'PrivateToken token="{T64}" trailing',
        f'PrivateToken token="{T64}", Basic abc',  # two credentials
        f'PrivateToken token="{T64}',  # unterminated quote
        "PrivateToken",
        "",
    ],
)
def test_authorization_rejects_everything_else(value: str) -> None:
    with pytest.raises(AuthHeaderError) as info:
        parse_authorization(value)
    assert str(info.value) == "malformed PrivateToken header"


def test_padded_values_are_fine_when_quoted() -> None:
    assert parse_authorization('PrivateToken token="AA=="') == b"\x00"


def test_authorization_of_another_scheme_is_none() -> None:
    assert parse_authorization("Basic dXNlcjpwYXNz") is None
    assert parse_authorization('Bearer realm="x"') is None


def test_several_challenges_in_one_field() -> None:
    other = TokenChallenge(2, b"issuer.example", b"", b"")
    value = ", ".join(
        [
            'Basic realm="a, b", charset=UTF-8',
            f'PrivateToken challenge="{C64}", token-key="{K64}"',
            "Negotiate abc==",
            f"PrivateToken token-key={K64.rstrip('=')}, max-age=0, "
            f'challenge="{_b64(other.encode(), pad=False)}"',
            "Digest",
        ]
    )
    offers = parse_www_authenticate(value)
    assert [o.challenge for o in offers] == [CHALLENGE, other]
    assert [o.max_age for o in offers] == [None, 0]
    assert all(o.token_key == KEY for o in offers)


def test_no_private_token_challenge_is_an_empty_list() -> None:
    assert parse_www_authenticate('Basic realm="x", Bearer') == []


@pytest.mark.parametrize(
    "value",
    [
        f'PrivateToken challenge="{C64}"',  # token-key missing
        f'PrivateToken token-key="{K64}"',  # challenge missing
        f'PrivateToken challenge="{C64}", token-key="{K64}", max-age=-1',
        f'PrivateToken challenge="{C64}", token-key="{K64}", max-age="1 "',
        f'PrivateToken challenge="{C64}", challenge="{C64}", token-key="{K64}"',
        f"PrivateToken {C64}",  # token68
        f'PrivateToken challenge="{C64}" token-key="{K64}"',  # missing comma
        '"Basic" realm=x',
        'Basic realm="x',
        f"PrivateToken challenge={C64}, token-key={K64}",  # padded challenge unquoted
    ],
)
def test_www_authenticate_rejects_malformed_fields(value: str) -> None:
    with pytest.raises(AuthHeaderError, match=r"^malformed PrivateToken header$"):
        parse_www_authenticate(value)


def test_bad_key_and_bad_challenge_bytes_raise_their_own_errors() -> None:
    bad_key = _b64(encode_public_key(KEY)[:-1])
    with pytest.raises(KeyFormatError):
        parse_www_authenticate(f'PrivateToken challenge="{C64}", token-key="{bad_key}"')
    bad_challenge = _b64(CHALLENGE.encode() + b"\x00")
    with pytest.raises(TokenFormatError):
        parse_www_authenticate(f'PrivateToken challenge="{bad_challenge}", token-key="{K64}"')


def test_quoted_pairs_are_unescaped() -> None:
    escaped = "".join("\\" + c for c in T64)
    assert parse_authorization(f'PrivateToken token="{escaped}"') == TOKEN.encode()
