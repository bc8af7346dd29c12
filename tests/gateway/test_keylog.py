"""The gateway refuses to load or reload a key the transparency log does not vouch for."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gateway.app import GATEWAY_STATE, create_app, reload_keys
from gateway.config import GatewayConfig, SettingsError
from gateway.keylog import KeyNotLoggedError, load_logged_keys
from ohttp.aio.keyfile import add_next_key, load_key_file, save_key_file
from ohttp.aio.release import ReleaseError
from ohttp.aio.tlog_dir import append_keys, init_log
from ohttp.keys import GatewayKey
from ohttp.tlog import Ed25519Signer

RELEASE = "sha256:" + "12" * 32
OTHER = "sha256:" + "34" * 32


def logged(tmp_path: Path, release: str | None = None) -> GatewayConfig:
    """A key file with one key, logged; the gateway configuration that checks it."""
    keys = tmp_path / "keys.json"
    save_key_file(keys, [GatewayKey.generate(1)])
    signer = init_log(tmp_path / "log", "example.com/log", tmp_path / "log.key")
    append_keys(tmp_path / "log", [GatewayKey.generate(9)], signer, now=int(time.time()))
    append_keys(tmp_path / "log", load_key_file(keys), signer, now=int(time.time()),
                release=release)  # fmt: skip
    return GatewayConfig(keys=keys, log=str(tmp_path / "log"), log_key=signer.verifier.vkey)


async def test_a_logged_key_loads(tmp_path: Path) -> None:
    config = logged(tmp_path)
    assert [key.key_id for key in await load_logged_keys(config)] == [1]


async def test_an_unlogged_key_is_refused(tmp_path: Path) -> None:
    config = logged(tmp_path)
    save_key_file(config.keys or tmp_path, [GatewayKey.generate(2)], force=True)
    with pytest.raises(KeyNotLoggedError, match="not in the transparency log"):
        await load_logged_keys(config)


async def test_a_log_signed_by_another_key_is_refused(tmp_path: Path) -> None:
    config = logged(tmp_path)
    other = init_log(tmp_path / "other", "example.com/log", tmp_path / "other.key")
    bad = GatewayConfig(keys=config.keys, log=config.log, log_key=other.verifier.vkey)
    with pytest.raises(KeyNotLoggedError, match="not validly signed"):
        await load_logged_keys(bad)


async def test_require_release_with_an_injected_measurement(tmp_path: Path) -> None:
    config = logged(tmp_path, release=RELEASE)
    ours = GatewayConfig(**{**config.__dict__, "require_release": True})
    assert len(await load_logged_keys(ours, measure=lambda: RELEASE)) == 1
    with pytest.raises(KeyNotLoggedError, match="another release"):
        await load_logged_keys(ours, measure=lambda: OTHER)
    def broken() -> str:
        raise ReleaseError("no wheel")

    with pytest.raises(KeyNotLoggedError, match="could not be measured"):
        await load_logged_keys(ours, measure=broken)
    # The real measurement: this test environment is an editable install, which is no release.
    with pytest.raises(KeyNotLoggedError, match="could not be measured"):
        await load_logged_keys(ours)
    fixed = GatewayConfig(**{**ours.__dict__, "release_measurement": OTHER})
    with pytest.raises(KeyNotLoggedError, match="another release"):
        await load_logged_keys(fixed, measure=lambda: RELEASE)


def test_log_settings_go_together() -> None:
    with pytest.raises(SettingsError):
        GatewayConfig(log="/x")
    with pytest.raises(SettingsError):
        GatewayConfig(require_release=True)


async def test_reload_refuses_an_unlogged_key_and_keeps_the_old_ring(tmp_path: Path) -> None:
    config = logged(tmp_path)
    app = create_app(config, keys=await load_logged_keys(config))
    before = app[GATEWAY_STATE].keys
    add_next_key(config.keys or tmp_path)  # rotated, not logged yet
    assert await reload_keys(app) is False
    assert app[GATEWAY_STATE].keys is before
    signer_key = (tmp_path / "log.key").read_text().strip()
    signer = Ed25519Signer.from_skey(signer_key)
    append_keys(tmp_path / "log", load_key_file(config.keys or tmp_path), signer,
                now=int(time.time()))  # fmt: skip
    assert await reload_keys(app) is True
    assert app[GATEWAY_STATE].keys is not before
