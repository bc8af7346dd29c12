"""Key configurations (RFC 9458 §3), private keys, the gateway's key ring and its key file.

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

import contextlib
import errno
import json
import os
import struct
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any

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
    "DEFAULT_ROTATION_OVERLAP",
    "KEYS_MEDIA_TYPE",
    "KEY_FILE_VERSION",
    "add_next_key",
    "decode_key_configs",
    "encode_key_configs",
    "load_key_file",
    "parse_key_file",
    "save_key_file",
]


# RFC 9458 §9.3: the media type of a list of key configurations (§3.2).
KEYS_MEDIA_TYPE = "application/ohttp-keys"


class KEM(IntEnum):
    """HPKE KEM identifiers (RFC 9180 §7.1)."""

    P256 = 0x0010
    P384 = 0x0011
    P521 = 0x0012
    X25519 = 0x0020
    X448 = 0x0021


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


# --- key file ---------------------------------------------------------------------------------
#
# JSON, version 1 (private keys in hex; the file is written with mode 0600):
#   {"version": 1, "keys": [{"key_id": 1, "kem": "X25519",
#     "suites": [["HKDF_SHA256", "AES_128_GCM"], ...], "private_key": "<hex>",
#     "public_key": "<hex, checked against the private key on load>",
#     "not_before": <unix seconds or null>, "not_after": <unix seconds or null>}, ...]}
# Names are those of the KEM, KDF and AEAD enums; other fields in an entry are ignored.

KEY_FILE_VERSION = 1
DEFAULT_ROTATION_OVERLAP = 2 * MAX_AGE_CAP  # old key kept for decryption after a rotation


def _key_to_json(key: GatewayKey) -> dict[str, Any]:
    return {
        "key_id": key.key_id,
        "kem": key.config.kem.name,
        "suites": [[s.kdf.name, s.aead.name] for s in key.config.suites],
        "private_key": key.private_key.hex(),
        "public_key": key.config.public_key.hex(),
        "not_before": key.not_before,
        "not_after": key.not_after,
    }


def _optional_time(value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise KeyConfigError("invalid validity time in key file")
    return value


def _key_from_json(entry: Any) -> GatewayKey:
    if not isinstance(entry, dict):
        raise KeyConfigError("invalid key entry in key file")
    try:
        kem = KEM[entry["kem"]]
        suites = tuple(SymmetricSuite(KDF[kdf], AEAD[aead]) for kdf, aead in entry["suites"])
        private_key = bytes.fromhex(entry["private_key"])
        key_id = entry["key_id"]
    except (KeyError, TypeError, ValueError):
        raise KeyConfigError("invalid key entry in key file") from None
    if not isinstance(key_id, int) or isinstance(key_id, bool):
        raise KeyConfigError("invalid key id in key file")
    key = GatewayKey.from_private_bytes(
        key_id,
        kem,
        private_key,
        suites,
        not_before=_optional_time(entry.get("not_before")),
        not_after=_optional_time(entry.get("not_after")),
    )
    public_hex = entry.get("public_key")
    if public_hex is not None and public_hex != key.config.public_key.hex():
        raise KeyConfigError("public key in key file does not match its private key")
    return key


def parse_key_file(text: str) -> list[GatewayKey]:
    """The keys of a key file's text; ``KeyConfigError`` when it is not a valid key file."""
    try:
        document = json.loads(text)
    except ValueError:
        raise KeyConfigError("key file is not JSON") from None
    if not isinstance(document, dict) or document.get("version") != KEY_FILE_VERSION:
        raise KeyConfigError("unsupported key file version")
    entries = document.get("keys")
    if not isinstance(entries, list) or not entries:
        raise KeyConfigError("key file holds no keys")
    return [_key_from_json(entry) for entry in entries]


def load_key_file(path: str | Path) -> KeyRing:
    """Load a key file written by :func:`save_key_file` (OSError if it cannot be read)."""
    return KeyRing(parse_key_file(Path(path).read_text(encoding="utf-8")))


def save_key_file(path: str | Path, keys: Iterable[GatewayKey], *, force: bool = False) -> None:
    """Write keys atomically with mode 0600; ``FileExistsError`` unless ``force``."""
    ring = KeyRing(keys)  # rejects duplicate key ids before anything is written
    document = {"version": KEY_FILE_VERSION, "keys": [_key_to_json(key) for key in ring]}
    target = Path(path)
    if target.exists() and not force:
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(target))
    # mkstemp creates the file with mode 0600, so private keys are never readable by others.
    descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=".ohttp-keys-")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            json.dump(document, stream, indent=2)
            stream.write("\n")
            stream.flush()
            os.fsync(stream.fileno())
        if force:
            os.replace(temporary, target)
        else:
            os.link(temporary, target)  # atomic, and fails if the file appeared meanwhile
            os.unlink(temporary)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def _next_key_id(used: set[int], after: int) -> int:
    for step in range(1, 257):
        candidate = (after + step) % 256
        if candidate not in used:
            return candidate
    raise KeyConfigError("all 256 key ids are in use")


def add_next_key(
    path: str | Path,
    *,
    now: int | None = None,
    valid_for: int | None = None,
    overlap: int = DEFAULT_ROTATION_OVERLAP,
    kem: KEM | None = None,
    suites: Iterable[SymmetricSuite] | None = None,
) -> GatewayKey:
    """Rotate: add a key with the next free key id to a key file.

    The new key is advertised from ``now`` (until ``now + valid_for`` if given). Older keys of
    the same KEM stop being accepted ``overlap`` seconds later, which must exceed the cache
    lifetime of the advertised configs (``MAX_AGE_CAP``); keys already expired are dropped.
    """
    moment = int(time.time()) if now is None else now
    existing = [key for key in load_key_file(path) if key.usable(moment)]
    latest = max(
        existing, key=lambda key: key.not_before if key.not_before is not None else -1, default=None
    )
    new_kem = kem if kem is not None else (latest.config.kem if latest else KEM.X25519)
    new_suites = (
        tuple(suites)
        if suites is not None
        else (latest.config.suites if latest else DEFAULT_SUITES)
    )
    retire_at = moment + overlap
    kept = [_retired(key, retire_at) if key.config.kem == new_kem else key for key in existing]
    used = {key.key_id for key in kept}
    key_id = _next_key_id(used, latest.key_id if latest else 0)
    new_key = GatewayKey.generate(
        key_id,
        new_kem,
        new_suites,
        not_before=moment,
        not_after=None if valid_for is None else moment + valid_for,
    )
    save_key_file(path, [*kept, new_key], force=True)
    return new_key


def _retired(key: GatewayKey, retire_at: int) -> GatewayKey:
    if key.not_after is not None and key.not_after <= retire_at:
        return key
    if key.not_before is not None and key.not_before >= retire_at:
        return key  # a key scheduled for later is not the one being replaced
    return GatewayKey(key.config, key.private_key, key.not_before, retire_at)
