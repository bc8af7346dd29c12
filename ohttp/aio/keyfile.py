"""The gateway's key file: reading, writing (atomically, mode 0600) and rotation.

File I/O, so it lives outside the sans-IO core; the keys themselves are :mod:`ohttp.keys`.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ohttp.errors import KeyConfigError
from ohttp.keys import (
    AEAD,
    DEFAULT_SUITES,
    KDF,
    KEM,
    MAX_AGE_CAP,
    GatewayKey,
    KeyRing,
    SymmetricSuite,
)

__all__ = [
    "DEFAULT_ROTATION_OVERLAP",
    "KEY_FILE_VERSION",
    "add_next_key",
    "load_key_file",
    "parse_key_file",
    "save_key_file",
]

# Format:
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


def add_key(
    path: str | Path,
    kem: KEM,
    *,
    key_id: int | None = None,
    suites: Iterable[SymmetricSuite] = DEFAULT_SUITES,
) -> GatewayKey:
    """Add a fresh key of ``kem`` beside the keys of a key file, retiring none of them.

    This is how one file serves, say, an X-Wing and an X25519 key in one key list, each under
    its own key id (RFC 9458 §3.2 allows several configurations). ``key_id`` defaults to the
    next free id; an id already in use is a ``KeyConfigError``. To replace a key of the same
    KEM, rotate instead (:func:`add_next_key`).
    """
    existing = list(load_key_file(path))
    used = {key.key_id for key in existing}
    if key_id is None:
        key_id = _next_key_id(used, max(used, default=0))
    elif key_id in used:
        raise KeyConfigError(f"key id {key_id} is already in the key file")
    new_key = GatewayKey.generate(key_id, kem, suites)
    save_key_file(path, [*existing, new_key], force=True)
    return new_key
