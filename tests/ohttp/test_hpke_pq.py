"""Post-quantum KEMs: draft-ietf-hpke-pq and X-Wing known answers, ``cryptography``'s HPKE as
an independent implementation, and X-Wing keys through key configurations and OHTTP."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import ec, mlkem, x25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ohttp import _hpke, _kem_pq
from ohttp.chunked import ChunkedRequestDecoder, ChunkedRequestEncoder
from ohttp.encapsulation import decapsulate_request, encapsulate_request
from ohttp.errors import DecryptionError, KeyConfigError
from ohttp.keys import (
    AEAD,
    KDF,
    KEM,
    GatewayKey,
    KeyConfig,
    KeyRing,
    SymmetricSuite,
    decode_key_configs,
    encode_key_configs,
)

_VECTORS = Path(__file__).parent.parent / "vectors"
HPKE_PQ = json.loads((_VECTORS / "hpke_pq_draft04.json").read_text())["vectors"]
XWING = json.loads((_VECTORS / "xwing_draft10.json").read_text())["vectors"]
PQ_KEMS = (KEM.MLKEM768, KEM.MLKEM1024, KEM.MLKEM768_P256, KEM.MLKEM1024_P384, KEM.X_WING)
SIZES = {  # draft-ietf-hpke-pq §7: (Nenc, Npk, Nsk)
    KEM.MLKEM768: (1088, 1184, 64),
    KEM.MLKEM1024: (1568, 1568, 64),
    KEM.MLKEM768_P256: (1153, 1249, 32),
    KEM.MLKEM1024_P384: (1665, 1665, 32),
    KEM.X_WING: (1120, 1216, 32),
}


def _h(value: str) -> bytes:
    return bytes.fromhex(value)


def _id(vector: dict[str, Any]) -> str:
    return f"kem{vector['kem_id']:04x}-kdf{vector['kdf_id']}-aead{vector['aead_id']}"


# --- known answers ------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", HPKE_PQ, ids=_id)
def test_hpke_pq_vectors_byte_for_byte(vector: dict[str, Any]) -> None:
    kem_id = vector["kem_id"]
    suite = _hpke.get_suite(kem_id, vector["kdf_id"], vector["aead_id"])
    derived = _hpke.PrivateKey.derive(kem_id, _h(vector["ikmR"]))  # LabeledDerive form
    assert derived.raw == _h(vector["skRm"])
    assert derived.public_bytes == _h(vector["pkRm"])
    assert derived._decap(suite, _h(vector["enc"])) == _h(vector["shared_secret"])
    assert suite.labeled.prefix == b"HPKE-v1" + _h(vector["suite_id"])
    context = derived.receiver(suite, _h(vector["info"])).setup(_h(vector["enc"]))
    state = _hpke.AEADState(suite, _h(vector["key"]), _h(vector["base_nonce"]))
    for seq, encryption in enumerate(vector["encryptions"]):
        assert state.nonce(seq) == _h(encryption["nonce"])
        aad, plaintext = _h(encryption["aad"]), _h(encryption["pt"])
        assert state.seal(seq, plaintext, aad) == _h(encryption["ct"])
        assert context.open(_h(encryption["ct"]), aad) == plaintext
    for export in vector["exports"]:
        value = context.export(_h(export["exporter_context"]), export["L"])
        assert value == _h(export["exported_value"])


@pytest.mark.parametrize("vector", XWING, ids=lambda v: v["seed"][:8])
def test_xwing_draft_vectors_byte_for_byte(vector: dict[str, Any]) -> None:
    key = _hpke.PrivateKey(KEM.X_WING, _h(vector["sk"]))  # X-Wing's private key is its seed
    assert vector["sk"] == vector["seed"]
    assert key.public_bytes == _h(vector["pk"])
    suite = _hpke.get_suite(KEM.X_WING, 1, 1)
    assert key._decap(suite, _h(vector["ct"])) == _h(vector["ss"])
    # Encapsulation is randomized in cryptography (no ML-KEM Encaps_internal); the X25519
    # half of ct is checked from the vector's eseed, and decapsulation covers the rest.
    ephemeral = x25519.X25519PrivateKey.from_private_bytes(_h(vector["eseed"])[32:])
    assert _h(vector["ct"])[1088:] == ephemeral.public_key().public_bytes_raw()


def test_derive_key_pair_follows_hpke_pq_not_bare_xwing() -> None:
    ikm = bytes(range(32))
    derived = _hpke.PrivateKey.derive(KEM.X_WING, ikm)
    labeled = _kem_pq.labeled_derive(b"KEM\x64\x7a", ikm, b"DeriveKeyPair", b"", 32)
    assert derived.raw == labeled != ikm
    with pytest.raises(ValueError, match="32 bytes"):
        _hpke.PrivateKey.derive(KEM.X_WING, bytes(31))


@pytest.mark.parametrize("kem", PQ_KEMS, ids=lambda k: k.name)
def test_sizes_are_the_drafts(kem: KEM) -> None:
    n_enc, n_pk, n_sk = SIZES[kem]
    key = _hpke.PrivateKey.generate(kem)
    assert (len(key.public_bytes), len(key.raw)) == (n_pk, n_sk)
    assert _hpke.kem_public_key_length(kem) == n_pk
    assert _hpke.kem_private_key_length(kem) == n_sk
    suite = _hpke.get_suite(kem, 1, 1)
    enc, _ = _hpke.PublicKey(kem, key.public_bytes).sender(suite, b"").setup()
    assert len(enc) == suite.n_enc == n_enc
    assert kem.post_quantum


# --- every suite, and hostile input ---------------------------------------------------------


@pytest.mark.parametrize(
    ("kem", "kdf", "aead"), list(itertools.product(PQ_KEMS, KDF, AEAD)), ids=str
)
def test_every_pq_suite_round_trips(kem: KEM, kdf: KDF, aead: AEAD) -> None:
    suite = _hpke.get_suite(kem, kdf, aead)
    private = _hpke.PrivateKey.generate(kem)
    enc, sender = _hpke.PublicKey(kem, private.public_bytes).sender(suite, b"info").setup()
    receiver = private.receiver(suite, b"info").setup(enc)
    for index in range(3):
        assert receiver.open(sender.seal(b"m%d" % index, b"a"), b"a") == b"m%d" % index
    assert sender.export(b"x", 32) == receiver.export(b"x", 32)


@pytest.mark.parametrize("kem", PQ_KEMS, ids=lambda k: k.name)
def test_hostile_enc_is_a_decryption_error(kem: KEM) -> None:
    suite = _hpke.get_suite(kem, 1, 1)
    private = _hpke.PrivateKey.generate(kem)
    receiver = private.receiver(suite, b"")
    n_enc = suite.n_enc
    for enc in (b"", bytes(n_enc - 1), bytes(n_enc + 1), b"\x05" * n_enc):
        with pytest.raises(DecryptionError):
            receiver.setup(enc).open(bytes(32))
    # A well-formed but foreign enc decapsulates to another secret (ML-KEM's implicit
    # rejection): the AEAD then fails.
    enc, sender = (
        _hpke.PublicKey(kem, _hpke.PrivateKey.generate(kem).public_bytes).sender(suite, b"").setup()
    )
    with pytest.raises(DecryptionError):
        receiver.setup(enc).open(sender.seal(b"secret"))


def test_bad_pq_keys_are_value_errors() -> None:
    with pytest.raises(ValueError):
        _hpke.PrivateKey(KEM.X_WING, bytes(31))
    with pytest.raises(ValueError):
        _hpke.PublicKey(KEM.X_WING, bytes(1215))
    with pytest.raises(ValueError):  # the ML-KEM modulus check (FIPS 203 §7.2)
        _hpke.PublicKey(KEM.X_WING, b"\xff" * 1216)
    public = _hpke.PublicKey(KEM.X_WING, _hpke.PrivateKey.generate(KEM.X_WING).public_bytes)
    with pytest.raises(ValueError, match="ephemeral"):
        public.sender(_hpke.get_suite(KEM.X_WING, 1, 1), b"").setup(bytes(32))


# --- cross-check with cryptography's HPKE ---------------------------------------------------

_THEIR_KEMS = {
    KEM.X_WING: hpke.KEM.MLKEM768_X25519,
    KEM.MLKEM1024_P384: hpke.KEM.MLKEM1024_P384,
    KEM.MLKEM768: hpke.KEM.MLKEM768,
    KEM.MLKEM1024: hpke.KEM.MLKEM1024,
}
_THEIR_KDFS = {
    KDF.HKDF_SHA256: hpke.KDF.HKDF_SHA256,
    KDF.HKDF_SHA384: hpke.KDF.HKDF_SHA384,
    KDF.HKDF_SHA512: hpke.KDF.HKDF_SHA512,
}
_THEIR_AEADS = {
    AEAD.AES_128_GCM: hpke.AEAD.AES_128_GCM,
    AEAD.AES_256_GCM: hpke.AEAD.AES_256_GCM,
    AEAD.CHACHA20_POLY1305: hpke.AEAD.CHACHA20_POLY1305,
}


def _their_private(kem: KEM) -> tuple[Any, bytes]:
    """A key pair made by cryptography alone, with its public bytes in the draft's layout."""
    if kem == KEM.X_WING:
        m768, x = mlkem.MLKEM768PrivateKey.generate(), x25519.X25519PrivateKey.generate()
        raw = m768.public_key().public_bytes_raw() + x.public_key().public_bytes_raw()
        return hpke.MLKEM768X25519PrivateKey(m768, x), raw
    if kem == KEM.MLKEM1024_P384:
        m1024, p = mlkem.MLKEM1024PrivateKey.generate(), ec.generate_private_key(ec.SECP384R1())
        point = p.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        return hpke.MLKEM1024P384PrivateKey(m1024, p), m1024.public_key().public_bytes_raw() + point
    single = mlkem.MLKEM768PrivateKey if kem == KEM.MLKEM768 else mlkem.MLKEM1024PrivateKey
    key = single.generate()
    return key, key.public_key().public_bytes_raw()


