"""Key configurations, application/ohttp-keys, private keys, the key ring and the key file."""

from __future__ import annotations

import json
import os
import stat
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ohttp.aio.keyfile import add_next_key, load_key_file, save_key_file
from ohttp.errors import KeyConfigError
from ohttp.keys import (
    AEAD,
    DEFAULT_SUITES,
    KDF,
    KEM,
    MAX_AGE_CAP,
    MIN_MAX_AGE,
    GatewayKey,
    KeyConfig,
    KeyRing,
    SymmetricSuite,
    decode_key_configs,
    encode_key_configs,
)

VECTORS = json.loads((Path(__file__).parent.parent / "vectors" / "ohttp_rfc9458.json").read_text())
CONFIG = bytes.fromhex(VECTORS["key_config"])
OHTTP_KEYS = bytes.fromhex(VECTORS["ohttp_keys"])
APPENDIX_A_KEY = bytes.fromhex(VECTORS["gateway_private_key"])
A_SUITES = (
    SymmetricSuite(KDF.HKDF_SHA256, AEAD.AES_128_GCM),
    SymmetricSuite(KDF.HKDF_SHA256, AEAD.CHACHA20_POLY1305),
)


def _appendix_key(**validity: int | None) -> GatewayKey:
    return GatewayKey.from_private_bytes(1, KEM.X25519, APPENDIX_A_KEY, A_SUITES, **validity)


def _prefixed(config: bytes) -> bytes:
    return struct.pack(">H", len(config)) + config


# --- RFC 9458 Appendix A --------------------------------------------------------------------


def test_appendix_a_key_config_from_the_private_key() -> None:
    key = _appendix_key()
    assert key.config.public_key.hex() == VECTORS["gateway_public_key"]
    assert key.config.encode() == CONFIG
    assert KeyConfig.decode(CONFIG) == key.config
    assert encode_key_configs([key.config]) == OHTTP_KEYS
    assert decode_key_configs(OHTTP_KEYS) == [key.config]
    assert KeyRing([key]).encode_public(now=0) == OHTTP_KEYS


def test_private_key_never_in_repr() -> None:
    assert APPENDIX_A_KEY.hex() not in repr(_appendix_key())
    assert "private_key" not in repr(_appendix_key())


# --- strict decoding (RFC 9458 §3.1-3.2; checklist A1.2-3, K2) ----------------------------------


def test_every_truncation_of_the_list_is_rejected() -> None:
    for length in range(len(OHTTP_KEYS)):
        with pytest.raises(KeyConfigError):
            decode_key_configs(OHTTP_KEYS[:length])


def test_every_truncation_of_one_config_is_rejected() -> None:
    for length in range(len(CONFIG)):
        with pytest.raises(KeyConfigError):
            KeyConfig.decode(CONFIG[:length])


def test_every_bit_flip_gives_a_config_or_a_key_config_error() -> None:
    outcomes = {"error": 0, "decoded": 0}
    for position in range(len(OHTTP_KEYS)):
        for bit in range(8):
            mutated = bytearray(OHTTP_KEYS)
            mutated[position] ^= 1 << bit
            try:
                configs = decode_key_configs(bytes(mutated))
            except KeyConfigError:
                outcomes["error"] += 1
            else:
                outcomes["decoded"] += 1
                assert len(configs) == 1
    assert outcomes["error"] > 0
    assert outcomes["decoded"] > 0  # e.g. another 32-byte X25519 key, another key id


@pytest.mark.parametrize(
    ("mutation", "reason"),
    [
        (lambda c: c + b"\x00", "byte after the algorithms"),
        (lambda c: c[:-4], "algorithms shorter than declared"),
        (lambda c: c[:35] + b"\x00\x00", "empty algorithm list"),
        (lambda c: c[:35] + b"\x00\x06" + c[37:43], "length not a multiple of 4"),
        (lambda c: c[:35] + b"\x00\x02" + c[37:39], "length below 4"),
        (lambda c: c[:3] + c[4:], "public key shorter than Npk"),
    ],
)
def test_malformed_configs_reject_the_whole_list(mutation: object, reason: str) -> None:
    assert callable(mutation)
    bad = mutation(CONFIG)
    with pytest.raises(KeyConfigError):
        decode_key_configs(_prefixed(CONFIG) + _prefixed(bad))
    with pytest.raises(KeyConfigError):
        KeyConfig.decode(bad)


