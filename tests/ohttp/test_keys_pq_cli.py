"""``ohttp keygen --kem x-wing`` and ``ohttp keygen --add``: X-Wing beside X25519 in one file."""

from __future__ import annotations

from pathlib import Path

import pytest

from ohttp.aio.keyfile import load_key_file
from ohttp.keys import KEM, decode_key_configs
from tests.ohttp.test_keys_cli import run_in_process, run_ohttp


def test_keygen_x_wing_subprocess(tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    result = run_ohttp("keygen", "--out", str(keys), "--kem", "x-wing", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (config,) = decode_key_configs(bytes.fromhex(result.stdout.strip()))
    assert (config.key_id, config.kem, len(config.public_key)) == (1, KEM.X_WING, 1216)
    (key,) = load_key_file(keys)
    assert key.config == config
    assert len(key.private_key) == 32  # the X-Wing decapsulation key is its 32-byte seed


def test_add_puts_x_wing_beside_x25519(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys = tmp_path / "keys.json"
    assert run_in_process("keygen", "--out", str(keys), capsys=capsys)[0] == 0
    code, out, err = run_in_process("keygen", "--add", str(keys), "--kem", "x-wing", capsys=capsys)
    assert (code, err) == (0, "")
    configs = decode_key_configs(bytes.fromhex(out.strip()))
    assert [(c.key_id, c.kem) for c in configs] == [(1, KEM.X25519), (2, KEM.X_WING)]
    assert load_key_file(keys).encode_public() == bytes.fromhex(out.strip())
    code, out, _ = run_in_process(
        "keygen", "--add", str(keys), "--kem", "mlkem768-x25519", "--key-id", "9", capsys=capsys
    )
    assert code == 0
    assert [c.key_id for c in decode_key_configs(bytes.fromhex(out.strip()))] == [1, 2, 9]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ((), "--add needs --kem"),
        (("--kem", "x-wing", "--key-id", "1"), "key id 1 is already in the key file"),
        (("--kem", "x-wing", "--seed-hex", "00" * 32), "fresh key"),
        (("--kem", "x-wing", "--valid-for", "60"), "go with --rotate"),
    ],
)
def test_add_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: tuple[str, ...], message: str
) -> None:
    keys = tmp_path / "keys.json"
    assert run_in_process("keygen", "--out", str(keys), capsys=capsys)[0] == 0
    before = keys.read_bytes()
    code, _, err = run_in_process("keygen", "--add", str(keys), *extra, capsys=capsys)
    assert code == 1
    assert message in err
    assert keys.read_bytes() == before