def _their_public(kem: KEM, raw: bytes) -> Any:
    if kem == KEM.X_WING:
        return hpke.MLKEM768X25519PublicKey(
            mlkem.MLKEM768PublicKey.from_public_bytes(raw[:1184]),
            x25519.X25519PublicKey.from_public_bytes(raw[1184:]),
        )
    if kem == KEM.MLKEM1024_P384:
        return hpke.MLKEM1024P384PublicKey(
            mlkem.MLKEM1024PublicKey.from_public_bytes(raw[:1568]),
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP384R1(), raw[1568:]),
        )
    single = mlkem.MLKEM768PublicKey if kem == KEM.MLKEM768 else mlkem.MLKEM1024PublicKey
    return single.from_public_bytes(raw)


@pytest.mark.parametrize(
    ("kem", "kdf", "aead"),
    list(itertools.product(_THEIR_KEMS, _THEIR_KDFS, _THEIR_AEADS)),
    ids=str,
)
def test_cryptography_hpke_seals_we_open_and_back(kem: KEM, kdf: KDF, aead: AEAD) -> None:
    theirs = hpke.Suite(_THEIR_KEMS[kem], _THEIR_KDFS[kdf], _THEIR_AEADS[aead])
    suite = _hpke.get_suite(kem, kdf, aead)
    info = b"cross-check info"
    # Theirs -> ours to a key pair we generated; ours -> theirs to one cryptography generated.
    # The single-shot API seals sequence 0 with empty AAD, and its output is enc || ct.
    ours = _hpke.PrivateKey.generate(kem)
    sealed = theirs.encrypt(b"to ours", _their_public(kem, ours.public_bytes), info)
    enc, ciphertext = sealed[: suite.n_enc], sealed[suite.n_enc :]
    assert ours.receiver(suite, info).setup(enc).open(ciphertext) == b"to ours"

    their_key, their_raw = _their_private(kem)
    enc, context = _hpke.PublicKey(kem, their_raw).sender(suite, info).setup()
    assert theirs.decrypt(enc + context.seal(b"to theirs"), their_key, info) == b"to theirs"


