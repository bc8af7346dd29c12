"""The client's key transparency check against real logs (a directory and a real HTTP server)
and a recording relay+gateway: every refusal has its own error, and sends nothing to the relay."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ohttp.aio.client import (
    Client,
    KeyNotLogged,
    KeyWindowError,
    LogContentError,
    LogInconsistent,
    LogSignatureError,
    LogUnavailable,
    ReleaseNotPinned,
    WitnessQuorumError,
)
from ohttp.aio.tlog import LogError
from ohttp.aio.tlog_dir import add_cosignature, append_keys, init_log
from ohttp.aio.tlog_serve import create_log_app
from ohttp.keys import GatewayKey, KeyRing
from ohttp.tlog import Ed25519Signer, Note, parse_note
from ohttp.tlog.witness import Cosigner
from tests.ohttp.test_client import FakeGateway, ServerFactory, start

TARGET = "https://processing.internal/v1/x"
RELEASE = "sha256:" + "ab" * 32
NOW = int(time.time())


def make_log(directory: Path, keys: list[GatewayKey], release: str | None = None) -> str:
    """A log of ``keys`` in ``directory``; returns its verifier key."""
    signer = init_log(directory, "example.com/log", directory.parent / f"{directory.name}.key")
    append_keys(directory, keys, signer, now=NOW, release=release)
    return signer.verifier.vkey


def signer_of(directory: Path) -> Ed25519Signer:
    return Ed25519Signer.from_skey((directory.parent / f"{directory.name}.key").read_text().strip())


def cosign(directory: Path, witness: Cosigner) -> None:
    note = parse_note((directory / "checkpoint").read_bytes())
    cosigned = Note(note.text, (witness.cosign(note.text, NOW),)).encode()
    add_cosignature(directory, cosigned, [witness.verifier])


async def test_a_logged_key_is_used(aiohttp_server: ServerFactory, tmp_path: Path) -> None:
    ring = KeyRing([GatewayKey.generate(1)])
    vkey = make_log(tmp_path / "log", list(ring), RELEASE)
    gateway = FakeGateway([ring])
    relay = await start(aiohttp_server, gateway)
    async with Client(relay, log=tmp_path / "log", log_key=vkey, releases=[RELEASE]) as client:
        response = await client.request("GET", TARGET)
        await client.request("GET", TARGET)  # the verified log is reused
    assert response.status == 200
    assert len(gateway.bodies) == 2


async def test_the_log_over_http_with_witnesses(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    ring = KeyRing([GatewayKey.generate(1)])
    vkey = make_log(tmp_path / "log", list(ring))
    witnesses = [Cosigner(f"w{i}.example", bytes([i]) * 32) for i in range(3)]
    for witness in witnesses[:2]:
        cosign(tmp_path / "log", witness)
    log_server = await aiohttp_server(create_log_app(tmp_path / "log"))
    log_url = str(log_server.make_url("/"))
    gateway = FakeGateway([ring])
    relay = await start(aiohttp_server, gateway)
    wkeys = [w.verifier.vkey for w in witnesses]
    async with Client(relay, log=log_url, log_key=vkey, witness_keys=wkeys, min_witnesses=2) as c:
        assert (await c.request("GET", TARGET)).status == 200
    async with Client(relay, log=log_url, log_key=vkey, witness_keys=wkeys) as client:
        with pytest.raises(WitnessQuorumError):  # by default every witness must cosign
            await client.request("GET", TARGET)
    assert len(gateway.bodies) == 1


async def refused(
    aiohttp_server: ServerFactory, ring: KeyRing, error: type[LogError], **options: object
) -> None:
    gateway = FakeGateway([ring])
    relay = await start(aiohttp_server, gateway)
    async with Client(relay, **options) as client:  # type: ignore[arg-type]
        with pytest.raises(error) as caught:
            await client.request("POST", TARGET, content=b"secret")
    assert type(caught.value) is error
    assert gateway.bodies == []  # nothing reached the relay


async def test_an_unlogged_key_is_refused(aiohttp_server: ServerFactory, tmp_path: Path) -> None:
    vkey = make_log(tmp_path / "log", [GatewayKey.generate(1)])
    ring = KeyRing([GatewayKey.generate(2)])
    await refused(aiohttp_server, ring, KeyNotLogged, log=tmp_path / "log", log_key=vkey)


async def test_a_key_outside_its_window_is_refused(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    now = int(time.time())  # the gateway advertises the key: it must be current for real
    key = GatewayKey.generate(1, not_before=now - 100, not_after=now + 3600)
    vkey = make_log(tmp_path / "log", [key])
    await refused(
        aiohttp_server, KeyRing([key]), KeyWindowError,
        log=tmp_path / "log", log_key=vkey, clock=lambda: now + 7200.0,
    )  # fmt: skip


async def test_a_release_not_pinned_is_refused(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    ring = KeyRing([GatewayKey.generate(1)])
    vkey = make_log(tmp_path / "log", list(ring), release=None)
    await refused(
        aiohttp_server, ring, ReleaseNotPinned,
        log=tmp_path / "log", log_key=vkey, releases=[RELEASE],
    )  # fmt: skip


async def test_a_checkpoint_signed_by_another_key_is_refused(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    ring = KeyRing([GatewayKey.generate(1)])
    make_log(tmp_path / "log", list(ring))
    other = Ed25519Signer.generate("example.com/log").verifier.vkey
    await refused(aiohttp_server, ring, LogSignatureError, log=tmp_path / "log", log_key=other)


async def test_a_tampered_tile_is_refused(aiohttp_server: ServerFactory, tmp_path: Path) -> None:
    ring = KeyRing([GatewayKey.generate(1)])
    vkey = make_log(tmp_path / "log", list(ring))
    tile = tmp_path / "log" / "tile/0/000.p/1"
    tile.write_bytes(bytes([tile.read_bytes()[0] ^ 1]) + tile.read_bytes()[1:])
    await refused(aiohttp_server, ring, LogContentError, log=tmp_path / "log", log_key=vkey)


async def test_a_fork_of_the_last_checkpoint_seen_is_refused(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    ring = KeyRing([GatewayKey.generate(1)])
    vkey = make_log(tmp_path / "log", list(ring))
    state = tmp_path / "state"
    options = {"log": tmp_path / "log", "log_key": vkey, "log_state": state}
    gateway = FakeGateway([ring])
    relay = await start(aiohttp_server, gateway)
    async with Client(relay, **options) as client:  # type: ignore[arg-type]
        await client.request("GET", TARGET)
    assert len(list(state.iterdir())) == 1
    # The same log key signs another history of the same size: a split view.
    fork = tmp_path / "fork"
    fork.mkdir()
    forked = signer_of(tmp_path / "log")
    (tmp_path / "fork.key").write_text(forked.skey)
    from ohttp.tlog import Checkpoint, TileLog, sign_note

    result = TileLog.empty().append([b"another entry"])
    for path, data in result.files.items():
        (fork / path).parent.mkdir(parents=True, exist_ok=True)
        (fork / path).write_bytes(data)
    body = Checkpoint("example.com/log", result.size, result.root).encode()
    (fork / "checkpoint").write_bytes(sign_note(body, [forked]))
    await refused(
        aiohttp_server, ring, LogInconsistent, log=fork, log_key=vkey, log_state=state
    )


async def test_an_unreachable_log_is_refused(aiohttp_server: ServerFactory, tmp_path: Path) -> None:
    vkey = Ed25519Signer.generate("example.com/log").verifier.vkey
    ring = KeyRing([GatewayKey.generate(1)])
    await refused(aiohttp_server, ring, LogUnavailable, log=tmp_path / "nothing", log_key=vkey)


def test_bad_log_options_are_refused_early(tmp_path: Path) -> None:
    vkey = Ed25519Signer.generate("example.com/log").verifier.vkey
    with pytest.raises(ValueError, match="together"):
        Client("http://127.0.0.1:1/", log=tmp_path)
    with pytest.raises(ValueError, match="release"):
        Client("http://127.0.0.1:1/", log=tmp_path, log_key=vkey, releases=["sha256:AB"])
    witness = Cosigner("w.example", bytes(32)).verifier.vkey
    with pytest.raises(ValueError, match="twice"):
        Client("http://127.0.0.1:1/", log=tmp_path, log_key=vkey, witness_keys=[witness] * 2)
    with pytest.raises(ValueError, match="min_witnesses"):
        Client("http://127.0.0.1:1/", log=tmp_path, log_key=vkey, min_witnesses=1)
