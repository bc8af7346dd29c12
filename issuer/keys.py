"""The issuer's key file and accounts file.

Key file: one or more PKCS#8 PEM 2048-bit RSA keys, concatenated (``ohttp keygen --issuer``
writes one, mode 0600). Every key in the file is advertised in the directory and accepted for
issuance; the first is the current one. Rotation: append a new key, SIGHUP, wait until clients
and gateways have fetched the directory again (its max-age), move the new key first, and later
remove the old one and SIGHUP again (the same steps as the gateway's key file).

Accounts file: one bearer credential per line; blank lines and lines starting with ``#`` are
skipped. Only SHA-256 digests of the credentials are kept in memory.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ohttp.privacypass import (
    IssuerKeyPair,
    KeyFormatError,
    generate_issuer_key,
    load_private_key_pem,
)

__all__ = [
    "IssuerKeys",
    "account_digest",
    "load_accounts",
    "load_issuer_keys",
    "rotate_issuer_key",
    "write_issuer_key",
]

_PEM_BLOCK = re.compile(rb"-----BEGIN PRIVATE KEY-----.+?-----END PRIVATE KEY-----", re.DOTALL)
_MAX_KEYS = 16


@dataclass(frozen=True, eq=False)
class IssuerKeys:
    """The keys of one key file: ``current`` first, each found by its truncated key id."""

    pairs: tuple[IssuerKeyPair, ...]

    def __post_init__(self) -> None:
        truncated = [pair.token_key_id[-1] for pair in self.pairs]
        if not self.pairs or len(self.pairs) > _MAX_KEYS:
            raise KeyFormatError("the key file must hold 1 to 16 keys")
        # RFC 9578 §6.2: the issuer finds the key by the last byte of its id; two keys that
        # share it could not be told apart.
        if len(set(truncated)) != len(truncated):
            raise KeyFormatError("two keys share a truncated key id; generate another key")

    @property
    def current(self) -> IssuerKeyPair:
        return self.pairs[0]

    def by_truncated_id(self, truncated: int) -> IssuerKeyPair | None:
        return next((p for p in self.pairs if p.token_key_id[-1] == truncated), None)


def load_issuer_keys(path: Path) -> IssuerKeys:
    """Read a key file; OSError or :class:`KeyFormatError` (fixed messages)."""
    blocks = _pem_blocks(path)
    if not blocks:
        raise KeyFormatError("no PKCS#8 private key in the key file")
    return IssuerKeys(tuple(load_private_key_pem(block) for block in blocks))


def write_issuer_key(path: Path, *, force: bool = False) -> IssuerKeyPair:
    """Create a fresh issuer key file, mode 0600 from its creation (never readable by others)."""
    pair, pem = generate_issuer_key()
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    descriptor = os.open(path, flags, 0o600)
    with os.fdopen(descriptor, "wb") as stream:
        os.fchmod(stream.fileno(), 0o600)  # O_CREAT's mode does not apply to an existing file
        stream.write(pem)
    return pair


def account_digest(credential: bytes) -> bytes:
    """What identifies an account in memory and in the shared store: never the credential.

    Credentials are long random secrets, so an unkeyed hash reveals nothing usable.
    """
    return hashlib.sha256(b"ohttp issuer account\x00" + credential).digest()


def load_accounts(path: Path) -> frozenset[bytes]:
    """The digests of the credentials in an accounts file."""
    digests = set()
    for line in path.read_bytes().splitlines():
        credential = line.strip()
        if credential and not credential.startswith(b"#"):
            digests.add(account_digest(credential))
    return frozenset(digests)


def rotate_issuer_key(path: Path) -> IssuerKeys:
    """One rotation step: [current] -> [current, next]; [current, next] -> [next, new].

    The directory lists keys in file order and clients use the first, so a next key is
    published (and accepted) one rotation before clients use it: gateways and wallets learn
    it ahead of time. The retired key's unspent tokens stop verifying.
    """
    keys = load_issuer_keys(path)
    pair, pem = generate_issuer_key()
    kept = [_pem_blocks(path)[-1]] if len(keys.pairs) > 1 else _pem_blocks(path)
    new = IssuerKeys((*(load_private_key_pem(block) for block in kept), pair))
    descriptor = os.open(path, os.O_WRONLY | os.O_TRUNC)
    with os.fdopen(descriptor, "wb") as stream:
        os.fchmod(stream.fileno(), 0o600)
        stream.write(b"\n".join((*kept, pem.strip())) + b"\n")
    return new


def _pem_blocks(path: Path) -> list[bytes]:
    return list(_PEM_BLOCK.findall(path.read_bytes()))