def test_list_level_errors() -> None:
    for body in (b"", OHTTP_KEYS + b"\x00", OHTTP_KEYS + b"\x00\x01", b"\x00\x00"):
        with pytest.raises(KeyConfigError):
            decode_key_configs(body)


def test_unknown_algorithms_are_skipped_not_errors() -> None:
    unknown_kem = b"\x07\xff\xf0" + b"\x01" * 5 + b"\x00\x04\x00\x01\x00\x01"
    assert decode_key_configs(_prefixed(unknown_kem) + OHTTP_KEYS) == [_appendix_key().config]
    with pytest.raises(KeyConfigError):
        decode_key_configs(_prefixed(unknown_kem))
    # Export-only AEAD, KDF 0 and an unknown AEAD are dropped; the known pair stays.
    algorithms = (
        b"\x00\x01\xff\xff" + b"\x00\x00\x00\x01" + b"\x00\x01\x00\x09" + b"\x00\x01\x00\x01"
    )
    mixed = CONFIG[:35] + struct.pack(">H", len(algorithms)) + algorithms
    (config,) = decode_key_configs(_prefixed(mixed))
    assert config.suites == (SymmetricSuite(KDF.HKDF_SHA256, AEAD.AES_128_GCM),)
    only_unknown = CONFIG[:35] + b"\x00\x04\xff\xff\xff\xff"
    with pytest.raises(KeyConfigError):
        KeyConfig.decode(only_unknown)


def test_invalid_ec_public_key_is_an_encoding_error() -> None:
    p256 = GatewayKey.generate(3, KEM.P256).config.encode()
    not_on_curve = p256[:3] + b"\x04" + bytes(64) + p256[3 + 65 :]
    with pytest.raises(KeyConfigError):
        decode_key_configs(_prefixed(not_on_curve))


def test_keyconfig_constructor_validates() -> None:
    public = _appendix_key().config.public_key
    with pytest.raises(KeyConfigError):
        KeyConfig(256, KEM.X25519, public, A_SUITES)
    with pytest.raises(KeyConfigError):
        KeyConfig(1, KEM.X25519, public[:-1], A_SUITES)
    with pytest.raises(KeyConfigError):
        KeyConfig(1, KEM.X25519, public, ())


# --- property: round trips on every KEM ---------------------------------------------------------

PUBLIC_KEYS = {kem: GatewayKey.generate(0, kem).config.public_key for kem in KEM}
suite_strategy = st.builds(SymmetricSuite, st.sampled_from(KDF), st.sampled_from(AEAD))
config_strategy = st.builds(
    lambda key_id, kem, suites: KeyConfig(key_id, kem, PUBLIC_KEYS[kem], tuple(suites)),
    st.integers(0, 255),
    st.sampled_from(KEM),
    st.lists(suite_strategy, min_size=1, max_size=9, unique=True),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(config_strategy, min_size=1, max_size=6))
def test_key_config_lists_round_trip(configs: list[KeyConfig]) -> None:
    body = encode_key_configs(configs)
    assert decode_key_configs(body) == configs
    for config in configs:
        assert KeyConfig.decode(config.encode()) == config


# --- private keys --------------------------------------------------------------------------------


@pytest.mark.parametrize("kem", list(KEM), ids=lambda kem: kem.name)
def test_generate_import_and_derive_on_every_kem(kem: KEM) -> None:
    generated = GatewayKey.generate(5, kem)
    imported = GatewayKey.from_private_bytes(5, kem, generated.private_key)
    assert imported.config == generated.config
    seed = bytes(range(66))
    assert GatewayKey.derive(9, kem, seed).config == GatewayKey.derive(9, kem, seed).config
    assert GatewayKey.derive(9, kem, seed).private_key != generated.private_key


def test_bad_private_material_is_a_key_config_error() -> None:
    with pytest.raises(KeyConfigError):
        GatewayKey.from_private_bytes(1, KEM.X25519, bytes(31))
    with pytest.raises(KeyConfigError):
        GatewayKey.derive(1, KEM.X25519, b"too short")
    other = GatewayKey.generate(1).config
    with pytest.raises(KeyConfigError):
        GatewayKey(other, APPENDIX_A_KEY)  # private key does not match the config
    with pytest.raises(KeyConfigError):
        _appendix_key(not_before=10, not_after=10)


