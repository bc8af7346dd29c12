"""HPKE (RFC 9180) base mode: the only module of ``ohttp`` touching HPKE and AEAD primitives.

Written on ``cryptography`` (DH exchange, the RFC 9180 §4 LabeledExtract / LabeledExpand key
schedule on HMAC, AES-GCM / ChaCha20-Poly1305); it covers every suite. ``pyhpke`` runs only
DHKEM DeriveKeyPair here; the tests use it as an independent oracle (``tests/pyhpke_oracle.py``).
Helpers live beside it: ``_hkdf`` (HKDF and the labeled variants), ``_kem_dh`` (the KEM table
and DH key material) and ``_kem_pq`` (ML-KEM and the ML-KEM hybrids of draft-ietf-hpke-pq,
X-Wing among them, whose Decap output is the shared secret itself).

Everything that depends only on the key, the suite and the info string (suite ids, the public
key bytes, ``psk_id_hash``, ``info_hash`` and so the key schedule context) is computed once in
:class:`Receiver` / :class:`Sender`; a request then costs one DH, ten HMACs and the AEAD calls.

The surface for the chunked engineer (draft-ietf-ohai-chunked-ohttp-08) is: :func:`get_suite`,
:class:`PrivateKey` / :class:`PublicKey` and their ``receiver(suite, info)`` /
``sender(suite, info)``, :class:`Context` (``seal`` / ``open`` with explicit AAD by the
context's own sequence number, ``export``), :func:`derive_response_aead` with a caller-given
export label, and :class:`AEADState` (``seal`` / ``open`` by explicit counter, nonce = base
XOR counter).

Failures while opening raise :class:`~ohttp.errors.DecryptionError` with its fixed message;
invalid key material passed by the caller raises ``ValueError``.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar, cast

import pyhpke
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from ohttp import _kem_pq
from ohttp._hkdf import Labeled as _Labeled
from ohttp._hkdf import expand, extract
from ohttp._kem_dh import KEMS as _KEMS
from ohttp._kem_dh import KemParams as _KemParams
from ohttp._kem_dh import PrivateObject as _PrivateObject
from ohttp._kem_dh import PublicObject as _PublicObject
from ohttp._kem_dh import exchange as _exchange
from ohttp._kem_dh import generate as _generate
from ohttp._kem_dh import load_private as _load_private
from ohttp._kem_dh import load_public as _load_public
from ohttp._kem_dh import private_bytes as _private_bytes
from ohttp._kem_dh import public_bytes as _public_bytes
from ohttp.errors import DecryptionError

__all__ = [
    "AEADState",
    "Context",
    "PrivateKey",
    "PublicKey",
    "Receiver",
    "Sender",
    "Suite",
    "derive_response_aead",
    "extract",
    "expand",
    "get_suite",
    "is_supported",
    "kem_private_key_length",
    "kem_public_key_length",
    "random_response_nonce",
    "response_nonce_length",
]

_MODE_BASE = b"\x00"
_TAG_LENGTH = 16  # Nt of every AEAD RFC 9180 §7.3 defines


# --- algorithm tables (RFC 9180 §7.1-7.3) -------------------------------------------------


_KDFS: dict[int, hashes.HashAlgorithm] = {
    0x0001: hashes.SHA256(),
    0x0002: hashes.SHA384(),
    0x0003: hashes.SHA512(),
}

_AeadFactory = Callable[[bytes], "AESGCM | ChaCha20Poly1305"]
# aead id -> (factory, Nk, Nn); export-only (0xFFFF) is not an encryption AEAD and is absent.
_AEADS: dict[int, tuple[_AeadFactory, int, int]] = {
    0x0001: (AESGCM, 16, 12),
    0x0002: (AESGCM, 32, 12),
    0x0003: (ChaCha20Poly1305, 32, 12),
}


def kem_public_key_length(kem_id: int) -> int | None:
    """Npk of a KEM (= Nenc for DHKEMs, not for the post-quantum KEMs), or ``None`` when the
    KEM is not supported."""
    params = _KEMS.get(kem_id)
    return None if params is None else params.n_pk


def kem_private_key_length(kem_id: int) -> int | None:
    """Nsk of a KEM, or ``None`` when the KEM is not supported."""
    params = _KEMS.get(kem_id)
    return None if params is None else params.n_sk


def is_supported(kem_id: int, kdf_id: int, aead_id: int) -> bool:
    """Whether this module can run the suite (every KEM, KDF, AEAD of RFC 9180 but export-only,
    and the ML-KEM and hybrid KEMs of draft-ietf-hpke-pq)."""
    return kem_id in _KEMS and kdf_id in _KDFS and aead_id in _AEADS


# --- suites -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class Suite:
    """An HPKE cipher suite with everything that depends on it alone precomputed.

    Obtain it from :func:`get_suite`, which returns one shared instance per suite; equality
    and hashing are by identity, which keeps the per-key caches cheap.
    """

    kem_id: int
    kdf_id: int
    aead_id: int
    kem: _KemParams = field(repr=False, compare=False)
    kdf_hash: hashes.HashAlgorithm = field(repr=False, compare=False)
    aead_factory: _AeadFactory = field(repr=False, compare=False)
    nk: int = field(repr=False, compare=False)
    nn: int = field(repr=False, compare=False)
    labeled: _Labeled = field(repr=False, compare=False)  # suite_id = "HPKE" || ids
    kem_labeled: _Labeled = field(repr=False, compare=False)  # suite_id = "KEM" || kem_id
    psk_id_hash: bytes = field(repr=False, compare=False)
    # Constant heads of labeled_info for the expansions every request makes.
    key_head: bytes = field(repr=False, compare=False)
    base_nonce_head: bytes = field(repr=False, compare=False)
    exp_head: bytes = field(repr=False, compare=False)
    shared_secret_head: bytes = field(repr=False, compare=False)

    nh: int = field(repr=False, compare=False)
    n_enc: int = field(repr=False, compare=False)
    nt: int = field(repr=False, compare=False)
    n_response_nonce: int = field(repr=False, compare=False)  # max(Nn, Nk), RFC 9458 §4.4


_SUITES: dict[tuple[int, int, int], Suite] = {}


def get_suite(kem_id: int, kdf_id: int, aead_id: int) -> Suite:
    """The precomputed suite; ``ValueError`` when an algorithm is not supported."""
    ids = (kem_id, kdf_id, aead_id)
    cached = _SUITES.get(ids)
    if cached is not None:
        return cached
    if not is_supported(*ids):
        raise ValueError("unsupported HPKE suite")
    factory, nk, nn = _AEADS[aead_id]
    kdf_hash = _KDFS[kdf_id]
    labeled = _Labeled(kdf_hash, b"HPKE" + struct.pack(">HHH", *ids))
    # Base mode has psk_id = "" (RFC 9180 §5.1), so psk_id_hash is a constant of the suite.
    psk_id_hash = labeled.extract(b"", b"psk_id_hash", b"")
    kem = _KEMS[kem_id]
    kem_labeled = _Labeled(kem.hash, b"KEM" + struct.pack(">H", kem_id))
    suite = Suite(
        kem_id,
        kdf_id,
        aead_id,
        kem,
        kdf_hash,
        factory,
        nk,
        nn,
        labeled,
        kem_labeled,
        psk_id_hash,
        labeled.expand_info(b"key", nk),
        labeled.expand_info(b"base_nonce", nn),
        labeled.expand_info(b"exp", kdf_hash.digest_size),
        kem_labeled.expand_info(b"shared_secret", kem.n_secret),
        kdf_hash.digest_size,
        kem.n_enc,
        _TAG_LENGTH,
        max(nn, nk),
    )
    _SUITES[ids] = suite  # bounded: 5 x 3 x 3 suites at most
    return suite


def response_nonce_length(suite: Suite) -> int:
    """max(Nn, Nk): the length of the exported secret and response nonce (RFC 9458 §4.4)."""
    return suite.n_response_nonce


# --- AEAD with an explicit counter ----------------------------------------------------------


class AEADState:
    """An AEAD key and base nonce; message ``seq`` uses nonce = base XOR seq (RFC 9180 §5.2)."""

    __slots__ = ("_aead", "_base_nonce", "_max_seq", "_nn")

    def __init__(self, suite: Suite, key: bytes, base_nonce: bytes) -> None:
        self._aead = suite.aead_factory(key)
        self._base_nonce = base_nonce
        self._nn = suite.nn
        self._max_seq = (1 << (8 * suite.nn)) - 1

    def nonce(self, seq: int) -> bytes:
        if seq == 0:
            return self._base_nonce
        if not 0 <= seq < self._max_seq:  # RFC 9180 §5.2: MessageLimitReachedError
            raise ValueError("AEAD sequence number out of range")
        counter = seq.to_bytes(self._nn, "big")
        return bytes(a ^ b for a, b in zip(self._base_nonce, counter, strict=True))

    def seal(self, seq: int, plaintext: bytes, aad: bytes = b"") -> bytes:
        return self._aead.encrypt(self.nonce(seq), plaintext, aad)

    def open(self, seq: int, ciphertext: bytes | memoryview, aad: bytes = b"") -> bytes:
        """Open message ``seq``; any failure is a :class:`DecryptionError`."""
        if len(ciphertext) < _TAG_LENGTH:
            raise DecryptionError()
        try:
            return self._aead.decrypt(self.nonce(seq), ciphertext, aad)
        except (InvalidTag, ValueError):
            raise DecryptionError() from None


# --- contexts -------------------------------------------------------------------------------


class Context(Protocol):
    """An HPKE encryption context (RFC 9180 §5.2, §5.3)."""

    @property
    def sequence(self) -> int: ...

    def seal(self, plaintext: bytes, aad: bytes = b"") -> bytes: ...

    def open(self, ciphertext: bytes | memoryview, aad: bytes = b"") -> bytes: ...

    def export(self, exporter_context: bytes, length: int) -> bytes: ...


class _DirectContext:
    __slots__ = ("_aead", "_exporter_secret", "_seq", "_suite")

    def __init__(self, suite: Suite, aead: AEADState, exporter_secret: bytes) -> None:
        self._suite = suite
        self._aead = aead
        self._exporter_secret = exporter_secret
        self._seq = 0

    @property
    def sequence(self) -> int:
        return self._seq

    def seal(self, plaintext: bytes, aad: bytes = b"") -> bytes:
        ciphertext = self._aead.seal(self._seq, plaintext, aad)
        self._seq += 1
        return ciphertext

    def open(self, ciphertext: bytes | memoryview, aad: bytes = b"") -> bytes:
        plaintext = self._aead.open(self._seq, ciphertext, aad)
        self._seq += 1  # only after success (RFC 9180 §5.2 ContextR.Open)
        return plaintext

    def export(self, exporter_context: bytes, length: int) -> bytes:
        return self._suite.labeled.expand(self._exporter_secret, b"sec", exporter_context, length)


def _key_schedule_context(suite: Suite, info: bytes) -> bytes:
    info_hash = suite.labeled.extract(b"", b"info_hash", info)
    return _MODE_BASE + suite.psk_id_hash + info_hash


def _key_schedule(suite: Suite, shared_secret: bytes, context: bytes) -> _DirectContext:
    """RFC 9180 §5.1 KeySchedule for mode_base (psk = "")."""
    labeled = suite.labeled
    secret = labeled.keyed(labeled.extract(shared_secret, b"secret", b""))
    key = labeled.expand_keyed(secret, suite.key_head, context, suite.nk)
    base_nonce = labeled.expand_keyed(secret, suite.base_nonce_head, context, suite.nn)
    exporter = labeled.expand_keyed(secret, suite.exp_head, context, suite.nh, last=True)
    return _DirectContext(suite, AEADState(suite, key, base_nonce), exporter)


def _extract_and_expand(suite: Suite, dh: bytes, kem_context: bytes) -> bytes:
    """DHKEM ExtractAndExpand (RFC 9180 §4.1), with the KEM's own hash and suite id."""
    labeled = suite.kem_labeled
    eae_prk = labeled.keyed(labeled.extract(b"", b"eae_prk", dh))
    return labeled.expand_keyed(eae_prk, suite.shared_secret_head, kem_context, suite.kem.n_secret)


