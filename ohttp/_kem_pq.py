"""Post-quantum HPKE KEMs: ML-KEM-768/1024 and the ML-KEM hybrids of draft-ietf-hpke-pq.

MLKEM768-X25519 (0x647A) is X-Wing (draft-connolly-cfrg-xwing-kem): the same key expansion,
the same SHA3-256 combiner and the same label. The two drafts differ only in HPKE
``DeriveKeyPair``: X-Wing takes ``SHAKE256(ikm, 32)``, draft-ietf-hpke-pq (§4) takes
``SHAKE256.LabeledDerive(ikm, "DeriveKeyPair", "", 32)``; the issue settles on the latter for
HPKE, so that is what :func:`derive` does (the bare X-Wing key generation from a 32-byte
seed is the identity on the seed and is checked against the X-Wing vectors).

ML-KEM comes from ``cryptography`` (FIPS 203, seed-format decapsulation keys), X25519 / P-256 /
P-384 from ``cryptography`` too, SHAKE256 and SHA3-256 from ``hashlib``. Invalid key material
or ciphertexts raise ``ValueError``; the caller maps that to its own error.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import cast

from cryptography.hazmat.primitives.asymmetric import ec, mlkem, x25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

__all__ = ["PQ_KEMS", "PQKem", "PQPrivateKey", "PQPublicKey", "derive", "generate"]

_ECDH = ec.ECDH()
# draft-connolly-cfrg-xwing-kem §5.3 (and draft-irtf-cfrg-concrete-hybrid-kems): "\.//^\".
XWING_LABEL = b"\x5c\x2e\x2f\x2f\x5e\x5c"
_MLKEM_SEED = 64  # ML-KEM decapsulation key in seed format d || z (FIPS 203 §7.1)

_MLKEMPrivate = mlkem.MLKEM768PrivateKey | mlkem.MLKEM1024PrivateKey
_MLKEMPublic = mlkem.MLKEM768PublicKey | mlkem.MLKEM1024PublicKey
_GroupPrivate = x25519.X25519PrivateKey | ec.EllipticCurvePrivateKey
_GroupPublic = x25519.X25519PublicKey | ec.EllipticCurvePublicKey


@dataclass(frozen=True, slots=True)
class _Group:
    """The traditional half (draft-irtf-cfrg-concrete-hybrid-kems §3)."""

    n_elem: int
    n_seed: int
    curve: ec.EllipticCurve | None  # None: X25519
    order: int  # 0 for X25519, whose RandomScalar is the identity

    def scalar(self, seed: bytes) -> _GroupPrivate:
        """RandomScalar: X25519 takes the seed as is; NIST curves reject-sample big-endian
        chunks of Nscalar bytes until one is in [1, N)."""
        if self.curve is None:
            return x25519.X25519PrivateKey.from_private_bytes(seed)
        size = (self.order.bit_length() + 7) // 8
        for start in range(0, len(seed) - size + 1, size):
            value = int.from_bytes(seed[start : start + size], "big")
            if 0 < value < self.order:
                return ec.derive_private_key(value, self.curve)
        raise ValueError("rejection sampling failed")  # probability < 2^-128

    def load(self, data: bytes) -> _GroupPublic:
        if self.curve is None:
            return x25519.X25519PublicKey.from_public_bytes(data)
        if data[:1] != b"\x04":  # uncompressed points only (SEC 1 §2.3.3)
            raise ValueError("not an uncompressed point")
        return ec.EllipticCurvePublicKey.from_encoded_point(self.curve, data)

    def generate(self) -> _GroupPrivate:
        if self.curve is None:
            return x25519.X25519PrivateKey.generate()
        return ec.generate_private_key(self.curve)


def _element(key: _GroupPublic) -> bytes:
    if isinstance(key, x25519.X25519PublicKey):
        return key.public_bytes_raw()
    return key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def _exchange(private: _GroupPrivate, public: _GroupPublic) -> bytes:
    """ElementToSharedSecret(Exp(public, private)): the X25519 output or the x-coordinate.

    OpenSSL refuses an all-zero X25519 result (a small-order point); X-Wing would accept it,
    but only a malicious sender produces one, and refusing it costs honest peers nothing."""
    if isinstance(private, x25519.X25519PrivateKey):  # the public key is of the same group
        return private.exchange(cast(x25519.X25519PublicKey, public))
    return private.exchange(_ECDH, cast(ec.EllipticCurvePublicKey, public))


_X25519 = _Group(32, 32, None, 0)
_P256 = _Group(
    65, 128, ec.SECP256R1(), 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
)
_P384 = _Group(
    97,
    48,
    ec.SECP384R1(),
    int(
        "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf"
        "581a0db248b0a77aecec196accc52973",
        16,
    ),
)


@dataclass(frozen=True, slots=True)
class PQKem:
    """One KEM of draft-ietf-hpke-pq §7 (Nsecret is 32 for all of them)."""

    kem_id: int
    n_enc: int
    n_pk: int
    n_sk: int
    n_ct_pq: int
    n_ek_pq: int
    mlkem_private: type[mlkem.MLKEM768PrivateKey] | type[mlkem.MLKEM1024PrivateKey]
    mlkem_public: type[mlkem.MLKEM768PublicKey] | type[mlkem.MLKEM1024PublicKey]
    group: _Group | None  # None: pure ML-KEM
    label: bytes

    @property
    def suite_id(self) -> bytes:
        return b"KEM" + self.kem_id.to_bytes(2, "big")


_M768 = (1088, 1184, mlkem.MLKEM768PrivateKey, mlkem.MLKEM768PublicKey)
_M1024 = (1568, 1568, mlkem.MLKEM1024PrivateKey, mlkem.MLKEM1024PublicKey)

PQ_KEMS: dict[int, PQKem] = {
    # draft-ietf-hpke-pq §7.1 (ML-KEM-512 is left out: cryptography has no ML-KEM-512).
    0x0041: PQKem(0x0041, 1088, 1184, 64, *_M768, None, b""),
    0x0042: PQKem(0x0042, 1568, 1568, 64, *_M1024, None, b""),
    # §7.2: Nenc = Nct + Nelem, Npk = Nek + Nelem, Nsk = 32.
    0x0050: PQKem(0x0050, 1153, 1249, 32, *_M768, _P256, b"MLKEM768-P256"),
    0x0051: PQKem(0x0051, 1665, 1665, 32, *_M1024, _P384, b"MLKEM1024-P384"),
    0x647A: PQKem(0x647A, 1120, 1216, 32, *_M768, _X25519, XWING_LABEL),
}


def labeled_derive(suite_id: bytes, ikm: bytes, label: bytes, context: bytes, length: int) -> bytes:
    """SHAKE256.LabeledDerive (draft-ietf-hpke-hpke §4, single-stage KDF of draft-ietf-hpke-pq
    §5): SHAKE256(ikm || "HPKE-v1" || suite_id || I2OSP(len(label), 2) || label ||
    I2OSP(L, 2) || context, L)."""
    labeled = (
        ikm
        + b"HPKE-v1"
        + suite_id
        + len(label).to_bytes(2, "big")
        + label
        + length.to_bytes(2, "big")
        + context
    )
    return hashlib.shake_256(labeled).digest(length)


def derive(kem: PQKem, ikm: bytes) -> bytes:
    """HPKE DeriveKeyPair (draft-ietf-hpke-pq §4 and §6): the private key (seed) for ``ikm``.

    This is the LabeledDerive form, not X-Wing's bare SHAKE256(ikm) (see the module doc)."""
    if len(ikm) < 32:  # draft-ietf-hpke-pq §6: the input SHOULD be at least 32 bytes
        raise ValueError("seed shorter than 32 bytes")
    return labeled_derive(kem.suite_id, ikm, b"DeriveKeyPair", b"", kem.n_sk)


