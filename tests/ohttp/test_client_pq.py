"""The client's choice among offered key configurations: post-quantum first unless told not."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from ohttp.aio._keyfetch import KeySource
from ohttp.aio.keyfile import save_key_file
from ohttp.keys import KEM, GatewayKey, encode_key_configs


def _never() -> aiohttp.ClientSession:
    raise AssertionError("a key file needs no HTTP")


@pytest.mark.parametrize(("prefer_pq", "chosen"), [(True, 3), (False, 1)])
async def test_preference_among_offered_configs(
    tmp_path: Path, prefer_pq: bool, chosen: int
) -> None:
    # Offered order: classical, classical, X-Wing; within a kind the offered order is kept.
    keys = [
        GatewayKey.generate(1, KEM.X25519),
        GatewayKey.generate(2, KEM.P256),
        GatewayKey.generate(3, KEM.X_WING),
    ]
    body = tmp_path / "keys.bin"
    body.write_bytes(encode_key_configs(key.config for key in keys))
    source = KeySource(
        "http://127.0.0.1:9/",
        keys_url=None,
        keys_file=body,
        key_config=None,
        http=_never,
        timeout=aiohttp.ClientTimeout(total=1),
        prefer_pq=prefer_pq,
    )
    assert (await source.usable()).config.key_id == chosen


async def test_classical_only_list_still_works_with_pq_preferred(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    save_key_file(path, [GatewayKey.generate(5, KEM.X25519)])
    source = KeySource(
        "http://127.0.0.1:9/",
        keys_url=None,
        keys_file=path,
        key_config=None,
        http=_never,
        timeout=aiohttp.ClientTimeout(total=1),
    )
    assert (await source.usable()).config.kem == KEM.X25519