# --- KEM keys -------------------------------------------------------------------------------


class PrivateKey:
    """A KEM private key, loaded once; the gateway keeps one per key id."""

    __slots__ = ("_kem", "_key", "_pq", "_receivers", "public_bytes", "raw")

    def __init__(self, kem_id: int, raw: bytes) -> None:
        kem = _kem(kem_id)
        self._kem = kem
        self.raw = bytes(raw)
        # Exactly one of _key (a DHKEM) and _pq (a draft-ietf-hpke-pq KEM) is set.
        self._key: _PrivateObject | None = None
        self._pq: _kem_pq.PQPrivateKey | None = None
        if kem.pq is not None:
            self._pq = _kem_pq.PQPrivateKey(kem.pq, self.raw)
            self.public_bytes = self._pq.public_bytes
        else:
            self._key = _load_private(kem, raw)
            self.public_bytes = _public_bytes(kem, self._key.public_key())
        self._receivers: dict[tuple[Suite, bytes], Receiver] = {}

    @property
    def kem_id(self) -> int:
        return self._kem.kem_id

    @classmethod
    def generate(cls, kem_id: int) -> PrivateKey:
        kem = _kem(kem_id)
        if kem.pq is not None:
            return cls(kem_id, _kem_pq.generate(kem.pq))
        return cls(kem_id, _private_bytes(kem, _generate(kem)))

    @classmethod
    def derive(cls, kem_id: int, ikm: bytes) -> PrivateKey:
        """DeriveKeyPair(ikm): RFC 9180 §7.1.3 run by pyhpke, or draft-ietf-hpke-pq's."""
        kem = _kem(kem_id)
        if kem.pq is not None:
            return cls(kem_id, _kem_pq.derive(kem.pq, ikm))
        if len(ikm) < kem.n_sk:  # RFC 9180 §7.1.3: ikm SHOULD have Nsk bytes
            raise ValueError("seed shorter than Nsk")
        any_suite = pyhpke.CipherSuite.new(
            pyhpke.KEMId(kem_id), pyhpke.KDFId.HKDF_SHA256, pyhpke.AEADId.AES128_GCM
        )
        pair = any_suite.kem.derive_key_pair(ikm)
        return cls(kem_id, _private_bytes(kem, pair.private_key.raw))

    def receiver(self, suite: Suite, info: bytes) -> Receiver:
        """The prepared receiver for this suite and info (cached: both come from a short list)."""
        prepared = self._receivers.get((suite, info))
        if prepared is None:
            prepared = _cache(self._receivers, Receiver(self, suite, info))
        return prepared

    def _decap(self, suite: Suite, enc: bytes) -> bytes:
        """Decap: DHKEM (RFC 9180 §4.1) or a PQ KEM, whose output is the shared secret itself;
        ``ValueError`` for an invalid or small-order enc."""
        if self._key is None:
            return cast(_kem_pq.PQPrivateKey, self._pq).decap(enc)
        dh = _exchange(self._kem, self._key, _load_public(self._kem, enc))
        return _extract_and_expand(suite, dh, enc + self.public_bytes)