def generate(kem: PQKem) -> bytes:
    """GenerateKeyPair: a random seed of Nsk bytes (the private key is the seed)."""
    return os.urandom(kem.n_sk)


class PQPrivateKey:
    """A decapsulation key: the seed, expanded once into ML-KEM and group keys."""

    __slots__ = ("_group_key", "_mlkem", "ek_t", "kem", "public_bytes")

    def __init__(self, kem: PQKem, seed: bytes) -> None:
        if len(seed) != kem.n_sk:
            raise ValueError("private key of the wrong length")
        self.kem = kem
        group = kem.group
        if group is None:  # pure ML-KEM: the 64-byte seed is the key (draft-ietf-hpke-pq §4)
            self._mlkem = kem.mlkem_private.from_seed_bytes(seed)
            self._group_key: _GroupPrivate | None = None
            self.ek_t = b""
        else:  # expandKey (draft-irtf-cfrg-concrete-hybrid-kems; X-Wing §5.2)
            full = hashlib.shake_256(seed).digest(_MLKEM_SEED + group.n_seed)
            self._mlkem = kem.mlkem_private.from_seed_bytes(full[:_MLKEM_SEED])
            self._group_key = group.scalar(full[_MLKEM_SEED:])
            self.ek_t = _element(self._group_key.public_key())
        self.public_bytes = self._mlkem.public_key().public_bytes_raw() + self.ek_t

    def decap(self, enc: bytes) -> bytes:
        """Decap: the 32-byte shared secret; ``ValueError`` for a malformed ``enc``."""
        kem = self.kem
        if len(enc) != kem.n_enc:
            raise ValueError("enc of the wrong length")
        ss_pq = self._mlkem.decapsulate(enc[: kem.n_ct_pq])
        if self._group_key is None or kem.group is None:
            return ss_pq
        ct_t = enc[kem.n_ct_pq :]
        ss_t = _exchange(self._group_key, kem.group.load(ct_t))
        return _combine(ss_pq, ss_t, ct_t, self.ek_t, kem.label)


class PQPublicKey:
    """An encapsulation key, validated once (the ML-KEM modulus check of FIPS 203 §7.2)."""

    __slots__ = ("_group_key", "_mlkem", "ek_t", "kem")

    def __init__(self, kem: PQKem, data: bytes) -> None:
        if len(data) != kem.n_pk:
            raise ValueError("public key of the wrong length")
        self.kem = kem
        self._mlkem = kem.mlkem_public.from_public_bytes(data[: kem.n_ek_pq])
        self.ek_t = data[kem.n_ek_pq :]
        self._group_key = None if kem.group is None else kem.group.load(self.ek_t)

    def encap(self) -> tuple[bytes, bytes]:
        """Encap: (shared secret, enc) with fresh randomness."""
        ss_pq, ct_pq = self._mlkem.encapsulate()
        group = self.kem.group
        if group is None or self._group_key is None:
            return ss_pq, ct_pq
        ephemeral = group.generate()
        ct_t = _element(ephemeral.public_key())
        ss_t = _exchange(ephemeral, self._group_key)
        return _combine(ss_pq, ss_t, ct_t, self.ek_t, self.kem.label), ct_pq + ct_t


def _combine(ss_pq: bytes, ss_t: bytes, ct_t: bytes, ek_t: bytes, label: bytes) -> bytes:
    """The combiner (X-Wing §5.3; concrete-hybrid-kems): SHA3-256(ss_PQ || ss_T || ct_T ||
    ek_T || Label)."""
    return hashlib.sha3_256(ss_pq + ss_t + ct_t + ek_t + label).digest()
