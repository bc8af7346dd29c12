"""The issuer application on a real aiohttp server (127.0.0.1), and its key and account files."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from pytest_aiohttp import AiohttpClient

from issuer.app import DIRECTORY_PATH, REQUEST_PATH, create_app, reload_files
from issuer.config import IssuerConfig, SettingsError, load_config
from issuer.keys import (
    IssuerKeys,
    load_accounts,
    load_issuer_keys,
    rotate_issuer_key,
    write_issuer_key,
)
from ohttp.aio.store import MemoryStore, StoreUnavailable
from ohttp.aio.wallet import parse_directory
from ohttp.privacypass import (
    KeyFormatError,
    TokenChallenge,
    begin_issuance,
    finalize,
    token_key_id,
)
from tests.support import REPO, free_port, ohttp_process

ACCOUNT = "acct-7c1f0e9a2b"
CHALLENGE = TokenChallenge(2, b"issuer.test", b"", b"gw.example")
REQ_TYPE = "application/private-token-request"


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("issuer") / "issuer.pem"
    write_issuer_key(path)
    return path


def _config(key_file: Path, tmp_path: Path, **extra: object) -> IssuerConfig:
    accounts = tmp_path / "accounts"
    accounts.write_text(f"# comment\n\n{ACCOUNT}\n")
    return IssuerConfig(key=key_file, accounts=accounts, **extra)  # type: ignore[arg-type]


def _bearer(credential: str = ACCOUNT) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}", "Content-Type": REQ_TYPE}


async def test_directory_then_issuance(
    aiohttp_client: AiohttpClient, key_file: Path, tmp_path: Path
) -> None:
    client = await aiohttp_client(create_app(_config(key_file, tmp_path)))
    response = await client.get(DIRECTORY_PATH)
    assert response.status == 200
    assert response.content_type == "application/private-token-issuer-directory"
    assert response.headers["Cache-Control"] == "max-age=300"
    document = json.loads(await response.read())
    assert document["issuer-request-uri"] == REQUEST_PATH
    assert document["token-keys"][0]["token-type"] == 2
    directory = parse_directory(await response.read(), str(client.make_url(DIRECTORY_PATH)))
    assert directory.request_url.endswith(REQUEST_PATH)

    request, state = begin_issuance(CHALLENGE, directory.keys[0])
    answer = await client.post(REQUEST_PATH, data=request, headers=_bearer())
    assert answer.status == 200
    assert answer.content_type == "application/private-token-response"
    token = finalize(state, await answer.read())  # verifies the signature
    assert token.token_key_id == token_key_id(load_issuer_keys(key_file).current.public_key)


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Content-Type": REQ_TYPE}, 401),
        (_bearer("not-an-account"), 401),
        ({"Authorization": f"Basic {ACCOUNT}", "Content-Type": REQ_TYPE}, 401),
        ({"Authorization": f"Bearer {ACCOUNT}", "Content-Type": "application/octet-stream"}, 415),
    ],
)
async def test_refusals(
    aiohttp_client: AiohttpClient,
    key_file: Path,
    tmp_path: Path,
    headers: dict[str, str],
    status: int,
) -> None:
    client = await aiohttp_client(create_app(_config(key_file, tmp_path)))
    request, _ = begin_issuance(CHALLENGE, load_issuer_keys(key_file).current.public_key)
    response = await client.post(REQUEST_PATH, data=request, headers=headers)
    assert response.status == status
    assert await response.read() == b""
    if status == 401:
        assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("mangle", ["short", "long", "type", "key"])
async def test_malformed_requests_are_422(
    aiohttp_client: AiohttpClient, key_file: Path, tmp_path: Path, mangle: str
) -> None:
    client = await aiohttp_client(create_app(_config(key_file, tmp_path)))
    request, _ = begin_issuance(CHALLENGE, load_issuer_keys(key_file).current.public_key)
    body = {
        "short": request[:-1],
        "long": request + b"\x00",
        "type": b"\x00\x01" + request[2:],
        "key": request[:2] + bytes([request[2] ^ 1]) + request[3:],
    }[mangle]
    response = await client.post(REQUEST_PATH, data=body, headers=_bearer())
    assert response.status == 422  # RFC 9578 §6.2


async def test_quota_per_account_in_the_store(
    aiohttp_client: AiohttpClient, key_file: Path, tmp_path: Path
) -> None:
    store = MemoryStore()
    app = create_app(_config(key_file, tmp_path, tokens_per_window=2, window=60.0), store=store)
    client = await aiohttp_client(app)
    public = load_issuer_keys(key_file).current.public_key
    statuses = []
    for _ in range(3):
        request, _ = begin_issuance(CHALLENGE, public)
        response = await client.post(REQUEST_PATH, data=request, headers=_bearer())
        statuses.append(response.status)
    assert statuses == [200, 200, 429]
    assert response.headers["Retry-After"] == "60"
    assert len(store) == 1  # one counter, keyed by a digest, never the credential
    assert all(ACCOUNT.encode() not in key for key in store._values)


class _DownStore(MemoryStore):
    async def incr(self, key: bytes, ttl: float) -> int:
        raise StoreUnavailable("down")


async def test_store_down_fails_closed(
    aiohttp_client: AiohttpClient, key_file: Path, tmp_path: Path
) -> None:
    client = await aiohttp_client(create_app(_config(key_file, tmp_path), store=_DownStore()))
    request, _ = begin_issuance(CHALLENGE, load_issuer_keys(key_file).current.public_key)
    response = await client.post(REQUEST_PATH, data=request, headers=_bearer())
    assert response.status == 503


async def test_rotation_publishes_a_next_key_then_makes_it_current(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    path = tmp_path / "rotating.pem"
    first = write_issuer_key(path)
    app = create_app(_config(path, tmp_path))
    client = await aiohttp_client(app)
    second = rotate_issuer_key(path).pairs[1]
    assert await reload_files(app)
    directory = parse_directory(await (await client.get(DIRECTORY_PATH)).read(), "http://x/")
    assert [token_key_id(k) for k in directory.keys] == [first.token_key_id, second.token_key_id]
    # Both keys sign while both are listed: tokens fetched ahead under the next key work.
    request, state = begin_issuance(CHALLENGE, second.public_key)
    response = await client.post(REQUEST_PATH, data=request, headers=_bearer())
    finalize(state, await response.read())

    rotate_issuer_key(path)
    assert await reload_files(app)
    directory = parse_directory(await (await client.get(DIRECTORY_PATH)).read(), "http://x/")
    assert token_key_id(directory.keys[0]) == second.token_key_id
    assert first.token_key_id not in {token_key_id(k) for k in directory.keys}

    path.write_text("not a key")
    assert not await reload_files(app)  # the old keys stay


def test_keygen_issuer_writes_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    result = subprocess.run(
        [sys.executable, "-m", "ohttp", "keygen", "--issuer", "--out", str(path)],
        cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(load_issuer_keys(path).pairs) == 1
    assert "PRIVATE" not in result.stdout  # only the public token-key is printed
    again = subprocess.run(
        [sys.executable, "-m", "ohttp", "keygen", "--issuer", "--out", str(path)],
        cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert again.returncode == 1
    assert "exists" in again.stderr


def test_files(tmp_path: Path) -> None:
    accounts = tmp_path / "accounts"
    accounts.write_text("# one\n  a1  \n\n#a2\na3\n")
    assert len(load_accounts(accounts)) == 2
    with pytest.raises(KeyFormatError):
        IssuerKeys(())
    empty = tmp_path / "empty.pem"
    empty.write_text("")
    with pytest.raises(KeyFormatError):
        load_issuer_keys(empty)


def test_settings() -> None:
    environ = {"OHTTP_ISSUER_TOKENS_PER_WINDOW": "7", "OHTTP_ISSUER_KEY": "k"}
    config = load_config({}, environ=environ)
    assert (config.tokens_per_window, config.key) == (7, Path("k"))
    with pytest.raises(SettingsError):
        IssuerConfig(tokens_per_window=0)
    with pytest.raises(SettingsError):
        IssuerConfig(window=0)


def test_sighup_reloads_a_running_issuer(tmp_path: Path) -> None:
    path = tmp_path / "issuer.pem"
    write_issuer_key(path)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = ["issuer", "--key", str(path), "--listen", f"127.0.0.1:{port}"]

    def advertised() -> int:
        with urllib.request.urlopen(base + DIRECTORY_PATH, timeout=5) as response:
            return len(json.loads(response.read())["token-keys"])

    with ohttp_process(args, base + "/healthz", tmp_path / "issuer.log") as issuer:
        assert advertised() == 1
        rotate_issuer_key(path)
        os.kill(issuer.pid, signal.SIGHUP)
        deadline = time.monotonic() + 10
        while advertised() != 2 and time.monotonic() < deadline:
            time.sleep(0.05)  # the reload runs on the issuer's loop; polled with a bound
        assert advertised() == 2
    assert "keys_reloaded" in issuer.log()
    assert "issuer_open" in issuer.log()  # no accounts file: said at start


async def test_a_body_arriving_in_pieces_is_read_whole(
    aiohttp_client: AiohttpClient, key_file: Path, tmp_path: Path
) -> None:
    """A token request whose body arrives in two TCP writes is issued, not refused as 413."""
    client = await aiohttp_client(create_app(_config(key_file, tmp_path)))
    directory = parse_directory(
        await (await client.get(DIRECTORY_PATH)).read(), str(client.make_url(DIRECTORY_PATH))
    )
    request, state = begin_issuance(CHALLENGE, directory.keys[0])
    assert client.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    head = (
        f"POST {REQUEST_PATH} HTTP/1.1\r\nHost: issuer.test\r\nContent-Type: {REQ_TYPE}\r\n"
        f"Authorization: Bearer {ACCOUNT}\r\nContent-Length: {len(request)}\r\n"
        "Connection: close\r\n\r\n"
    )
    writer.write(head.encode() + request[:100])
    await writer.drain()
    await asyncio.sleep(0.05)  # the server reads the first piece on its own
    writer.write(request[100:])
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 200"), answer[:100]
    finalize(state, answer.partition(b"\r\n\r\n")[2])