class _Prepared:
    """What one key, suite and info share across setups: the key schedule context."""

    __slots__ = ("_context", "info", "suite")

    def __init__(self, kem_id: int, suite: Suite, info: bytes) -> None:
        if suite.kem_id != kem_id:
            raise ValueError("suite KEM does not match the key")
        self.suite = suite
        self.info = info
        self._context = _key_schedule_context(suite, info)


_P = TypeVar("_P", bound=_Prepared)
_MAX_PREPARED = 64  # prepared (suite, info) pairs kept per key; bounded, never per enc


def _cache(cache: dict[tuple[Suite, bytes], _P], prepared: _P) -> _P:
    if len(cache) < _MAX_PREPARED:
        cache[(prepared.suite, prepared.info)] = prepared
    return prepared


def _kem(kem_id: int) -> _KemParams:
    kem = _KEMS.get(kem_id)
    if kem is None:
        raise ValueError("unsupported KEM")
    return kem


class Receiver(_Prepared):
    """SetupBaseR for one key, suite and info, with the key schedule context precomputed."""

    __slots__ = ("_key",)

    def __init__(self, key: PrivateKey, suite: Suite, info: bytes) -> None:
        super().__init__(key.kem_id, suite, info)
        self._key = key

    def setup(self, enc: bytes) -> Context:
        """SetupBaseR(enc, skR, info); a bad ``enc`` raises :class:`DecryptionError`."""
        try:
            shared_secret = self._key._decap(self.suite, enc)
        except ValueError:
            raise DecryptionError() from None
        return _key_schedule(self.suite, shared_secret, self._context)


