"""DHKEM key material for HPKE (RFC 9180 §4.1, §7.1): the KEM table and the DH operations.

Split out of :mod:`ohttp._hpke`, which runs the KEM (ExtractAndExpand, the key schedule); the
post-quantum KEMs sharing the table live in :mod:`ohttp._kem_pq`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, x448, x25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ohttp._kem_pq import PQ_KEMS, PQKem

__all__ = [
    "KEMS",
    "KemParams",
    "PrivateObject",
    "PublicObject",
    "exchange",
    "generate",
    "load_private",
    "load_public",
    "private_bytes",
    "public_bytes",
]


@dataclass(frozen=True, slots=True)
class KemParams:
    """One KEM's constants (RFC 9180 §7.1; draft-ietf-hpke-pq §7)."""

    kem_id: int
    n_secret: int
    n_enc: int
    n_sk: int
    hash: hashes.HashAlgorithm
    curve: ec.EllipticCurve | None  # None for X25519 / X448
    zero_dh: bytes  # Ndh zero bytes
    n_pk: int
    pq: PQKem | None = None  # a post-quantum KEM (ohttp._kem_pq) instead of a DHKEM


def _pq(kem: PQKem) -> KemParams:
    # Nsecret is 32 for every KEM of draft-ietf-hpke-pq; the hash is never used (no
    # ExtractAndExpand: Decap's output is the shared secret), it only fills the slot.
    return KemParams(kem.kem_id, 32, kem.n_enc, kem.n_sk, hashes.SHA256(), None, b"", kem.n_pk, kem)


# DHKEMs have Nenc = Npk (RFC 9180 §7.1).
KEMS: dict[int, KemParams] = {
    0x0010: KemParams(0x0010, 32, 65, 32, hashes.SHA256(), ec.SECP256R1(), bytes(32), 65),
    0x0011: KemParams(0x0011, 48, 97, 48, hashes.SHA384(), ec.SECP384R1(), bytes(48), 97),
    0x0012: KemParams(0x0012, 64, 133, 66, hashes.SHA512(), ec.SECP521R1(), bytes(66), 133),
    0x0020: KemParams(0x0020, 32, 32, 32, hashes.SHA256(), None, bytes(32), 32),
    0x0021: KemParams(0x0021, 64, 56, 56, hashes.SHA512(), None, bytes(56), 56),
} | {kem_id: _pq(kem) for kem_id, kem in PQ_KEMS.items()}

_ECDH = ec.ECDH()
PrivateObject = x25519.X25519PrivateKey | x448.X448PrivateKey | ec.EllipticCurvePrivateKey
PublicObject = x25519.X25519PublicKey | x448.X448PublicKey | ec.EllipticCurvePublicKey


def load_public(kem: KemParams, data: bytes) -> PublicObject:
    """DeserializePublicKey (RFC 9180 §7.1.1); ``ValueError`` when invalid."""
    if len(data) != kem.n_enc:
        raise ValueError("public key of the wrong length")
    if kem.curve is not None:
        if data[0] != 0x04:  # RFC 9180 §7.1.1: uncompressed points only
            raise ValueError("public key not an uncompressed point")
        return ec.EllipticCurvePublicKey.from_encoded_point(kem.curve, data)
    if kem.kem_id == 0x0020:
        return x25519.X25519PublicKey.from_public_bytes(data)
    return x448.X448PublicKey.from_public_bytes(data)


def public_bytes(kem: KemParams, key: PublicObject) -> bytes:
    if kem.curve is not None:
        return key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return cast(x25519.X25519PublicKey | x448.X448PublicKey, key).public_bytes_raw()


def load_private(kem: KemParams, data: bytes) -> PrivateObject:
    """DeserializePrivateKey (RFC 9180 §7.1.2); ``ValueError`` when invalid."""
    if len(data) != kem.n_sk:
        raise ValueError("private key of the wrong length")
    if kem.curve is not None:
        scalar = int.from_bytes(data, "big")
        if scalar == 0:
            raise ValueError("invalid private key")
        return ec.derive_private_key(scalar, kem.curve)  # rejects scalar >= order
    if kem.kem_id == 0x0020:
        return x25519.X25519PrivateKey.from_private_bytes(data)
    return x448.X448PrivateKey.from_private_bytes(data)


def private_bytes(kem: KemParams, key: PrivateObject) -> bytes:
    if kem.curve is not None:
        scalar = cast(ec.EllipticCurvePrivateKey, key).private_numbers().private_value
        return scalar.to_bytes(kem.n_sk, "big")
    return cast(x25519.X25519PrivateKey | x448.X448PrivateKey, key).private_bytes_raw()


def exchange(kem: KemParams, private: PrivateObject, public: PublicObject) -> bytes:
    """DH, dispatched on the KEM (no isinstance on the hot path); an all-zero result, which
    X25519 and X448 give for small-order points, is refused (RFC 9180 §7.1.4)."""
    if kem.kem_id == 0x0020:
        dh = cast(x25519.X25519PrivateKey, private).exchange(cast(x25519.X25519PublicKey, public))
    elif kem.curve is not None:
        dh = cast(ec.EllipticCurvePrivateKey, private).exchange(
            _ECDH, cast(ec.EllipticCurvePublicKey, public)
        )
    else:
        dh = cast(x448.X448PrivateKey, private).exchange(cast(x448.X448PublicKey, public))
    if dh == kem.zero_dh:  # OpenSSL refuses this too; checked again so no key derives from it
        raise ValueError("all-zero shared secret")
    return dh


def generate(kem: KemParams) -> PrivateObject:
    if kem.curve is not None:
        return ec.generate_private_key(kem.curve)
    if kem.kem_id == 0x0020:
        return x25519.X25519PrivateKey.generate()
    return x448.X448PrivateKey.generate()