# --- key configurations and OHTTP -----------------------------------------------------------


def test_xwing_key_config_round_trips_beside_x25519() -> None:
    xwing = GatewayKey.generate(2, KEM.X_WING)
    classic = GatewayKey.generate(1, KEM.X25519)
    body = KeyRing([classic, xwing]).encode_public()
    decoded = decode_key_configs(body)
    assert [(c.key_id, c.kem) for c in decoded] == [(1, KEM.X25519), (2, KEM.X_WING)]
    assert decoded[1] == xwing.config
    assert len(xwing.config.public_key) == 1216
    assert len(xwing.config.encode()) == 1 + 2 + 1216 + 2 + 4 * len(xwing.config.suites)
    assert encode_key_configs(decoded) == body


def test_xwing_key_config_with_a_short_key_is_an_encoding_error() -> None:
    encoded = GatewayKey.generate(2, KEM.X_WING).config.encode()
    truncated = encoded[:3] + encoded[4:]  # one public-key byte less
    with pytest.raises(KeyConfigError):
        decode_key_configs(len(truncated).to_bytes(2, "big") + truncated)


def test_xwing_private_key_must_match_its_config() -> None:
    one, other = GatewayKey.generate(2, KEM.X_WING), GatewayKey.generate(2, KEM.X_WING)
    with pytest.raises(KeyConfigError, match="does not match"):
        GatewayKey(one.config, other.private_key)


@pytest.mark.parametrize("kem", PQ_KEMS, ids=lambda k: k.name)
def test_ohttp_request_and_response_with_pq_key(kem: KEM) -> None:
    suites = (SymmetricSuite(KDF.HKDF_SHA256, AEAD.CHACHA20_POLY1305),)
    key = GatewayKey.generate(7, kem, suites)
    config = KeyConfig.decode(key.config.encode())
    encapsulated, opener = encapsulate_request(config, b"request")
    assert len(encapsulated) == 7 + SIZES[kem][0] + len(b"request") + 16
    request, sealer = decapsulate_request(KeyRing([key]), encapsulated)
    assert request == b"request"
    assert opener.open(sealer.seal(b"response")) == b"response"


def test_chunked_ohttp_with_xwing_key() -> None:
    key = GatewayKey.generate(3, KEM.X_WING)
    encoder = ChunkedRequestEncoder(key.config)
    wire = encoder.header() + encoder.chunk(b"first ") + encoder.final(b"last")
    decoder = ChunkedRequestDecoder(KeyRing([key]))
    assert b"".join(decoder.feed(wire) + decoder.close()) == b"first last"
    response = decoder.response_encoder()
    reader = encoder.response_decoder()
    wire = response.header() + response.final(b"answer")
    assert b"".join(reader.feed(wire) + reader.close()) == b"answer"