class PublicKey:
    """A KEM public key, validated and loaded once (the client side)."""

    __slots__ = ("_kem", "_key", "_pq", "_senders", "raw")

    def __init__(self, kem_id: int, raw: bytes) -> None:
        kem = _kem(kem_id)
        self._kem = kem
        self._key = None if kem.pq is not None else _load_public(kem, raw)
        self._pq = None if kem.pq is None else _kem_pq.PQPublicKey(kem.pq, bytes(raw))
        self.raw = bytes(raw)
        self._senders: dict[tuple[Suite, bytes], Sender] = {}

    @property
    def kem_id(self) -> int:
        return self._kem.kem_id

    def sender(self, suite: Suite, info: bytes) -> Sender:
        """The prepared sender for this suite and info (cached like :meth:`PrivateKey.receiver`)."""
        prepared = self._senders.get((suite, info))
        if prepared is None:
            prepared = _cache(self._senders, Sender(self, suite, info))
        return prepared

    def _encap(self, suite: Suite, ephemeral: _PrivateObject) -> tuple[bytes, bytes]:
        """DHKEM Encap (RFC 9180 §4.1) with the given ephemeral key."""
        enc = _public_bytes(self._kem, ephemeral.public_key())
        dh = _exchange(self._kem, ephemeral, cast(_PublicObject, self._key))
        return _extract_and_expand(suite, dh, enc + self.raw), enc


