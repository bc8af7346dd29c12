"""The client's wallet and token source against a real issuer app on 127.0.0.1."""

from __future__ import annotations

import json
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from issuer.app import create_app
from issuer.config import IssuerConfig
from issuer.keys import write_issuer_key
from ohttp.aio.wallet import (
    TokenFetchError,
    TokenSource,
    Wallet,
    WalletError,
    directory_url,
    parse_directory,
)
from ohttp.privacypass import verify_token, www_authenticate

ACCOUNT = "acct-wallet-4e8b1d"


@pytest.fixture
async def issuer(tmp_path: Path) -> AsyncIterator[str]:
    write_issuer_key(tmp_path / "issuer.pem")
    (tmp_path / "accounts").write_text(ACCOUNT + "\n")
    config = IssuerConfig(key=tmp_path / "issuer.pem", accounts=tmp_path / "accounts")
    server = TestServer(create_app(config), host="127.0.0.1")
    await server.start_server()
    try:
        yield directory_url(str(server.make_url("/")))
    finally:
        await server.close()


async def test_refills_in_the_background_before_running_dry(issuer: str, tmp_path: Path) -> None:
    wallet = Wallet(issuer, "gw.example", path=tmp_path / "wallet.json")
    source = TokenSource(wallet, credential=ACCOUNT, batch=3, refill_below=3)
    try:
        first = await source.token()  # empty: waits for one batch
        assert first is not None and len(wallet) == 2
        assert source._refill is not None
        await source._refill  # the batch fetched in the background
        assert len(wallet) == 5
    finally:
        await source.aclose()
    assert stat.S_IMODE(wallet.path.stat().st_mode) == 0o600  # type: ignore[union-attr]
    reloaded = Wallet.load(tmp_path / "wallet.json")
    assert [t.nonce for t in reloaded.tokens] == [t.nonce for t in wallet.tokens]
    assert first.nonce not in {t.nonce for t in reloaded.tokens}  # removed before spending


async def test_answers_only_its_issuers_challenge(issuer: str) -> None:
    wallet = Wallet(issuer, "gw.example")
    source = TokenSource(wallet, credential=ACCOUNT, batch=1, refill_below=0)
    try:
        await source.refill()
        directory = await source._fetch_directory(fresh=True)
        key = directory.keys[0]
        token = await source.answer(www_authenticate(wallet.challenge, key))
        assert token is not None
        verify_token(token, {token.token_key_id: key}, wallet.challenge.digest())
        other = Wallet("https://other.example/", "gw.example").challenge
        assert await source.answer(www_authenticate(other, key)) is None
        assert await source.answer("PrivateToken garbage") is None
        assert await TokenSource(wallet).answer(www_authenticate(wallet.challenge, key)) is None
    finally:
        await source.aclose()


async def test_a_refused_account_gets_nothing(issuer: str) -> None:
    source = TokenSource(Wallet(issuer, "gw.example"), credential="not-an-account")
    try:
        with pytest.raises(TokenFetchError):
            await source.refill()
        with pytest.raises(TokenFetchError):
            await source.token()  # an empty wallet waits for issuance, which fails
        assert await TokenSource(Wallet(source.wallet.issuer, "gw.example")).token() is None
    finally:
        await source.aclose()


def test_wallet_file_and_directory_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    for content in ("", "{}", json.dumps({"issuer": "x", "origin": "y", "tokens": ["AA=="]})):
        path.write_text(content)
        with pytest.raises(WalletError):
            Wallet.load(path)
    for body in (b"", b"[]", b'{"issuer-request-uri": "/t", "token-keys": []}',
                 b'{"issuer-request-uri": "/t", "token-keys": [{"token-type": 1}]}'):  # fmt: skip
        with pytest.raises(ValueError):
            parse_directory(body, "http://issuer.example/")
    assert directory_url("https://i.example").endswith("/.well-known/private-token-issuer-directory")
    with pytest.raises(ValueError):
        directory_url("i.example")
