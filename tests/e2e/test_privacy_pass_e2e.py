"""Privacy Pass end to end: `ohttp issuer`, a gateway with --require-token, a relay and the
client, all real processes on 127.0.0.1 (issue 16, "Show it")."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from ohttp.aio.client import Client
from ohttp.aio.wallet import (
    TokenSource,
    Wallet,
    directory_url,
    fetch_directory,
    gateway_challenge,
    issue_tokens,
    issuer_name,
)
from ohttp.privacypass import (
    Token,
    authorization,
    begin_issuance,
    finalize,
    generate_issuer_key,
    issue,
    parse_www_authenticate,
)
from ohttp.privacypass._base64 import b64url_encode
from tests.e2e.conftest import WELL_KNOWN, base_url, gateway_args, relay_args, write_key_file
from tests.support import REPO, free_port, ohttp_process

ORIGIN = "gw.example"
TARGET = "https://echo.internal/hello"
# One account per test that fetches, so each test's quota use is its own.
ACCOUNTS = ("acct-spend-5b0c9e1f7a", "acct-retry-93d1c2b8e4", "acct-quota-0f6a7d5c21")
QUOTA = 6


@dataclass
class PrivacyPassStack:
    directory: Path
    issuer_url: str
    relay_url: str
    metrics_url: str
    logs: tuple[Path, ...]
    spent: list[Token] = field(default_factory=list)  # every token sent, for the log scan


@pytest.fixture(scope="module")
def pp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivacyPassStack]:
    directory = tmp_path_factory.mktemp("privacypass")
    subprocess.run(
        [sys.executable, "-m", "ohttp", "keygen", "--issuer", "--out", str(directory / "iss.pem")],
        check=True, cwd=REPO, capture_output=True,
    )  # fmt: skip
    (directory / "accounts").write_text("# test accounts\n" + "\n".join(ACCOUNTS) + "\n")
    write_key_file(directory / "keys.json", key_id=1)
    issuer_port, gateway_port, relay_port, metrics_port = (free_port() for _ in range(4))
    logs = tuple(directory / f"{name}.log" for name in ("issuer", "gateway", "relay"))
    issuer = base_url(issuer_port)
    env = {"PYTHONUNBUFFERED": "1"}  # every log line on disk before the scan
    issuer_args = [
        "issuer", "--key", str(directory / "iss.pem"), "--listen", f"127.0.0.1:{issuer_port}",
        "--accounts", str(directory / "accounts"), "--tokens-per-window", str(QUOTA),
    ]  # fmt: skip
    gateway = gateway_args(
        directory / "keys.json", gateway_port, "--backend", "echo",
        "--require-token", directory_url(issuer), "--token-origin", ORIGIN,
        "--metrics-listen", f"127.0.0.1:{metrics_port}",
    )  # fmt: skip
    with (
        ohttp_process(issuer_args, issuer + "/healthz", logs[0], env),
        ohttp_process(gateway, base_url(gateway_port) + "/healthz", logs[1], env),
        ohttp_process(
            relay_args(relay_port, base_url(gateway_port) + WELL_KNOWN),
            base_url(relay_port) + "/healthz", logs[2], env,
        ),
    ):  # fmt: skip
        yield PrivacyPassStack(
            directory, issuer, base_url(relay_port) + "/",
            f"http://127.0.0.1:{metrics_port}/metrics", logs,
        )  # fmt: skip


def _ohttp(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ohttp", *args], cwd=REPO, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip


def _account_file(pp: PrivacyPassStack, index: int) -> Path:
    path = pp.directory / f"account{index}"
    path.write_text(ACCOUNTS[index] + "\n")
    return path


async def _send(pp: PrivacyPassStack, token: Token | None) -> tuple[int, str]:
    headers = [] if token is None else [("Authorization", authorization(token))]
    if token is not None:
        pp.spent.append(token)
    async with Client(pp.relay_url) as client:
        response = await client.request("GET", TARGET, headers=headers)
    return response.status, response.headers.get("WWW-Authenticate", "")


def test_fetch_then_spend_gives_200_and_the_same_token_again_401(pp: PrivacyPassStack) -> None:
    wallet = pp.directory / "wallet.json"
    fetched = _ohttp(
        "tokens", "fetch", "--issuer", pp.issuer_url, "--origin", ORIGIN,
        "--account-token", str(_account_file(pp, 0)), "--count", "3", "--wallet", str(wallet),
    )  # fmt: skip
    assert fetched.returncode == 0, fetched.stderr
    assert stat.S_IMODE(wallet.stat().st_mode) == 0o600
    tokens = list(Wallet.load(wallet).tokens)
    assert len(tokens) == 3
    pp.spent.extend(tokens)

    spent = _ohttp("request", "--relay", pp.relay_url, "--wallet", str(wallet), "-i", TARGET)
    assert spent.returncode == 0, spent.stderr
    assert spent.stdout.startswith("HTTP 200")
    echoed = json.loads(spent.stdout.split("\n\n", 1)[1])
    # The backend never sees the token: the gateway removed it.
    assert all(name != "authorization" for name, _ in echoed["headers"])
    assert len(Wallet.load(wallet)) == 2


async def test_a_token_is_spent_once(pp: PrivacyPassStack) -> None:
    token = Wallet.load(pp.directory / "wallet.json").take()
    assert token is not None
    assert (await _send(pp, token))[0] == 200
    status, challenge = await _send(pp, token)
    assert status == 401
    assert parse_www_authenticate(challenge)  # a fresh challenge to fetch another with


async def test_a_token_of_another_issuer_key_is_refused(pp: PrivacyPassStack) -> None:
    other, _ = generate_issuer_key()
    challenge = gateway_challenge(issuer_name(directory_url(pp.issuer_url)), ORIGIN)
    request, state = begin_issuance(challenge, other.public_key)
    token = finalize(state, issue(other, request))  # a valid signature, by a key not trusted
    assert (await _send(pp, token))[0] == 401


async def test_no_token_gives_a_challenge_the_client_satisfies(pp: PrivacyPassStack) -> None:
    status, header = await _send(pp, None)
    assert status == 401
    (offer,) = parse_www_authenticate(header)
    assert offer.challenge.origin_info == ORIGIN.encode()
    assert offer.challenge.redemption_context == b""
    async with aiohttp.ClientSession() as session:
        issuer = await fetch_directory(session, directory_url(pp.issuer_url))
        (token,) = await issue_tokens(
            session, issuer, offer.challenge, ACCOUNTS[1], 1, key=offer.token_key
        )
    assert (await _send(pp, token))[0] == 200

    # Client(tokens=...) does the same by itself: a token for another origin is refused with
    # a challenge, which it answers by fetching a token and retrying once.
    stale = Wallet(directory_url(pp.issuer_url), "elsewhere.example")
    source = TokenSource(stale, credential=ACCOUNTS[1], batch=1, refill_below=0)
    assert await source.refill() == 1
    pp.spent.extend(stale.tokens)
    async with Client(pp.relay_url, tokens=source) as client:
        response = await client.request("GET", TARGET)
    assert response.status == 200


async def test_the_chunked_path_checks_tokens_too(pp: PrivacyPassStack) -> None:
    wallet = Wallet(directory_url(pp.issuer_url), ORIGIN)
    source = TokenSource(wallet, credential=ACCOUNTS[1], batch=1, refill_below=0)
    await source.refill()
    pp.spent.extend(wallet.tokens)
    async with Client(pp.relay_url) as client, client.stream("GET", TARGET) as response:
        assert response.status == 401
        assert parse_www_authenticate(response.headers["WWW-Authenticate"])
    async with (
        Client(pp.relay_url, tokens=source) as client,
        client.stream("GET", TARGET) as response,
    ):
        assert response.status == 200
        echoed = json.loads(await response.read())
    assert all(name != "authorization" for name, _ in echoed["headers"])


def test_an_account_over_its_quota_gets_no_token(pp: PrivacyPassStack) -> None:
    wallet = pp.directory / "quota-wallet.json"
    fetched = _ohttp(
        "tokens", "fetch", "--issuer", pp.issuer_url, "--origin", ORIGIN,
        "--account-token", str(_account_file(pp, 2)), "--count", str(QUOTA + 2),
        "--wallet", str(wallet),
    )  # fmt: skip
    assert fetched.returncode == 4
    assert len(Wallet.load(wallet)) == QUOTA
    again = _ohttp(
        "tokens", "fetch", "--issuer", pp.issuer_url, "--origin", ORIGIN,
        "--account-token", str(_account_file(pp, 2)), "--count", "1", "--wallet", str(wallet),
    )  # fmt: skip
    assert again.returncode == 4
    assert len(Wallet.load(wallet)) == QUOTA
    pp.spent.extend(Wallet.load(wallet).tokens)


def test_each_outcome_is_a_metric_result(pp: PrivacyPassStack) -> None:
    with urllib.request.urlopen(pp.metrics_url, timeout=5) as response:
        text = response.read().decode()
    counts = {
        result: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith('ohttp_gateway_requests_total{result="')
        for result in [line.split('"')[1]]
    }
    for result in ("token_missing", "token_spent", "token_unknown_key", "token_wrong_challenge"):
        assert counts[result] >= 1, result
    assert counts["ok"] >= 3


def test_logs_hold_no_credential_and_no_token(pp: PrivacyPassStack) -> None:
    assert len(pp.spent) >= 10
    secrets = [account.encode() for account in ACCOUNTS]
    for token in pp.spent:
        encoded = token.encode()
        secrets += [b64url_encode(encoded).encode(), b64url_encode(encoded).rstrip("=").encode()]
        secrets += [token.nonce.hex().encode(), b64url_encode(token.nonce).rstrip("=").encode()]
        secrets += [token.authenticator[:32].hex().encode()]
    for log in pp.logs[:2]:  # the issuer's and the gateway's
        content = log.read_bytes()
        assert content, log  # the scan must have something to scan
        leaked = [secret[:12] for secret in secrets if secret in content]
        assert leaked == [], f"{log.name} holds {leaked}"
