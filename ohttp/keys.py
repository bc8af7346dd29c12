"""Key configurations (RFC 9458 §3), private keys and the gateway's key ring.

Decoding ``application/ohttp-keys`` (RFC 9458 §3.2) follows one rule: an encoding error
anywhere rejects the whole list (:class:`~ohttp.errors.KeyConfigError`), because clients that
recover different subsets can be told apart. Encoding errors are: a length prefix that runs
past the end, a configuration shorter than its fixed fields, a public key whose length is not
Npk of its (known) KEM or that is not a valid point, a symmetric-algorithms length outside
4..65532 or not a multiple of 4, bytes after the algorithms inside a configuration, and an
empty body. Algorithms that are *unknown* are not encoding errors: the length prefix delimits
each configuration, so a configuration with an unknown KEM is skipped whole, and unknown
(KDF, AEAD) pairs (including export-only AEAD 0xFFFF) are dropped from a configuration, which
is skipped when none is left. A list that leaves no usable configuration is rejected.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import IntEnum

from ohttp import _hpke
from ohttp.errors import KeyConfigError

__all__ = [
    "AEAD",
    "DEFAULT_SUITES",
    "KDF",
    "KEM",
    "MAX_AGE_CAP",
    "MIN_MAX_AGE",
    "GatewayKey",
    "KeyConfig",
    "KeyRing",
    "SymmetricSuite",
    "KEYS_MEDIA_TYPE",
    "decode_key_configs",
    "encode_key_configs",
]


# RFC 9458 §9.3: the media type of a list of key configurations (§3.2).
KEYS_MEDIA_TYPE = "application/ohttp-keys"


class KEM(IntEnum):
    """HPKE KEM identifiers (RFC 9180 §7.1; the post-quantum ones of draft-ietf-hpke-pq §7)."""

    P256 = 0x0010
    P384 = 0x0011
    P521 = 0x0012
    X25519 = 0x0020
    X448 = 0x0021
    MLKEM768 = 0x0041
    MLKEM1024 = 0x0042
    MLKEM768_P256 = 0x0050
    MLKEM1024_P384 = 0x0051
    X_WING = 0x647A  # MLKEM768-X25519 of draft-ietf-hpke-pq: X-Wing

    @property
    def post_quantum(self) -> bool:
        """Whether the KEM resists a quantum attacker (ML-KEM alone or in a hybrid)."""
        return self in _PQ_KEMS


class KDF(IntEnum):
    """HPKE KDF identifiers (RFC 9180 §7.2)."""

    HKDF_SHA256 = 0x0001
    HKDF_SHA384 = 0x0002
    HKDF_SHA512 = 0x0003


class AEAD(IntEnum):
    """HPKE AEAD identifiers usable for encryption (RFC 9180 §7.3; export-only excluded)."""

    AES_128_GCM = 0x0001
    AES_256_GCM = 0x0002
    CHACHA20_POLY1305 = 0x0003


@dataclass(frozen=True, slots=True)
class SymmetricSuite:
    """One (KDF, AEAD) pair of a key configuration."""

    kdf: KDF
    aead: AEAD


DEFAULT_SUITES: tuple[SymmetricSuite, ...] = (
    SymmetricSuite(KDF.HKDF_SHA256, AEAD.AES_128_GCM),
    SymmetricSuite(KDF.HKDF_SHA256, AEAD.CHACHA20_POLY1305),
)

_PQ_KEMS = frozenset(
    (KEM.MLKEM768, KEM.MLKEM1024, KEM.MLKEM768_P256, KEM.MLKEM1024_P384, KEM.X_WING)
)
_MAX_SUITES = 65532 // 4  # cipher_suites<4..2^16-4> (RFC 9458 §3.1)
_KEM_IDS = frozenset(int(kem) for kem in KEM)
_KDF_IDS = frozenset(int(kdf) for kdf in KDF)
_AEAD_IDS = frozenset(int(aead) for aead in AEAD)


@dataclass(frozen=True, slots=True)
class KeyConfig:
    """A single key configuration (RFC 9458 §3.1); validated when built."""

    key_id: int
    kem: KEM
    public_key: bytes = field(repr=False)
    suites: tuple[SymmetricSuite, ...]
    # The loaded public key: validation and the client's hot path share it.
    _public: _hpke.PublicKey = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not 0 <= self.key_id <= 0xFF:
            raise KeyConfigError("key id out of range")
        if self.kem not in _KEM_IDS:
            raise KeyConfigError("unsupported KEM")
        if not 1 <= len(self.suites) <= _MAX_SUITES:
            raise KeyConfigError("invalid number of symmetric algorithms")
        for suite in self.suites:
            if suite.kdf not in _KDF_IDS or suite.aead not in _AEAD_IDS:
                raise KeyConfigError("unsupported symmetric algorithm")
        object.__setattr__(self, "kem", KEM(self.kem))
        object.__setattr__(self, "suites", tuple(self.suites))
        try:
            public = _hpke.PublicKey(self.kem, bytes(self.public_key))
        except ValueError:
            raise KeyConfigError("invalid public key") from None
        object.__setattr__(self, "_public", public)

    @property
    def hpke_public_key(self) -> _hpke.PublicKey:
        """The loaded public key (for ``ohttp.encapsulation`` and ``ohttp.chunked``)."""
        return self._public

    def encode(self) -> bytes:
        """The KeyConfig encoding of RFC 9458 §3.1."""
        algorithms = b"".join(struct.pack(">HH", s.kdf, s.aead) for s in self.suites)
        return (
            struct.pack(">BH", self.key_id, self.kem)
            + self.public_key
            + struct.pack(">H", len(algorithms))
            + algorithms
        )

    @classmethod
    def decode(cls, data: bytes) -> KeyConfig:
        """Decode one configuration; unknown KEM or no known (KDF, AEAD) -> KeyConfigError."""
        config = _decode_config(bytes(data))
        if config is None:
            raise KeyConfigError("no supported algorithms in key configuration")
        return config


def _decode_config(data: bytes) -> KeyConfig | None:
    """Decode one configuration exactly; ``None`` when its algorithms are all unknown."""
    if len(data) < 3:
        raise KeyConfigError("key configuration truncated")
    key_id, kem_id = struct.unpack_from(">BH", data, 0)
    npk = _hpke.kem_public_key_length(kem_id)
    if npk is None or kem_id not in _KEM_IDS:
        return None  # unknown KEM: its Npk is unknown, so nothing more can be checked
    offset = 3 + npk
    if len(data) < offset + 2:
        raise KeyConfigError("key configuration truncated")
    public_key = data[3:offset]
    (algorithms_length,) = struct.unpack_from(">H", data, offset)
    offset += 2
    # RFC 9458 §3.1: cipher_suites<4..2^16-4>, 4 bytes per pair.
    if algorithms_length < 4 or algorithms_length > 65532 or algorithms_length % 4:
        raise KeyConfigError("invalid symmetric algorithms length")
    if len(data) != offset + algorithms_length:
        raise KeyConfigError("key configuration length mismatch")
    suites: list[SymmetricSuite] = []
    for position in range(offset, len(data), 4):
        kdf_id, aead_id = struct.unpack_from(">HH", data, position)
        if kdf_id in _KDF_IDS and aead_id in _AEAD_IDS:
            suite = SymmetricSuite(KDF(kdf_id), AEAD(aead_id))
            if suite not in suites:
                suites.append(suite)
    if not suites:
        return None
    return KeyConfig(key_id, KEM(kem_id), public_key, tuple(suites))


def encode_key_configs(configs: Iterable[KeyConfig]) -> bytes:
    """The ``application/ohttp-keys`` body: each config with a 2-byte length (RFC 9458 §3.2)."""
    parts = []
    for config in configs:
        encoded = config.encode()
        parts.append(struct.pack(">H", len(encoded)) + encoded)
    return b"".join(parts)


def decode_key_configs(data: bytes) -> list[KeyConfig]:
    """Decode ``application/ohttp-keys``; any encoding error rejects the whole list."""
    data = bytes(data)
    if not data:
        raise KeyConfigError("empty key configuration list")
    configs: list[KeyConfig] = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < 2:
            raise KeyConfigError("key configuration list truncated")
        (length,) = struct.unpack_from(">H", data, offset)
        offset += 2
        if length > len(data) - offset:
            raise KeyConfigError("key configuration list truncated")
        config = _decode_config(data[offset : offset + length])
        offset += length
        if config is not None:
            configs.append(config)
    if not configs:
        raise KeyConfigError("no supported key configuration")
    return configs


# --- private keys -----------------------------------------------------------------------------


@dataclass(frozen=True)
class GatewayKey:
    """One private key with its public configuration and validity window (unix seconds).

    ``not_before``: advertised from then on. ``not_after``: neither advertised nor accepted
    from then on. ``None`` means unbounded.
    """

    config: KeyConfig
    private_key: bytes = field(repr=False)
    not_before: int | None = None
    not_after: int | None = None
    _hpke_key: _hpke.PrivateKey = field(init=False, repr=False, compare=False, hash=False)
    # (kdf id, aead id) -> HPKE suite, for the lookup of RFC 9458 §4.3 step 1b.
    _offered: dict[tuple[int, int], _hpke.Suite] = field(
        init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        try:
            key = _hpke.PrivateKey(self.config.kem, bytes(self.private_key))
        except ValueError:
            raise KeyConfigError("invalid private key") from None
        if key.public_bytes != self.config.public_key:
            raise KeyConfigError("private key does not match its public key")
        if (
            self.not_before is not None
            and self.not_after is not None
            and self.not_after <= self.not_before
        ):
            raise KeyConfigError("key validity window is empty")
        object.__setattr__(self, "_hpke_key", key)
        offered = {
            (int(s.kdf), int(s.aead)): _hpke.get_suite(self.config.kem, s.kdf, s.aead)
            for s in self.config.suites
        }
        object.__setattr__(self, "_offered", offered)

    @property
    def key_id(self) -> int:
        return self.config.key_id

    @property
    def hpke_private_key(self) -> _hpke.PrivateKey:
        """The loaded private key (for ``ohttp.encapsulation`` and ``ohttp.chunked``)."""
        return self._hpke_key

    def offered_suite(self, kdf_id: int, aead_id: int) -> _hpke.Suite | None:
        """The HPKE suite if this key offers (KDF, AEAD), else ``None`` (RFC 9458 §4.3 1b)."""
        return self._offered.get((kdf_id, aead_id))

    @classmethod
    def _from_hpke(
        cls,
        key_id: int,
        kem: KEM,
        key: _hpke.PrivateKey,
        suites: Iterable[SymmetricSuite],
        *,
        not_before: int | None,
        not_after: int | None,
    ) -> GatewayKey:
        config = KeyConfig(key_id, KEM(kem), key.public_bytes, tuple(suites))
        return cls(config, key.raw, not_before, not_after)

    @classmethod
    def generate(
        cls,
        key_id: int,
        kem: KEM = KEM.X25519,
        suites: Iterable[SymmetricSuite] = DEFAULT_SUITES,
        *,
        not_before: int | None = None,
        not_after: int | None = None,
    ) -> GatewayKey:
        """A fresh random key."""
        return cls._from_hpke(
            key_id,
            kem,
            _hpke.PrivateKey.generate(kem),
            suites,
            not_before=not_before,
            not_after=not_after,
        )

    @classmethod
    def from_private_bytes(
        cls,
        key_id: int,
        kem: KEM,
        private_key: bytes,
        suites: Iterable[SymmetricSuite] = DEFAULT_SUITES,
        *,
        not_before: int | None = None,
        not_after: int | None = None,
    ) -> GatewayKey:
        """Import a raw private key (SerializePrivateKey form, RFC 9180 §7.1.2)."""
        try:
            key = _hpke.PrivateKey(kem, bytes(private_key))
        except ValueError:
            raise KeyConfigError("invalid private key") from None
        return cls._from_hpke(key_id, kem, key, suites, not_before=not_before, not_after=not_after)

    @classmethod
    def derive(
        cls,
        key_id: int,
        kem: KEM,
        seed: bytes,
        suites: Iterable[SymmetricSuite] = DEFAULT_SUITES,
        *,
        not_before: int | None = None,
        not_after: int | None = None,
    ) -> GatewayKey:
        """Derive deterministically from a seed of at least Nsk bytes (RFC 9180 DeriveKeyPair)."""
        try:
            key = _hpke.PrivateKey.derive(kem, bytes(seed))
        except ValueError:
            raise KeyConfigError("invalid seed") from None
        return cls._from_hpke(key_id, kem, key, suites, not_before=not_before, not_after=not_after)

    def usable(self, now: float) -> bool:
        """Accepted for decryption: not expired (a key not yet advertised is accepted too)."""
        return self.not_after is None or now < self.not_after

    def active(self, now: float) -> bool:
        """Inside its advertising window."""
        return (self.not_before is None or self.not_before <= now) and self.usable(now)


# --- key ring ---------------------------------------------------------------------------------

MAX_AGE_CAP = 24 * 3600  # Cache-Control max-age never exceeds a day
MIN_MAX_AGE = 60  # ...and never drops below a minute, so caches and mirrors stay useful


class KeyRing:
    """The gateway's keys by key id; lookups run before any cryptography (RFC 9458 §4.3)."""

    def __init__(self, keys: Iterable[GatewayKey]) -> None:
        self._keys: dict[int, GatewayKey] = {}
        for key in keys:
            if key.key_id in self._keys:
                raise KeyConfigError("duplicate key id")
            self._keys[key.key_id] = key

    def __iter__(self) -> Iterator[GatewayKey]:
        return iter(self._keys.values())

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def keys(self) -> tuple[GatewayKey, ...]:
        return tuple(self._keys.values())

    def get(self, key_id: int, now: float | None = None) -> GatewayKey | None:
        """The key for ``key_id`` if it may decrypt now (not expired), else ``None``."""
        key = self._keys.get(key_id)
        if key is None:
            return None
        if key.not_after is not None and (time.time() if now is None else now) >= key.not_after:
            return None
        return key

    def current(self, now: float | None = None) -> list[GatewayKey]:
        """The keys to advertise: active ones, minus those a newer active key of the same KEM
        supersedes (after a rotation the old key still decrypts but is no longer offered)."""
        moment = time.time() if now is None else now
        active = [key for key in self._keys.values() if key.active(moment)]
        newest: dict[KEM, int] = {}
        for key in active:
            start = key.not_before if key.not_before is not None else -1
            newest[key.config.kem] = max(newest.get(key.config.kem, start), start)
        return [
            key
            for key in active
            if (key.not_before if key.not_before is not None else -1) == newest[key.config.kem]
        ]

    def encode_public(self, now: float | None = None) -> bytes:
        """The ``application/ohttp-keys`` body of the advertised keys."""
        return encode_key_configs(key.config for key in self.current(now))

    def max_age(self, now: float | None = None) -> int:
        """Cache-Control max-age: seconds until the advertised set changes, in
        [MIN_MAX_AGE, MAX_AGE_CAP]."""
        moment = time.time() if now is None else now
        changes = [
            instant
            for key in self._keys.values()
            for instant in (key.not_before, key.not_after)
            if instant is not None and instant > moment
        ]
        until_change = int(min(changes) - moment) if changes else MAX_AGE_CAP
        return max(MIN_MAX_AGE, min(MAX_AGE_CAP, until_change))
