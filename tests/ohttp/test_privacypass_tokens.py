"""Token type 0x0002 (RFC 9578 §6): published vectors byte for byte, strict parsing, checks."""

from __future__ import annotations

import secrets
from typing import Any, ClassVar

import pytest

from ohttp.privacypass import (
    NK,
    BlindRSAPublicKey,
    ChallengeMismatchError,
    InvalidSignatureError,
    InvalidTokenSignatureError,
    Token,
    TokenChallenge,
    TokenFormatError,
    TokenRequest,
    TokenRequestError,
    TokenVerificationError,
    UnknownTokenKeyError,
    WrongTokenTypeError,
    begin_issuance,
    finalize,
    issue,
    verify_token,
)
from tests.ohttp.privacypass_support import (
    TYPE2,
    TYPE2_DRAFT,
    fresh_issuer,
    scripted,
    unhex,
    vector_issuer,
)

CHALLENGE = TokenChallenge(2, b"issuer.example", b"\x07" * 32, b"origin.example")


@pytest.fixture(
    params=TYPE2 + TYPE2_DRAFT,
    ids=[f"pat-go-{i + 1}" for i in range(len(TYPE2))]
    + [f"draft-{i + 1}" for i in range(len(TYPE2_DRAFT))],
)
def vector(request: pytest.FixtureRequest) -> dict[str, Any]:
    return dict(request.param)


def _rng(vector: dict[str, Any]) -> Any:
    return scripted(unhex(vector["nonce"]), unhex(vector["salt"]), unhex(vector["blind"]))


def test_challenge_round_trips_like_the_vector(vector: dict[str, Any]) -> None:
    encoded = unhex(vector["token_challenge"])
    assert TokenChallenge.decode(encoded).encode() == encoded


def test_issuance_reproduces_the_vector(vector: dict[str, Any]) -> None:
    issuer = vector_issuer()
    challenge = TokenChallenge.decode(unhex(vector["token_challenge"]))
    request, state = begin_issuance(challenge, issuer.public_key, _rng(vector))
    assert request == unhex(vector["token_request"])
    response = issue(issuer, request)
    assert response == unhex(vector["token_response"])
    token = finalize(state, response)
    assert token.encode() == unhex(vector["token"])
    keys = {issuer.token_key_id: issuer.public_key}
    assert verify_token(unhex(vector["token"]), keys, challenge.digest()) == token


def test_a_fresh_key_issues_and_verifies() -> None:
    issuer, _ = fresh_issuer()
    request, state = begin_issuance(CHALLENGE, issuer.public_key)
    token = finalize(state, issue(issuer, request))
    verify_token(token, {issuer.token_key_id: issuer.public_key}, CHALLENGE.digest())
    assert token.token_key_id == issuer.token_key_id


@pytest.mark.parametrize(
    "fields",
    [
        (2, b"", b"", b""),  # issuer_name<1..2^16-1>
        (2, b"issuer", b"\x00" * 16, b""),  # redemption_context is 0 or 32 bytes
        (2, b"x" * 0x10000, b"", b""),
        (0x10000, b"issuer", b"", b""),
    ],
)
def test_challenge_rejects_out_of_range_fields(fields: tuple[Any, ...]) -> None:
    with pytest.raises(TokenFormatError, match=r"^malformed token challenge$"):
        TokenChallenge(*fields)


@pytest.mark.parametrize("cut", [1, 3, 5, -1])
def test_challenge_decode_is_strict(cut: int) -> None:
    encoded = CHALLENGE.encode()
    with pytest.raises(TokenFormatError):
        TokenChallenge.decode(encoded[:cut])
    with pytest.raises(TokenFormatError):
        TokenChallenge.decode(encoded + b"\x00")


def test_request_and_token_decode_are_strict() -> None:
    request = unhex(TYPE2[0]["token_request"])
    assert TokenRequest.decode(request).encode() == request
    token = unhex(TYPE2[0]["token"])
    assert Token.decode(token).encode() == token
    for data, parse in ((request, TokenRequest.decode), (token, Token.decode)):
        with pytest.raises(TokenFormatError):
            parse(data[:-1])
        with pytest.raises(TokenFormatError):
            parse(data + b"\x00")
    with pytest.raises(TokenFormatError, match="unsupported token type"):
        Token.decode(b"\x00\x01" + token[2:])


