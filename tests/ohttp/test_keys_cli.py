"""``ohttp keygen`` and ``ohttp keys show``: real subprocesses, plus the handlers in-process."""

from __future__ import annotations

import argparse
import http.server
import json
import os
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ohttp.aio.keyfile import load_key_file
from ohttp.cli import keys as keys_cli
from ohttp.keys import decode_key_configs
from tests.support import LOOPBACK, REPO

VECTORS = json.loads((Path(__file__).parent.parent / "vectors" / "ohttp_rfc9458.json").read_text())
A_KEY_HEX = VECTORS["gateway_private_key"]


def run_ohttp(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ohttp", *args],
        cwd=cwd,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def run_in_process(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="ohttp")
    keys_cli.configure(parser.add_subparsers(dest="command", required=True))
    namespace = parser.parse_args(args)
    code = namespace.handler(namespace)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def keys_server() -> Iterator[str]:
    """A loopback HTTP server answering the Appendix A application/ohttp-keys (and a 404)."""
    body = bytes.fromhex(VECTORS["ohttp_keys"])

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/keys":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/ohttp-keys")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer((LOOPBACK, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{LOOPBACK}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


# --- in-process (always runs) -------------------------------------------------------------------


def test_keygen_imports_the_appendix_a_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "keys.json"
    code, out, err = run_in_process(
        "keygen", "--out", str(path), "--private-key-hex", A_KEY_HEX, capsys=capsys
    )
    assert (code, err) == (0, "")
    assert out.strip() == VECTORS["ohttp_keys"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert A_KEY_HEX in path.read_text()


def test_keygen_suites_kem_and_seed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "keys.json"
    args = ("keygen", "--out", str(path), "--key-id", "9", "--kem", "p-256", "--kdf", "sha384")
    code, out, _ = run_in_process(
        *args, "--aead", "aes-256-gcm", "--seed-hex", "ab" * 32, capsys=capsys
    )
    assert code == 0
    (config,) = decode_key_configs(bytes.fromhex(out.strip()))
    assert (config.key_id, config.kem.name, len(config.suites)) == (9, "P256", 1)
    assert config.suites[0].kdf.name == "HKDF_SHA384"
    again = tmp_path / "again.json"
    code, out_again, _ = run_in_process(
        *args[:2],
        str(again),
        *args[3:],
        "--aead",
        "aes-256-gcm",
        "--seed-hex",
        "ab" * 32,
        capsys=capsys,
    )
    assert out_again == out  # derivation from a seed is deterministic


@pytest.mark.parametrize(
    "args",
    [
        ("--private-key-hex", "00" * 31),
        ("--seed-hex", "0011"),
        ("--key-id", "256"),
        ("--valid-for", "10"),
    ],
)
def test_keygen_bad_input_is_one_line_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...]
) -> None:
    path = tmp_path / "keys.json"
    code, out, err = run_in_process("keygen", "--out", str(path), *args, capsys=capsys)
    assert (code, out) == (1, "")
    assert err.count("\n") == 1
    assert err.startswith("ohttp keygen: error: ")
    assert not path.exists()


def test_keys_show_in_process(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = tmp_path / "body"
    body.write_bytes(bytes.fromhex(VECTORS["ohttp_keys"]))
    code, out, _ = run_in_process("keys", "show", str(body), capsys=capsys)
    assert code == 0
    assert "key id 1: X25519 (0x0020)" in out
    assert VECTORS["gateway_public_key"] in out
    assert "HKDF_SHA256/CHACHA20_POLY1305" in out


# --- real subprocesses --------------------------------------------------------------------------


def test_keygen_subprocess_mode_force_and_rotate(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    result = run_ohttp("keygen", "--out", str(path), "--private-key-hex", A_KEY_HEX, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == VECTORS["ohttp_keys"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    before = path.read_bytes()

    refused = run_ohttp("keygen", "--out", str(path), cwd=tmp_path)
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1
    assert "exists" in refused.stderr and "Traceback" not in refused.stderr
    assert path.read_bytes() == before

    forced = run_ohttp("keygen", "--out", str(path), "--force", "--key-id", "4", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert path.read_bytes() != before
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600

    rotated = run_ohttp("keygen", "--rotate", str(path), "--valid-for", "3600", cwd=tmp_path)
    assert rotated.returncode == 0, rotated.stderr
    (advertised,) = decode_key_configs(bytes.fromhex(rotated.stdout.strip()))
    assert advertised.key_id == 5
    assert sorted(key.key_id for key in load_key_file(path)) == [4, 5]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_keys_show_subprocess_file_hex_and_url(tmp_path: Path, keys_server: str) -> None:
    key_file = tmp_path / "keys.json"
    assert (
        run_ohttp(
            "keygen", "--out", str(key_file), "--private-key-hex", A_KEY_HEX, cwd=tmp_path
        ).returncode
        == 0
    )
    shown = run_ohttp("keys", "show", str(key_file), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "key id 1: X25519" in shown.stdout and "advertised" in shown.stdout
    assert A_KEY_HEX not in shown.stdout  # private keys are never printed

    hex_file = tmp_path / "keys.hex"
    hex_file.write_text(VECTORS["ohttp_keys"] + "\n")
    from_hex = run_ohttp("keys", "show", str(hex_file), cwd=tmp_path)
    assert from_hex.returncode == 0, from_hex.stderr
    assert VECTORS["gateway_public_key"] in from_hex.stdout

    from_url = run_ohttp("keys", "show", f"{keys_server}/keys", cwd=tmp_path)
    assert from_url.returncode == 0, from_url.stderr
    assert VECTORS["gateway_public_key"] in from_url.stdout


@pytest.mark.parametrize(
    "content",
    [
        b"",
        bytes.fromhex(VECTORS["ohttp_keys"])[:-1],
        bytes.fromhex(VECTORS["ohttp_keys"]) + b"\x00",
        b'{"version": 1, "keys": [{"key_id": 1}]}',
        b"{not json",
    ],
    ids=["empty", "truncated", "trailing", "bad-key-file", "bad-json"],
)
def test_keys_show_malformed_input_is_one_line_exit_1(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "input"
    path.write_bytes(content)
    result = run_ohttp("keys", "show", str(path), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("ohttp keys show: error: ")


def test_keys_show_unreachable_and_404_urls(tmp_path: Path, keys_server: str) -> None:
    for url in (f"{keys_server}/missing", f"http://{LOOPBACK}:1/keys"):
        result = run_ohttp("keys", "show", url, cwd=tmp_path)
        assert result.returncode == 1
        assert result.stderr.count("\n") == 1
        assert "Traceback" not in result.stderr
    missing = run_ohttp("keys", "show", str(tmp_path / "nope"), cwd=tmp_path)
    assert missing.returncode == 1
    assert missing.stderr.count("\n") == 1
