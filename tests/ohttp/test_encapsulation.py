"""RFC 9458 §4 encapsulation: Appendix A byte for byte, round trips, hostile input, single use."""

from __future__ import annotations

import ast
import itertools
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ohttp.encapsulation
from ohttp import _hpke
from ohttp.encapsulation import (
    CHUNKED_REQUEST_LABEL,
    REQUEST_LABEL,
    ResponseSealer,
    decapsulate_request,
    encapsulate_request,
    request_header,
    request_info,
)
from ohttp.errors import (
    ContextUsedError,
    DecapsulationError,
    DecryptionError,
    EncapsulationError,
    UnknownKeyError,
    UnsupportedSuiteError,
)
from ohttp.keys import AEAD, KDF, KEM, GatewayKey, KeyRing, SymmetricSuite

VECTORS = json.loads((Path(__file__).parent.parent / "vectors" / "ohttp_rfc9458.json").read_text())
A_SUITES = (
    SymmetricSuite(KDF.HKDF_SHA256, AEAD.AES_128_GCM),
    SymmetricSuite(KDF.HKDF_SHA256, AEAD.CHACHA20_POLY1305),
)
KEY = GatewayKey.from_private_bytes(
    1, KEM.X25519, bytes.fromhex(VECTORS["gateway_private_key"]), A_SUITES
)
RING = KeyRing([KEY])
REQUEST = bytes.fromhex(VECTORS["request"])
RESPONSE = bytes.fromhex(VECTORS["response"])
EPHEMERAL = bytes.fromhex(VECTORS["ephemeral_private_key"])
ENC_REQUEST = bytes.fromhex(VECTORS["encapsulated_request"])
NONCE = bytes.fromhex(VECTORS["response_nonce"])
ENC_RESPONSE = bytes.fromhex(VECTORS["encapsulated_response"])
OPAQUE = "request could not be decapsulated"


def _encapsulate_a() -> tuple[bytes, ohttp.encapsulation.ClientResponseOpener]:
    return encapsulate_request(KEY.config, REQUEST, ephemeral_private_key=EPHEMERAL)


# --- RFC 9458 Appendix A -------------------------------------------------------------------


def test_appendix_a_request_byte_for_byte() -> None:
    header = request_header(1, 0x20, 1, 1)
    assert request_info(REQUEST_LABEL, header).hex() == VECTORS["info"]
    encapsulated, _ = _encapsulate_a()
    assert encapsulated == ENC_REQUEST
    assert encapsulated[7:39].hex() == VECTORS["enc"]
    assert encapsulated[39:].hex() == VECTORS["derived_intermediates"]["ciphertext"]


def test_appendix_a_intermediates() -> None:
    suite = _hpke.get_suite(0x20, 1, 1)
    enc = bytes.fromhex(VECTORS["enc"])
    shared = KEY.hpke_private_key._decap(suite, enc)
    assert shared.hex() == VECTORS["derived_intermediates"]["shared_secret"]
    context = KEY.hpke_private_key.receiver(suite, bytes.fromhex(VECTORS["info"])).setup(enc)
    secret = context.export(b"message/bhttp response", 16)
    assert secret.hex() == VECTORS["response_secret"]
    prk = _hpke.extract(suite.kdf_hash, enc + NONCE, secret)
    assert (enc + NONCE).hex() == VECTORS["response_salt"]
    assert prk.hex() == VECTORS["response_prk"]
    assert _hpke.expand(suite.kdf_hash, prk, b"key", 16).hex() == VECTORS["response_key"]
    assert _hpke.expand(suite.kdf_hash, prk, b"nonce", 12).hex() == VECTORS["response_aead_nonce"]


def test_appendix_a_gateway_side_byte_for_byte() -> None:
    request, sealer = decapsulate_request(RING, ENC_REQUEST)
    assert request == REQUEST
    assert sealer.key_id == 1
    assert sealer.seal(RESPONSE, response_nonce=NONCE) == ENC_RESPONSE


def test_appendix_a_client_opens_the_response() -> None:
    _, opener = _encapsulate_a()
    assert opener.open(ENC_RESPONSE) == RESPONSE


# --- round trips on every suite ------------------------------------------------------------