def _request() -> bytes:
    return unhex(TYPE2[0]["token_request"])


@pytest.mark.parametrize(
    ("request_bytes", "message"),
    [
        (_request()[:-1], "token request has the wrong length"),
        (_request() + b"\x00", "token request has the wrong length"),
        (b"\x00\x01" + _request()[2:], "unsupported token type"),
        (_request()[:2] + bytes([_request()[2] ^ 0xFF]) + _request()[3:], "unknown token key"),
    ],
    ids=["short", "long", "type", "key-id"],
)
def test_issuer_rejects_bad_requests_with_fixed_messages(
    request_bytes: bytes, message: str
) -> None:
    with pytest.raises(TokenRequestError) as info:
        issue(vector_issuer(), request_bytes)
    assert str(info.value) == message


def test_begin_issuance_refuses_other_token_types() -> None:
    other = TokenChallenge(1, b"issuer.example")
    with pytest.raises(TokenFormatError):
        begin_issuance(other, vector_issuer().public_key)


def test_finalize_rejects_a_bad_response() -> None:
    issuer = vector_issuer()
    _, state = begin_issuance(CHALLENGE, issuer.public_key)
    with pytest.raises(TokenFormatError, match=r"^malformed token response$"):
        finalize(state, b"\x00" * (NK - 1))
    with pytest.raises(InvalidSignatureError):
        finalize(state, secrets.token_bytes(NK))


def test_state_repr_hides_the_blinding_inverse() -> None:
    _, state = begin_issuance(CHALLENGE, vector_issuer().public_key)
    assert state.inv.hex() not in repr(state)


class TestVerifyToken:
    issuer = vector_issuer()
    keys: ClassVar[dict[bytes, BlindRSAPublicKey]] = {issuer.token_key_id: issuer.public_key}
    token = unhex(TYPE2[0]["token"])
    digest = TokenChallenge.decode(unhex(TYPE2[0]["token_challenge"])).digest()

    def test_valid(self) -> None:
        assert verify_token(self.token, self.keys, self.digest).token_type == 2

    def test_wrong_type(self) -> None:
        with pytest.raises(WrongTokenTypeError):
            verify_token(b"\x00\x01" + self.token[2:], self.keys, self.digest)
        parsed = Token.decode(self.token)
        other = Token(1, parsed.nonce, parsed.challenge_digest, parsed.token_key_id, b"")
        with pytest.raises(WrongTokenTypeError):
            verify_token(other, self.keys, self.digest)

    def test_unknown_key(self) -> None:
        with pytest.raises(UnknownTokenKeyError):
            verify_token(self.token, {b"\x00" * 32: self.issuer.public_key}, self.digest)

    def test_wrong_challenge(self) -> None:
        with pytest.raises(ChallengeMismatchError):
            verify_token(self.token, self.keys, CHALLENGE.digest())

    def test_bad_signature(self) -> None:
        forged = self.token[:-1] + bytes([self.token[-1] ^ 1])
        with pytest.raises(InvalidTokenSignatureError) as info:
            verify_token(forged, self.keys, self.digest)
        assert str(info.value) == "invalid token signature"

    def test_altered_nonce(self) -> None:
        altered = self.token[:2] + bytes([self.token[2] ^ 1]) + self.token[3:]
        with pytest.raises(InvalidTokenSignatureError):
            verify_token(altered, self.keys, self.digest)

    def test_malformed(self) -> None:
        with pytest.raises(TokenFormatError):
            verify_token(self.token[:-1], self.keys, self.digest)
        with pytest.raises(TokenFormatError):
            verify_token(b"", self.keys, self.digest)

    def test_every_rejection_is_a_verification_error(self) -> None:
        for error in (WrongTokenTypeError, UnknownTokenKeyError, ChallengeMismatchError):
            assert issubclass(error, TokenVerificationError)
