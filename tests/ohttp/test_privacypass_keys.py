"""Issuer keys: the RSASSA-PSS SPKI of RFC 9578 §6.5, token_key_id, PKCS#8 PEM."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ohttp.privacypass import (
    BlindRSAPublicKey,
    KeyFormatError,
    decode_public_key,
    decode_token_key,
    encode_public_key,
    encode_token_key,
    load_private_key_pem,
    token_key_id,
)
from ohttp.privacypass.keys import PSS_ALGORITHM, der_integer, der_tlv
from tests.ohttp.privacypass_support import TYPE2, fresh_issuer, unhex, vector_issuer

PKS = unhex(TYPE2[0]["pkS"])


def test_der_lengths_and_integers_are_minimal() -> None:
    assert der_tlv(0x04, b"") == b"\x04\x00"
    assert der_tlv(0x04, b"x" * 0x7F)[:2] == b"\x04\x7f"
    assert der_tlv(0x04, b"x" * 0x80)[:3] == b"\x04\x81\x80"
    assert der_tlv(0x04, b"x" * 0x100)[:4] == b"\x04\x82\x01\x00"
    assert der_integer(0) == b"\x02\x01\x00"
    assert der_integer(0x7F) == b"\x02\x01\x7f"
    assert der_integer(0x80) == b"\x02\x02\x00\x80"
    assert der_integer(65537) == b"\x02\x03\x01\x00\x01"


def test_the_pss_algorithm_identifier_is_the_one_of_rfc_9578() -> None:
    # id-RSASSA-PSS, sha384, mgf1(sha384), saltLength 48, as in the published pkS
    assert PKS[4 : 4 + len(PSS_ALGORITHM)] == PSS_ALGORITHM
    assert PSS_ALGORITHM.hex().endswith("a2030201" + "30")


def test_public_key_encodes_byte_for_byte_like_the_vector() -> None:
    assert encode_public_key(vector_issuer().public_key) == PKS
    assert decode_public_key(PKS) == vector_issuer().public_key


def test_cryptography_parses_our_spki_to_the_same_numbers() -> None:
    pair, _ = fresh_issuer()
    loaded = serialization.load_der_public_key(encode_public_key(pair.public_key))
    assert isinstance(loaded, rsa.RSAPublicKey)
    numbers = loaded.public_numbers()
    assert (numbers.n, numbers.e) == (pair.public_key.n, pair.public_key.e)


def test_token_key_id_is_sha256_of_the_spki() -> None:
    assert token_key_id(vector_issuer().public_key) == hashlib.sha256(PKS).digest()
    assert vector_issuer().token_key_id == hashlib.sha256(PKS).digest()


def test_token_key_round_trips_padded_and_unpadded() -> None:
    public = vector_issuer().public_key
    text = encode_token_key(public)
    assert text.endswith("=") or len(text) % 4 == 0
    assert decode_token_key(text) == public
    assert decode_token_key(text.rstrip("=")) == public


def _rsa_encryption_spki(public: BlindRSAPublicKey) -> bytes:
    key = rsa.RSAPublicNumbers(public.e, public.n).public_key()
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.mark.parametrize(
    "mutate",
    [
        lambda der: der + b"\x00",  # trailing bytes
        lambda der: der[:-1],  # truncated
        lambda der: b"\x30\x83\x00\x01\x52" + der[4:],  # non-minimal length
        lambda der: der[:20] + bytes([der[20] ^ 1]) + der[21:],  # other PSS parameters
        lambda der: _rsa_encryption_spki(decode_public_key(der)),  # rsaEncryption
    ],
    ids=["trailing", "truncated", "long-length", "other-params", "rsaEncryption"],
)
def test_decode_rejects_anything_but_the_exact_form(mutate: object) -> None:
    assert callable(mutate)
    with pytest.raises(KeyFormatError) as info:
        decode_public_key(mutate(PKS))
    assert PKS.hex()[:16] not in str(info.value)


def test_decode_rejects_a_key_that_is_not_2048_bits() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    numbers = small.public_key().public_numbers()
    with pytest.raises(KeyFormatError, match="2048-bit"):
        decode_public_key(encode_public_key(BlindRSAPublicKey(numbers.n, numbers.e)))


def test_private_key_pem_round_trips() -> None:
    pair, pem = fresh_issuer()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    loaded = load_private_key_pem(pem)
    assert loaded.public_key == pair.public_key
    assert loaded.token_key_id == pair.token_key_id


def test_load_private_key_pem_rejects_garbage_and_other_keys() -> None:
    with pytest.raises(KeyFormatError, match=r"^malformed private key$"):
        load_private_key_pem(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    pem = small.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(KeyFormatError, match="2048-bit"):
        load_private_key_pem(pem)