class Sender(_Prepared):
    """SetupBaseS for one public key, suite and info, with the key schedule context precomputed."""

    __slots__ = ("_key",)

    def __init__(self, key: PublicKey, suite: Suite, info: bytes) -> None:
        super().__init__(key.kem_id, suite, info)
        self._key = key

    def setup(self, ephemeral_private_key: bytes | None = None) -> tuple[bytes, Context]:
        """SetupBaseS(pkR, info) -> (enc, context); the ephemeral key is injectable for tests
        (DHKEMs only: ``cryptography`` offers no derandomized ML-KEM encapsulation)."""
        pq = self._key._pq
        if pq is not None:
            if ephemeral_private_key is not None:
                raise ValueError("a post-quantum KEM takes no injected ephemeral key")
            shared_secret, enc = pq.encap()
            return enc, _key_schedule(self.suite, shared_secret, self._context)
        kem = self.suite.kem
        ephemeral = (
            _generate(kem)
            if ephemeral_private_key is None
            else _load_private(kem, ephemeral_private_key)
        )
        shared_secret, enc = self._key._encap(self.suite, ephemeral)
        return enc, _key_schedule(self.suite, shared_secret, self._context)


# --- RFC 9458 §4.4 response keys ------------------------------------------------------------


def derive_response_aead(
    context: Context, suite: Suite, export_label: bytes, enc: bytes, response_nonce: bytes
) -> AEADState:
    """The response AEAD of RFC 9458 §4.4 (chunked-08 §6.2 passes its own export label).

    secret = Export(label, max(Nn, Nk)); prk = Extract(enc || response_nonce, secret);
    key = Expand(prk, "key", Nk); nonce = Expand(prk, "nonce", Nn).
    """
    secret = context.export(export_label, suite.n_response_nonce)
    prk = hmac.HMAC(extract(suite.kdf_hash, enc + response_nonce, secret), suite.kdf_hash)
    key = _expand_one_block(prk.copy(), b"key", suite.nk)
    nonce = _expand_one_block(prk, b"nonce", suite.nn)
    return AEADState(suite, key, nonce)


def _expand_one_block(prk: hmac.HMAC, info: bytes, length: int) -> bytes:
    """HKDF-Expand for length <= Nh (always true for AEAD keys and nonces): T(1)[:length].
    Consumes the keyed ``prk`` state."""
    prk.update(info + b"\x01")
    return prk.finalize()[:length]


def random_response_nonce(suite: Suite) -> bytes:
    """A fresh response nonce from the OS CSPRNG (RFC 9458 §4.4 step 2)."""
    return os.urandom(suite.n_response_nonce)