# --- key ring ------------------------------------------------------------------------------------


def test_ring_lookup_and_validity() -> None:
    old = GatewayKey.generate(1, not_before=0, not_after=1000)
    new = GatewayKey.generate(2, not_before=500)
    future = GatewayKey.generate(3, KEM.P256, not_before=2000)
    ring = KeyRing([old, new, future])
    assert ring.get(1, now=999) is old
    assert ring.get(1, now=1000) is None  # expired: not accepted any more
    assert ring.get(3, now=0) is future  # accepted before it is advertised
    assert ring.get(4, now=0) is None
    assert ring.current(now=100) == [old]
    assert ring.current(now=600) == [new]  # old still decrypts but is superseded
    assert ring.current(now=2500) == [new, future]  # different KEMs are both advertised
    with pytest.raises(KeyConfigError):
        KeyRing([old, GatewayKey.generate(1)])


def test_ring_max_age_follows_the_schedule() -> None:
    ring = KeyRing([GatewayKey.generate(1, not_before=0, not_after=10_000)])
    assert ring.max_age(now=9_000) == 1_000
    assert ring.max_age(now=9_990) == MIN_MAX_AGE
    assert KeyRing([GatewayKey.generate(1)]).max_age(now=0) == MAX_AGE_CAP
    far = KeyRing([GatewayKey.generate(1, not_after=10 * MAX_AGE_CAP)])
    assert far.max_age(now=0) == MAX_AGE_CAP


# --- key file ------------------------------------------------------------------------------------


def test_key_file_round_trip_mode_and_force(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    keys = [_appendix_key(not_before=5), GatewayKey.generate(7, KEM.P384, not_after=99)]
    save_key_file(path, keys)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    ring = load_key_file(path)
    assert [(k.config, k.private_key, k.not_before, k.not_after) for k in ring] == [
        (k.config, k.private_key, k.not_before, k.not_after) for k in keys
    ]
    before = path.read_bytes()
    with pytest.raises(FileExistsError):
        save_key_file(path, [GatewayKey.generate(1)])
    assert path.read_bytes() == before
    save_key_file(path, [GatewayKey.generate(1)], force=True)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert path.read_bytes() != before
    assert [p.name for p in tmp_path.iterdir()] == ["keys.json"]  # no temporary left behind


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"version": 2, "keys": []}',
        '{"version": 1, "keys": []}',
        '{"version": 1, "keys": [{"key_id": 1}]}',
        '{"version": 1, "keys": [{"key_id": 1, "kem": "X25519", "suites": [["HKDF_SHA256",'
        ' "AES_128_GCM"]], "private_key": "zz"}]}',
        '{"version": 1, "keys": [{"key_id": true, "kem": "X25519", "suites": [["HKDF_SHA256",'
        ' "AES_128_GCM"]], "private_key": "' + "11" * 32 + '"}]}',
    ],
)
def test_corrupt_key_files_are_key_config_errors(tmp_path: Path, text: str) -> None:
    path = tmp_path / "keys.json"
    path.write_text(text)
    with pytest.raises(KeyConfigError):
        load_key_file(path)


def test_public_key_in_file_must_match(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    save_key_file(path, [_appendix_key()])
    document = json.loads(path.read_text())
    document["keys"][0]["public_key"] = "00" * 32
    path.write_text(json.dumps(document))
    with pytest.raises(KeyConfigError):
        load_key_file(path)


def test_rotation_adds_the_next_key_and_retires_the_old(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    save_key_file(path, [GatewayKey.generate(255, suites=DEFAULT_SUITES[:1], not_before=0)])
    new = add_next_key(path, now=1_000, overlap=500)
    assert new.key_id == 0  # wraps around the 8-bit key id space
    assert new.not_before == 1_000
    assert new.config.suites == DEFAULT_SUITES[:1]
    ring = load_key_file(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    old = ring.get(255, now=1_000)
    assert old is not None
    assert old.not_after == 1_500
    assert ring.current(now=1_000) == [ring.get(0, now=1_000)]
    assert ring.get(255, now=1_500) is None
    newer = add_next_key(path, now=2_000, valid_for=100)
    assert newer.key_id == 1
    assert newer.not_after == 2_100
    assert sorted(k.key_id for k in load_key_file(path)) == [0, 1]  # expired 255 dropped