ALL_SUITES = [SymmetricSuite(kdf, aead) for kdf, aead in itertools.product(KDF, AEAD)]
RINGS = {kem: KeyRing([GatewayKey.generate(7, kem, ALL_SUITES)]) for kem in KEM}


@settings(max_examples=120, deadline=None)
@given(
    kem=st.sampled_from(KEM),
    suite=st.sampled_from(ALL_SUITES),
    request=st.binary(max_size=300),
    response=st.binary(max_size=300),
)
def test_round_trip_on_every_suite(
    kem: KEM, suite: SymmetricSuite, request: bytes, response: bytes
) -> None:
    ring = RINGS[kem]
    config = ring.keys[0].config
    encapsulated, opener = encapsulate_request(config, request, suite=suite)
    assert encapsulated[:7] == request_header(7, kem, suite.kdf, suite.aead)
    plaintext, sealer = decapsulate_request(ring, encapsulated)
    assert plaintext == request
    assert opener.open(sealer.seal(response)) == response


def test_suite_not_in_config_is_refused_by_the_client() -> None:
    with pytest.raises(ValueError):
        encapsulate_request(
            KEY.config, b"", suite=SymmetricSuite(KDF.HKDF_SHA512, AEAD.AES_256_GCM)
        )


def test_default_suite_is_the_first_of_the_config() -> None:
    encapsulated, _ = encapsulate_request(KEY.config, b"x")
    assert encapsulated[:7] == bytes.fromhex("01002000010001")


# --- adversarial: truncation and bit flips (checklist A2, D2 G2-G9) --------------------------


def test_every_truncation_of_the_request() -> None:
    for length in range(len(ENC_REQUEST)):
        with pytest.raises((EncapsulationError, DecryptionError)) as raised:
            decapsulate_request(RING, ENC_REQUEST[:length])
        short = length < 7 + 32 + 16
        assert isinstance(raised.value, EncapsulationError if short else DecryptionError)


def test_every_bit_flip_of_the_request() -> None:
    offered = {(int(s.kdf), int(s.aead)) for s in A_SUITES}
    for position in range(len(ENC_REQUEST)):
        for bit in range(8):
            mutated = bytearray(ENC_REQUEST)
            mutated[position] ^= 1 << bit
            with pytest.raises(DecapsulationError) as raised:
                decapsulate_request(RING, bytes(mutated))
            assert str(raised.value) == OPAQUE
            if position < 3:  # key id, KEM
                expected: type[DecapsulationError] = UnknownKeyError
            elif position < 7:  # KDF, AEAD: another offered pair changes the info instead
                pair = (int.from_bytes(mutated[3:5]), int.from_bytes(mutated[5:7]))
                expected = DecryptionError if pair in offered else UnsupportedSuiteError
            else:  # enc or ciphertext
                expected = DecryptionError
            assert type(raised.value) is expected, (position, bit)


def test_every_truncation_and_bit_flip_of_the_response() -> None:
    for length in range(len(ENC_RESPONSE)):
        _, opener = _encapsulate_a()
        error = EncapsulationError if length < 16 + 16 else DecryptionError
        with pytest.raises(error):
            opener.open(ENC_RESPONSE[:length])
    for position in range(len(ENC_RESPONSE)):
        for bit in range(8):
            mutated = bytearray(ENC_RESPONSE)
            mutated[position] ^= 1 << bit
            _, opener = _encapsulate_a()
            with pytest.raises(DecryptionError):
                opener.open(bytes(mutated))


@pytest.mark.parametrize("length", [0, 1, 6, 7, 7 + 31, 7 + 32, 7 + 32 + 15])
def test_g2_g6_short_bodies_are_400(length: int) -> None:
    with pytest.raises(EncapsulationError):
        decapsulate_request(RING, ENC_REQUEST[:length])


@pytest.mark.parametrize("key_id", [0x00, 0x02, 0xFF])
def test_g3_unknown_key_ids(key_id: int) -> None:
    with pytest.raises(UnknownKeyError):
        decapsulate_request(RING, bytes([key_id]) + ENC_REQUEST[1:])


def test_g3_retired_key_is_unknown() -> None:
    retired = GatewayKey(KEY.config, KEY.private_key, not_before=0, not_after=100)
    with pytest.raises(UnknownKeyError):
        decapsulate_request(KeyRing([retired]), ENC_REQUEST, now=100)
    assert decapsulate_request(KeyRing([retired]), ENC_REQUEST, now=99)[0] == REQUEST


