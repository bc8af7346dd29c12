"""The gateway's Privacy Pass check (gateway.pipeline.tokens), the 401 it gives, its settings."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from gateway.config import GatewayConfig, SettingsError
from gateway.errors import (
    Result,
    StateUnavailable,
    TokenChallengeMismatch,
    TokenForged,
    TokenMalformed,
    TokenMissing,
    TokenRejected,
    TokenSpent,
    TokenUnknownKey,
    inner_reply,
)
from gateway.pipeline.tokens import TokenGate
from ohttp import bhttp
from ohttp.aio.store import MemoryStore, StoreUnavailable
from ohttp.aio.wallet import gateway_challenge
from ohttp.privacypass import (
    IssuerKeyPair,
    Token,
    authorization,
    begin_issuance,
    encode_token_key,
    finalize,
    generate_issuer_key,
    issue,
    parse_www_authenticate,
)

ISSUER = "issuer.test"
ORIGIN = "gw.example"


@pytest.fixture(scope="module")
def pair() -> IssuerKeyPair:
    return generate_issuer_key()[0]


@pytest.fixture
def directory(tmp_path: Path, pair: IssuerKeyPair) -> Path:
    path = tmp_path / "directory.json"
    document = {
        "issuer-request-uri": "/token-request",
        "token-keys": [{"token-type": 2, "token-key": encode_token_key(pair.public_key)}],
    }
    path.write_text(json.dumps(document))
    return path


def _gate(directory: Path, store: MemoryStore | None = None) -> TokenGate:
    store = MemoryStore() if store is None else store  # an empty store is falsy (len 0)
    return TokenGate(str(directory), ORIGIN, store, issuer=ISSUER, spent_ttl=60)


def _token(pair: IssuerKeyPair, origin: str = ORIGIN) -> Token:
    request, state = begin_issuance(gateway_challenge(ISSUER.encode(), origin), pair.public_key)
    return finalize(state, issue(pair, request))


def _request(*values: str) -> bhttp.Request:
    headers = ((b"x-other", b"1"), *((b"authorization", v.encode()) for v in values))
    return bhttp.Request(b"GET", b"https", b"echo.internal", b"/", headers, b"")


async def test_a_good_token_passes_once_and_leaves(directory: Path, pair: IssuerKeyPair) -> None:
    gate = _gate(directory)
    token = _token(pair)
    passed = await gate.check(_request(authorization(token), "Bearer backend-credential"))
    # Only the PrivateToken credential is taken out; the backend's own stays.
    assert passed.headers == ((b"x-other", b"1"), (b"authorization", b"Bearer backend-credential"))
    with pytest.raises(TokenSpent):
        await gate.check(_request(authorization(token)))


async def test_each_refusal_has_its_reason(directory: Path, pair: IssuerKeyPair) -> None:
    gate = _gate(directory)
    token = _token(pair)
    flipped = bytes([token.authenticator[0] ^ 1]) + token.authenticator[1:]
    forged = replace(token, authenticator=flipped)
    cases: list[tuple[tuple[str, ...], type[TokenRejected]]] = [
        ((), TokenMissing),
        (("Bearer abc",), TokenMissing),
        (("PrivateToken token=!!",), TokenMalformed),
        (("PrivateToken token=AAAA",), TokenMalformed),
        ((authorization(token), authorization(token)), TokenMalformed),
        ((authorization(_token(generate_issuer_key()[0])),), TokenUnknownKey),
        ((authorization(_token(pair, "elsewhere.example")),), TokenChallengeMismatch),
        ((authorization(forged),), TokenForged),
    ]
    for values, expected in cases:
        with pytest.raises(expected) as raised:
            await gate.check(_request(*values))
        (offer,) = parse_www_authenticate(raised.value.challenge)
        assert offer.challenge == gateway_challenge(ISSUER.encode(), ORIGIN)
        assert offer.token_key == pair.public_key
    await gate.check(_request(authorization(token)))  # refusals spent nothing


def test_every_refusal_is_the_same_401_but_its_metric(directory: Path) -> None:
    challenge = 'PrivateToken challenge="AAA=", token-key="AAA="'
    replies = [inner_reply(cls(challenge)) for cls in TokenRejected.__subclasses__()]
    assert {reply.encoded for reply in replies} == {replies[0].encoded}
    assert len({reply.result for reply in replies}) == len(replies)
    response = replies[0].response
    assert response.status == 401
    assert (b"www-authenticate", challenge.encode()) in response.headers
    assert inner_reply(StateUnavailable()).response.status == 503
    assert inner_reply(TokenSpent(challenge)).result is Result.TOKEN_SPENT


class _DownStore(MemoryStore):
    async def add(self, key: bytes, ttl: float) -> bool:
        raise StoreUnavailable("down")


async def test_store_down_fails_closed(directory: Path, pair: IssuerKeyPair) -> None:
    with pytest.raises(StateUnavailable):
        await _gate(directory, _DownStore()).check(_request(authorization(_token(pair))))


async def test_spent_records_are_digests(directory: Path, pair: IssuerKeyPair) -> None:
    store = MemoryStore()
    token = _token(pair)
    await _gate(directory, store).check(_request(authorization(token)))
    (key,) = store._values
    assert token.nonce not in key and token.authenticator[:16] not in key


def test_settings() -> None:
    config = GatewayConfig(require_token="https://issuer.example/.well-known/x")
    assert config.token_spent_ttl > 0
    with pytest.raises(SettingsError):
        GatewayConfig(require_token="directory.json")  # a file needs token_issuer
    with pytest.raises(SettingsError):
        GatewayConfig(require_token="http:///nohost")
    with pytest.raises(SettingsError):
        GatewayConfig(require_token="https://i.example/", token_origin="é")
    GatewayConfig(require_token="directory.json", token_issuer=ISSUER)
    # Workers share the supervisor's store (or Redis), so spent tokens are seen by all.
    GatewayConfig(require_token="https://i.example/", workers=2)
