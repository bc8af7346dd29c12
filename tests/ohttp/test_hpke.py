"""The HPKE layer: RFC 9180 known answers, the direct path against pyhpke, hostile ``enc``."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ohttp import _hpke
from ohttp.errors import DecryptionError
from tests import pyhpke_oracle

VECTORS = json.loads((Path(__file__).parent.parent / "vectors" / "hpke_rfc9180.json").read_text())[
    "vectors"
]


@dataclass(frozen=True)
class Implementation:
    """One HPKE implementation: SetupBaseS and SetupBaseR."""

    name: str
    send: Callable[[_hpke.PublicKey, _hpke.Suite, bytes, bytes | None], tuple[bytes, _hpke.Context]]
    receive: Callable[[_hpke.PrivateKey, _hpke.Suite, bytes, bytes], _hpke.Context]


def _direct_send(
    key: _hpke.PublicKey, suite: _hpke.Suite, info: bytes, ephemeral: bytes | None
) -> tuple[bytes, _hpke.Context]:
    return key.sender(suite, info).setup(ephemeral)


def _direct_receive(
    key: _hpke.PrivateKey, suite: _hpke.Suite, info: bytes, enc: bytes
) -> _hpke.Context:
    return key.receiver(suite, info).setup(enc)


BACKENDS = (
    Implementation("direct", _direct_send, _direct_receive),
    Implementation("pyhpke", pyhpke_oracle.sender_setup, pyhpke_oracle.receiver_setup),
)
KEM_IDS = (0x10, 0x11, 0x12, 0x20, 0x21)
ALL_SUITES = list(itertools.product(KEM_IDS, (1, 2, 3), (1, 2, 3)))


def _h(value: str) -> bytes:
    return bytes.fromhex(value)


def _vector_id(vector: dict[str, Any]) -> str:
    return str(vector["section"])


@pytest.mark.parametrize("vector", VECTORS, ids=_vector_id)
def test_rfc9180_key_derivation_and_schedule(vector: dict[str, Any]) -> None:
    suite = _hpke.get_suite(vector["kem_id"], vector["kdf_id"], vector["aead_id"])
    derived = _hpke.PrivateKey.derive(vector["kem_id"], _h(vector["ikmR"]))
    assert derived.raw == _h(vector["skRm"])
    assert derived.public_bytes == _h(vector["pkRm"])
    assert derived._decap(suite, _h(vector["enc"])) == _h(vector["shared_secret"])
    info = _h(vector["info"])
    assert _hpke._key_schedule_context(suite, info) == _h(vector["key_schedule_context"])
    secret = suite.labeled.extract(_h(vector["shared_secret"]), b"secret", b"")
    assert secret == _h(vector["secret"])


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.name)
@pytest.mark.parametrize("vector", VECTORS, ids=_vector_id)
def test_rfc9180_encryptions_and_exports(vector: dict[str, Any], backend: Implementation) -> None:
    kem_id = vector["kem_id"]
    suite = _hpke.get_suite(kem_id, vector["kdf_id"], vector["aead_id"])
    info = _h(vector["info"])
    public = _hpke.PublicKey(kem_id, _h(vector["pkRm"]))
    enc, sender = backend.send(public, suite, info, _h(vector["skEm"]))
    assert enc == _h(vector["enc"])
    private = _hpke.PrivateKey(kem_id, _h(vector["skRm"]))
    receiver = backend.receive(private, suite, info, enc)
    for encryption in vector["encryptions"]:
        aad, plaintext = _h(encryption["aad"]), _h(encryption["plaintext"])
        while sender.sequence < encryption["seq"]:  # the RFC skips some sequence numbers
            receiver.open(sender.seal(b""))
        assert sender.seal(plaintext, aad) == _h(encryption["ciphertext"])
        assert receiver.open(_h(encryption["ciphertext"]), aad) == plaintext
    for export in vector["exports"]:
        for context in (sender, receiver):
            value = context.export(_h(export["exporter_context"]), export["length"])
            assert value == _h(export["value"])


@pytest.mark.parametrize("vector", VECTORS, ids=_vector_id)
def test_rfc9180_nonces_by_sequence_number(vector: dict[str, Any]) -> None:
    suite = _hpke.get_suite(vector["kem_id"], vector["kdf_id"], vector["aead_id"])
    state = _hpke.AEADState(suite, _h(vector["key"]), _h(vector["base_nonce"]))
    for encryption in vector["encryptions"]:
        seq = encryption["seq"]
        assert state.nonce(seq) == _h(encryption["nonce"])
        sealed = state.seal(seq, _h(encryption["plaintext"]), _h(encryption["aad"]))
        assert sealed == _h(encryption["ciphertext"])


@pytest.mark.parametrize(("kem_id", "kdf_id", "aead_id"), ALL_SUITES)
def test_every_suite_direct_and_pyhpke_interoperate(kem_id: int, kdf_id: int, aead_id: int) -> None:
    suite = _hpke.get_suite(kem_id, kdf_id, aead_id)
    private = _hpke.PrivateKey.generate(kem_id)
    public = _hpke.PublicKey(kem_id, private.public_bytes)
    info = b"message/bhttp request\x00suite test"
    for sealing, opening in itertools.permutations(BACKENDS):
        enc, sender = sealing.send(public, suite, info, None)
        receiver = opening.receive(private, suite, info, enc)
        for index in range(3):
            aad = b"aad %d" % index
            plaintext = bytes(range(index * 7))
            assert receiver.open(sender.seal(plaintext, aad), aad) == plaintext
        assert sender.export(b"message/bhttp response", 32) == receiver.export(
            b"message/bhttp response", 32
        )


def test_open_failure_does_not_advance_the_sequence() -> None:
    suite = _hpke.get_suite(0x20, 1, 1)
    private = _hpke.PrivateKey.generate(0x20)
    enc, sender = _hpke.PublicKey(0x20, private.public_bytes).sender(suite, b"").setup()
    receiver = private.receiver(suite, b"").setup(enc)
    ciphertext = sender.seal(b"first")
    with pytest.raises(DecryptionError):
        receiver.open(ciphertext[:-1] + bytes([ciphertext[-1] ^ 1]))
    assert receiver.sequence == 0
    assert receiver.open(ciphertext) == b"first"


# Small-order X25519 points (RFC 7748 §6.1 and the usual blocklists): each gives an
# all-zero shared secret, which RFC 9180 §7.1.4 requires to be rejected.
X25519_SMALL_ORDER = [
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0100000000000000000000000000000000000000000000000000000000000000",
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "0000000000000000000000000000000000000000000000000000000000000080",  # 0, top bit set
    "0100000000000000000000000000000000000000000000000000000000000080",  # 1, top bit set
]
_P448 = 2**448 - 2**224 - 1
X448_SMALL_ORDER = [value.to_bytes(56, "little").hex() for value in (0, 1, _P448 - 1, _P448)]


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.name)
@pytest.mark.parametrize(
    ("kem_id", "enc_hex"),
    [(0x20, point) for point in X25519_SMALL_ORDER] + [(0x21, point) for point in X448_SMALL_ORDER],
)
def test_small_order_enc_is_a_decryption_error(
    kem_id: int, enc_hex: str, backend: Implementation
) -> None:
    suite = _hpke.get_suite(kem_id, 1, 1)
    private = _hpke.PrivateKey.generate(kem_id)
    with pytest.raises(DecryptionError) as raised:
        backend.receive(private, suite, b"info", bytes.fromhex(enc_hex))
    assert str(raised.value) == "request could not be decapsulated"


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.name)
@pytest.mark.parametrize("kem_id", [0x10, 0x11, 0x12])
def test_invalid_ec_points_are_decryption_errors(kem_id: int, backend: Implementation) -> None:
    suite = _hpke.get_suite(kem_id, 1, 1)
    private = _hpke.PrivateKey.generate(kem_id)
    valid = private.public_bytes
    not_on_curve = valid[:-1] + bytes([valid[-1] ^ 1])
    compressed = bytes([0x02 + (valid[-1] & 1)]) + valid[1 : 1 + (len(valid) - 1) // 2]
    for enc in (not_on_curve, bytes(len(valid)), compressed, b"\x04"):
        with pytest.raises(DecryptionError):
            backend.receive(private, suite, b"", enc)


def test_unsupported_suites_and_bad_keys_are_value_errors() -> None:
    for ids in [(0x20, 1, 0xFFFF), (0x20, 0, 1), (0x30, 1, 1), (0x20, 4, 1)]:
        with pytest.raises(ValueError):
            _hpke.get_suite(*ids)
    with pytest.raises(ValueError):
        _hpke.PrivateKey(0x20, bytes(31))
    with pytest.raises(ValueError):
        _hpke.PrivateKey(0x10, bytes(32))  # scalar 0
    with pytest.raises(ValueError):
        _hpke.PrivateKey(0x10, b"\xff" * 32)  # scalar >= group order
    with pytest.raises(ValueError):
        _hpke.PrivateKey.derive(0x20, b"short")


def test_aead_state_rejects_short_ciphertext_and_sequence_overflow() -> None:
    suite = _hpke.get_suite(0x20, 1, 1)
    state = _hpke.AEADState(suite, bytes(16), bytes(12))
    with pytest.raises(DecryptionError):
        state.open(0, bytes(15))
    with pytest.raises(DecryptionError):
        state.open(2**96 - 1, bytes(16))
    with pytest.raises(ValueError):
        state.seal(2**96 - 1, b"")


# draft-ietf-ohai-chunked-ohttp-08 Appendix (../shared/vectors/ohttp-vectors.txt section B):
# the surface the chunked engineer builds on, with a caller-given info and export label.
CHUNKED: dict[str, Any] = {
    "skR": "1c190d72acdbe4dbc69e680503bb781a932c70a12c8f3754434c67d8640d8698",
    "skE": "b26d565f3f875ed480d1abced3d665159650c99174fd0b124ac4bda0c64ae324",
    "enc": "8811eb457e100811c40a0aa71340a1b81d804bb986f736f2f566a7199761a032",
    "info": "6d6573736167652f6268747470206368756e6b656420726571756573740001002000010001",
    "request": "00034745540568747470730b6578616d706c652e636f6d012f",
    "chunk1": "2ad24942d4d692563012f2980c8fef437a336b9b2fc938ef77a5834f",
    "chunk2": "2e33d8fd25577afe31bd1c79d094f76b6250ae6549b473ecd950501311",
    "final": "1c6c1395d0ef7c1022297966307b8a7f",
    "response_nonce": "bcce7f4cb921309ba5d62edf1769ef09",
    "response_chunks": [
        "79bf1cc87fa0e2c02de4546945aa3d1e48",
        "b348b5bd4c594c16b6170b07b475845d1f32",
    ],
    "response_final": "ed9d8a796617a5b27265f4d73247f639",
}


def test_chunked_draft_example_through_the_exported_surface() -> None:
    suite = _hpke.get_suite(0x20, 1, 1)
    private = _hpke.PrivateKey(0x20, _h(CHUNKED["skR"]))
    info = _h(CHUNKED["info"])
    enc, sender = (
        _hpke.PublicKey(0x20, private.public_bytes).sender(suite, info).setup(_h(CHUNKED["skE"]))
    )
    assert enc == _h(CHUNKED["enc"])
    request = _h(CHUNKED["request"])
    assert sender.seal(request[:12]) == _h(CHUNKED["chunk1"])
    assert sender.seal(request[12:]) == _h(CHUNKED["chunk2"])
    assert sender.seal(b"", b"final") == _h(CHUNKED["final"])

    receiver = private.receiver(suite, info).setup(enc)
    assert receiver.open(_h(CHUNKED["chunk1"])) + receiver.open(_h(CHUNKED["chunk2"])) == request
    assert receiver.open(_h(CHUNKED["final"]), b"final") == b""

    aead = _hpke.derive_response_aead(
        receiver, suite, b"message/bhttp chunked response", enc, _h(CHUNKED["response_nonce"])
    )
    assert aead.nonce(0).hex() == "fead854635d2d5527d64f546"
    assert aead.nonce(2).hex() == "fead854635d2d5527d64f544"  # XOR, not addition
    assert aead.seal(0, b"\x01") == _h(CHUNKED["response_chunks"][0])
    assert aead.seal(1, b"\x40\xc8") == _h(CHUNKED["response_chunks"][1])
    assert aead.open(2, _h(CHUNKED["response_final"]), b"final") == b""
