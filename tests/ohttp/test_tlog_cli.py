"""``ohttp log`` in-process (init, append, keygen, verify, witness) and the static log app."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from aiohttp import ClientSession

from ohttp.aio.keyfile import save_key_file
from ohttp.aio.tlog_dir import append_keys, init_log
from ohttp.aio.tlog_serve import create_log_app
from ohttp.cli import main
from ohttp.keys import KEM, GatewayKey
from ohttp.tlog import Checkpoint, Ed25519Signer, TileLog, parse_note, sign_note
from tests.ohttp.test_client import ServerFactory

ORIGIN = "example.com/log"


def ohttp(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, str]:
    code, out, _ = ohttp(capsys, "log", "init", "--dir", str(tmp_path / "log"),
                         "--origin", ORIGIN, "--key", str(tmp_path / "log.key"))  # fmt: skip
    assert code == 0
    return tmp_path / "log", out.strip()


def append(capsys: pytest.CaptureFixture[str], log: Path, keys: Path, *extra: str) -> int:
    key = str(log.parent / "log.key")
    return ohttp(capsys, "log", "append", "--dir", str(log), "--keys", str(keys), "--key", key,
                 *extra)[0]  # fmt: skip


def test_init_prints_the_vkey_and_keeps_the_key_private(
    log: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory, vkey = log
    assert vkey.startswith(ORIGIN + "+") and "\n" not in vkey
    assert stat.S_IMODE((tmp_path / "log.key").stat().st_mode) == 0o600
    assert sorted(p.name for p in directory.iterdir()) == ["checkpoint"]
    code, _, err = ohttp(capsys, "log", "init", "--dir", str(tmp_path / "other"),
                         "--origin", ORIGIN, "--key", str(tmp_path / "other" / "k"))  # fmt: skip
    assert code == 1 and "inside" in err
    code, _, err = ohttp(capsys, "log", "init", "--dir", str(directory), "--origin", ORIGIN,
                         "--key", str(tmp_path / "k2"))  # fmt: skip
    assert code == 1 and "already" in err


def test_init_default_key_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    assert ohttp(capsys, "log", "init", "--dir", str(tmp_path / "log"), "--origin", ORIGIN)[0] == 0
    key = tmp_path / "config" / "ohttp" / "log-keys" / "example.com_log.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    save_key_file(tmp_path / "keys.json", [GatewayKey.generate(1)])
    args = ["log", "append", "--dir", str(tmp_path / "log"), "--keys", str(tmp_path / "keys.json")]
    assert ohttp(capsys, *args)[0] == 0


def test_append_is_idempotent_and_verify_lists_the_keys(
    log: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory, vkey = log
    keys = tmp_path / "keys.json"
    save_key_file(keys, [GatewayKey.generate(1), GatewayKey.generate(2)])
    release = "sha256:" + "0" * 64
    assert append(capsys, directory, keys, "--release", release) == 0
    checkpoint = (directory / "checkpoint").read_bytes()
    assert append(capsys, directory, keys) == 0
    assert (directory / "checkpoint").read_bytes() == checkpoint  # nothing new: unchanged
    state = tmp_path / "state"
    code, out, _ = ohttp(capsys, "log", "verify", "--log", str(directory), "--log-key", vkey,
                         "--state", str(state))  # fmt: skip
    assert code == 0
    assert [line.split()[1] for line in out.splitlines()] == ["key_id=1", "key_id=2"]
    assert all(line.endswith("release=" + release) for line in out.splitlines())
    assert state.read_bytes() == checkpoint


def test_verify_fails_on_tampering_a_foreign_key_and_a_fork(
    log: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory, vkey = log
    keys = tmp_path / "keys.json"
    save_key_file(keys, [GatewayKey.generate(1)])
    append(capsys, directory, keys)
    state = tmp_path / "state"
    verify = ["log", "verify", "--log", str(directory), "--log-key", vkey, "--state", str(state)]
    assert ohttp(capsys, *verify)[0] == 0
    other = Ed25519Signer.generate(ORIGIN).verifier.vkey
    code, _, err = ohttp(capsys, "log", "verify", "--log", str(directory), "--log-key", other)
    assert code == 3 and "not validly signed" in err
    bundle = directory / "tile/entries/000.p/1"
    original = bundle.read_bytes()
    bundle.write_bytes(original.replace(b"none", b"nona"))
    code, _, err = ohttp(capsys, *verify)
    assert code == 3 and "tiles do not match" in err
    bundle.write_bytes(original)
    # Re-sign the same size with another root: inconsistent with the saved state.
    signer = Ed25519Signer.from_skey((tmp_path / "log.key").read_text().strip())
    result = TileLog.empty().append([b"forked"])
    for path, data in result.files.items():
        (directory / path).write_bytes(data)
    body = Checkpoint(ORIGIN, result.size, result.root).encode()
    (directory / "checkpoint").write_bytes(sign_note(body, [signer]))
    code, _, err = ohttp(capsys, *verify)
    assert code == 3 and "not consistent" in err


def test_keygen_and_a_witness_that_refuses_a_fork(
    log: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory, vkey = log
    code, out, _ = ohttp(capsys, "log", "keygen", "--name", "w1.example",
                         "--out", str(tmp_path / "w1.key"))  # fmt: skip
    assert code == 0 and out.startswith("w1.example+")
    assert stat.S_IMODE((tmp_path / "w1.key").stat().st_mode) == 0o600
    keys = tmp_path / "keys.json"
    save_key_file(keys, [GatewayKey.generate(1)])
    append(capsys, directory, keys)
    witness = ["log", "witness", "--log", str(directory), "--log-key", vkey,
               "--key", str(tmp_path / "w1.key"),
               "--state", str(tmp_path / "w1.state")]  # fmt: skip
    assert ohttp(capsys, *witness)[0] == 0
    note = parse_note((directory / "checkpoint").read_bytes())
    assert [s.name for s in note.signatures] == [ORIGIN, "w1.example"]
    # Growing the log is fine: the witness cosigns the new checkpoint.
    save_key_file(keys, [GatewayKey.generate(1), GatewayKey.generate(2)], force=True)
    append(capsys, directory, keys)
    assert ohttp(capsys, *witness)[0] == 0
    # A fork: the same log key signs another tree of three entries.
    signer = Ed25519Signer.from_skey((tmp_path / "log.key").read_text().strip())
    result = TileLog.empty().append([b"a", b"b", b"c"])
    for path, data in result.files.items():
        (directory / path).parent.mkdir(parents=True, exist_ok=True)
        (directory / path).write_bytes(data)
    body = Checkpoint(ORIGIN, result.size, result.root).encode()
    (directory / "checkpoint").write_bytes(sign_note(body, [signer]))
    before = (tmp_path / "w1.state").read_bytes()
    code, _, err = ohttp(capsys, *witness)
    assert code == 3 and "refused" in err
    assert (tmp_path / "w1.state").read_bytes() == before
    assert [s.name for s in parse_note((directory / "checkpoint").read_bytes()).signatures] == [
        ORIGIN
    ]


async def test_the_static_log_app(
    log: tuple[Path, str], tmp_path: Path, aiohttp_server: ServerFactory
) -> None:
    directory, _ = log
    signer = Ed25519Signer.from_skey((tmp_path / "log.key").read_text().strip())
    entries = [b"entry %d" % i for i in range(257)]
    result = TileLog.empty().append(entries)
    for path, data in result.files.items():
        (directory / path).parent.mkdir(parents=True, exist_ok=True)
        (directory / path).write_bytes(data)
    body = Checkpoint(ORIGIN, result.size, result.root).encode()
    (directory / "checkpoint").write_bytes(sign_note(body, [signer]))
    (tmp_path / "secret").write_text("no")
    server = await aiohttp_server(create_log_app(directory))

    async with ClientSession() as session:

        async def get(path: str) -> tuple[int, str, str]:
            async with session.get(server.make_url(path)) as response:
                await response.read()
                return (
                    response.status,
                    response.headers.get("Content-Type", ""),
                    response.headers.get("Cache-Control", ""),
                )

        assert await get("/checkpoint") == (200, "text/plain; charset=utf-8", "no-cache")
        full = await get("/tile/0/000")
        assert full == (200, "application/octet-stream", "public, max-age=31536000, immutable")
        assert (await get("/tile/0/001.p/1"))[2] == "public, max-age=60"
        assert (await get("/tile/entries/000"))[0] == 200
        for path in ("/tile/../../secret", "/tile/0/%2e%2e/%2e%2e/secret", "/tile/0/0", "/x"):
            assert (await get(path))[0] == 404
        async with session.post(server.make_url("/add-cosignature"), data=b"x") as response:
            assert response.status == 403


def test_append_reproduces_the_worked_example_of_the_docs(tmp_path: Path) -> None:
    # docs/transparency.md, "Worked example": the same key and release give the same files.
    key = GatewayKey.derive(1, KEM.X25519, bytes(32), not_before=1796479200, not_after=1799157600)
    signer = init_log(tmp_path / "log", "example.com/ohttp-keys", tmp_path / "log.key")
    append_keys(tmp_path / "log", [key], signer, now=0, release="sha256:" + "0" * 64)
    note = parse_note((tmp_path / "log" / "checkpoint").read_bytes())
    assert note.text == "example.com/ohttp-keys\n1\nWSsuaGuzWuv+GevnD1yigw4kmnJpuJ/XqfCG4Kcef2g=\n"
    leaf = (tmp_path / "log" / "tile/0/000.p/1").read_bytes()
    assert leaf.hex() == "592b2e686bb35aebfe19ebe70f5ca2830e249a7269b89fd7a9f086e0a71e7f68"
    bundle = (tmp_path / "log" / "tile/entries/000.p/1").read_bytes()
    assert bundle[:2] == b"\x00\xe0"
    assert bundle[2:].startswith(b"ohttp-key/v1\nconfig AQAgcKc2l4lxKBBldllI+2YAbImMJazXiRaSI8pz")