@pytest.mark.parametrize("kem_id", [0x0010, 0x0021, 0x0000, 0xFFFF])
def test_g4_kem_mismatch(kem_id: int) -> None:
    with pytest.raises(UnknownKeyError):
        decapsulate_request(RING, ENC_REQUEST[:1] + kem_id.to_bytes(2) + ENC_REQUEST[3:])


@pytest.mark.parametrize(
    ("kdf_id", "aead_id"), [(1, 0xFFFF), (1, 0), (0, 1), (1, 2), (3, 1), (0xFFFF, 0xFFFF)]
)
def test_g5_suite_not_offered(kdf_id: int, aead_id: int) -> None:
    body = ENC_REQUEST[:3] + kdf_id.to_bytes(2) + aead_id.to_bytes(2) + ENC_REQUEST[7:]
    with pytest.raises(UnsupportedSuiteError):
        decapsulate_request(RING, body)


@pytest.mark.parametrize(
    "enc_hex",
    [
        "00" * 32,
        "01" + "00" * 31,
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
        "ec" + "ff" * 30 + "7f",
        "ed" + "ff" * 30 + "7f",
    ],
)
def test_g7_small_order_enc(enc_hex: str) -> None:
    body = ENC_REQUEST[:7] + bytes.fromhex(enc_hex) + ENC_REQUEST[39:]
    with pytest.raises(DecryptionError) as raised:
        decapsulate_request(RING, body)
    assert str(raised.value) == OPAQUE


@pytest.mark.parametrize("label", [CHUNKED_REQUEST_LABEL, b"message/bhttp response", b""])
def test_g9_valid_hpke_with_another_info_label(label: bytes) -> None:
    header = ENC_REQUEST[:7]
    suite = _hpke.get_suite(0x20, 1, 1)
    sender = KEY.config.hpke_public_key.sender(suite, request_info(label, header))
    enc, context = sender.setup()
    with pytest.raises(DecryptionError):
        decapsulate_request(RING, header + enc + context.seal(REQUEST))


# --- single use, randomness, binding ------------------------------------------------------------


def test_sealer_and_opener_are_single_use() -> None:
    _, sealer = decapsulate_request(RING, ENC_REQUEST)
    sealer.seal(RESPONSE)
    with pytest.raises(ContextUsedError):
        sealer.seal(RESPONSE)
    _, opener = _encapsulate_a()
    opener.open(ENC_RESPONSE)
    with pytest.raises(ContextUsedError):
        opener.open(ENC_RESPONSE)
    _, opener = _encapsulate_a()
    with pytest.raises(DecryptionError):
        opener.open(ENC_RESPONSE[:-1] + b"\x00")
    with pytest.raises(ContextUsedError):  # a failed open uses it up too
        opener.open(ENC_RESPONSE)


def test_sealer_only_comes_from_decapsulation() -> None:
    with pytest.raises(TypeError):
        ResponseSealer(object(), 1, None, None, b"")  # type: ignore[arg-type]


def test_sealer_rejects_a_wrong_nonce_length_and_stays_usable() -> None:
    _, sealer = decapsulate_request(RING, ENC_REQUEST)
    with pytest.raises(ValueError):
        sealer.seal(RESPONSE, response_nonce=NONCE[:-1])
    assert sealer.seal(RESPONSE, response_nonce=NONCE) == ENC_RESPONSE


def test_replayed_requests_get_fresh_response_nonces() -> None:
    sealed = set()
    for _ in range(3):
        _, sealer = decapsulate_request(RING, ENC_REQUEST)
        response = sealer.seal(RESPONSE)
        assert len(response) == len(ENC_RESPONSE)
        sealed.add(response[:16])
    assert len(sealed) == 3


def test_response_does_not_open_with_another_request_context() -> None:
    _, sealer = decapsulate_request(RING, ENC_REQUEST)
    _, other_opener = encapsulate_request(KEY.config, REQUEST)
    with pytest.raises(DecryptionError):
        other_opener.open(sealer.seal(RESPONSE))


def test_encapsulation_never_imports_bhttp() -> None:
    tree = ast.parse(Path(ohttp.encapsulation.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
            imported.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    assert not any("bhttp" in name for name in imported)
