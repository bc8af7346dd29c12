"""Signed notes (c2sp.org/signed-note) with Ed25519 keys.

A note is UTF-8 text ending in a newline, a blank line, and one or more signature lines
``— <name> base64(key ID || signature)``. :func:`open_note` parses a note strictly and checks
it against known :class:`Verifier` objects: unknown signatures are kept aside, a known one
that fails rejects the note (:class:`~ohttp.tlog.errors.InvalidSignatureError`), and a note
with no known valid signature is rejected (:class:`~ohttp.tlog.errors.UnverifiedNoteError`).

Keys travel as strings: a verifier key (*vkey*) ``<name>+<hex key ID>+base64(0x01 || pubkey)``
(:meth:`Ed25519Verifier.from_vkey`, :attr:`Ed25519Verifier.vkey`) and a signer key
``PRIVATE+KEY+<name>+<hex key ID>+base64(0x01 || seed)`` (:meth:`Ed25519Signer.from_skey`,
:attr:`Ed25519Signer.skey`). The timestamped cosignature type 0x04 lives in
:mod:`ohttp.tlog.witness` and plugs into :func:`open_note` through the same protocol.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import ClassVar, Protocol, Self

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ohttp.tlog._text import b64decode, b64encode
from ohttp.tlog.errors import (
    InvalidSignatureError,
    NoteError,
    SignerKeyError,
    UnverifiedNoteError,
)

__all__ = [
    "ALG_ED25519",
    "MAX_SIGNATURES",
    "Ed25519Signer",
    "Ed25519Verifier",
    "NamedPublicKey",
    "NamedSeed",
    "Note",
    "OpenedNote",
    "Signature",
    "Signer",
    "Verifier",
    "check_key_name",
    "key_id",
    "open_note",
    "parse_note",
    "sign_note",
    "split_vkey",
]

ALG_ED25519 = 0x01  # "0x01 — Ed25519 signatures as specified by this document"
# "Verifiers SHOULD apply a maximum limit ... but MUST accept at least up to 16 signatures";
# 100 is the limit of golang.org/x/mod/sumdb/note.
MAX_SIGNATURES = 100
SIGNATURE_PREFIX = "\u2014 "  # em dash, space
_HEX_ID = re.compile(r"[0-9a-f]{8}")


def key_id(name: str, alg: int, public_key: bytes) -> int:
    """SHA-256(key name || 0x0A || signature type || public key)[:4], big-endian."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


def check_key_name(name: str) -> None:
    """Key names "MUST be non-empty and MUST NOT contain any Unicode spaces or plus"."""
    if not name or "+" in name or any(c.isspace() or c < " " for c in name):
        raise NoteError("invalid key name")


def split_vkey(vkey: str) -> tuple[str, int, int, bytes]:
    """Split ``<name>+<hex key ID>+base64(type || key)`` into (name, key ID, type, key).

    Checks the syntax and that the key ID is the one derived from the rest.
    """
    name, _, rest = vkey.partition("+")
    hex_id, _, encoded = rest.partition("+")
    check_key_name(name)
    material = b64decode(encoded)
    if _HEX_ID.fullmatch(hex_id) is None or not material:
        raise NoteError("malformed verifier key")
    if int(hex_id, 16) != key_id(name, material[0], material[1:]):
        raise NoteError("verifier key ID does not match its key")
    return name, int(hex_id, 16), material[0], material[1:]


class Verifier(Protocol):
    """What :func:`open_note` needs of a known key."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> int: ...

    def verify(self, text: bytes, signature: bytes) -> bool:
        """Whether ``signature`` (without its key ID) is valid for the note ``text``."""
        ...


class Signer(Protocol):
    """What :func:`sign_note` needs of a private key."""

    def sign(self, text: bytes) -> Signature:
        """A signature line's content over the note ``text``."""
        ...


def _ed25519_public(raw: bytes) -> Ed25519PublicKey:
    if len(raw) != 32:
        raise NoteError("malformed verifier key")
    return Ed25519PublicKey.from_public_bytes(raw)


@dataclass(frozen=True, slots=True)
class NamedPublicKey:
    """A named Ed25519 public key of signature type ``ALG``: the base of the verifiers."""

    ALG: ClassVar[int] = ALG_ED25519
    name: str
    public_key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        check_key_name(self.name)
        _ed25519_public(self.public_key)

    @property
    def key_id(self) -> int:
        return key_id(self.name, self.ALG, self.public_key)

    @property
    def vkey(self) -> str:
        """The verifier key string."""
        material = b64encode(bytes([self.ALG]) + self.public_key)
        return f"{self.name}+{self.key_id:08x}+{material}"

    @classmethod
    def from_vkey(cls, vkey: str) -> Self:
        """Parse a verifier key string of this class's signature type."""
        name, _, alg, public_key = split_vkey(vkey)
        if alg != cls.ALG:
            raise NoteError("verifier key of another signature type")
        return cls(name, public_key)

    def _verify(self, message: bytes, signature: bytes) -> bool:
        try:
            _ed25519_public(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True, slots=True)
class NamedSeed:
    """A named 32-byte Ed25519 seed (RFC 8032): the base of the signers."""

    name: str
    seed: bytes = field(repr=False)

    def __post_init__(self) -> None:
        check_key_name(self.name)
        if len(self.seed) != 32:
            raise SignerKeyError("malformed signer key")

    @classmethod
    def generate(cls, name: str) -> Self:
        """A fresh random key."""
        return cls(name, os.urandom(32))

    @property
    def public_key(self) -> bytes:
        public = Ed25519PrivateKey.from_private_bytes(self.seed).public_key()
        return public.public_bytes(Encoding.Raw, PublicFormat.Raw)

    def _sign(self, message: bytes) -> bytes:
        return Ed25519PrivateKey.from_private_bytes(self.seed).sign(message)


@dataclass(frozen=True, slots=True)
class Ed25519Verifier(NamedPublicKey):
    """An Ed25519 note verifier (signature type 0x01)."""

    def verify(self, text: bytes, signature: bytes) -> bool:
        return self._verify(text, signature)


@dataclass(frozen=True, slots=True)
class Ed25519Signer(NamedSeed):
    """An Ed25519 note signer (signature type 0x01)."""

    @property
    def verifier(self) -> Ed25519Verifier:
        return Ed25519Verifier(self.name, self.public_key)

    @property
    def key_id(self) -> int:
        return self.verifier.key_id

    @property
    def skey(self) -> str:
        """The private signer key string (a secret)."""
        material = b64encode(bytes([ALG_ED25519]) + self.seed)
        return f"PRIVATE+KEY+{self.name}+{self.key_id:08x}+{material}"

    @classmethod
    def from_skey(cls, skey: str) -> Ed25519Signer:
        """Parse a ``PRIVATE+KEY+...`` signer key string; its key ID must match."""
        prefix, _, rest = skey.partition("+KEY+")
        name, _, rest = rest.partition("+")
        hex_id, _, encoded = rest.partition("+")
        material = b64decode(encoded)
        if prefix != "PRIVATE" or _HEX_ID.fullmatch(hex_id) is None or material is None:
            raise SignerKeyError("malformed signer key")
        if len(material) != 33 or material[0] != ALG_ED25519:
            raise SignerKeyError("malformed signer key")
        try:
            signer = cls(name, material[1:])
        except NoteError:
            raise SignerKeyError("malformed signer key") from None
        if signer.key_id != int(hex_id, 16):
            raise SignerKeyError("signer key ID does not match its key")
        return signer

    def sign(self, text: bytes) -> Signature:
        return Signature(self.name, self.key_id, self._sign(text))


@dataclass(frozen=True, slots=True)
class Signature:
    """One signature line: key name, key ID and the signature bytes after the key ID."""

    name: str
    key_id: int
    signature: bytes = field(repr=False)

    def __post_init__(self) -> None:
        check_key_name(self.name)
        if not 0 <= self.key_id <= 0xFFFFFFFF or not self.signature:
            raise NoteError("malformed signature")

    def line(self) -> str:
        """The signature line, ending in a newline."""
        encoded = b64encode(struct.pack(">I", self.key_id) + self.signature)
        return f"{SIGNATURE_PREFIX}{self.name} {encoded}\n"


def _parse_signature_line(line: str) -> Signature:
    if not line.startswith(SIGNATURE_PREFIX):
        raise NoteError("malformed note")
    name, _, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
    check_key_name(name)
    raw = b64decode(encoded)
    if raw is None or len(raw) < 5:
        raise NoteError("malformed note")
    return Signature(name, int.from_bytes(raw[:4], "big"), raw[4:])


@dataclass(frozen=True, slots=True)
class Note:
    """A note's text and its signature lines, as parsed (nothing verified)."""

    text: str
    signatures: tuple[Signature, ...]

    def encode(self) -> bytes:
        """The note: text, blank line, signature lines."""
        return (self.text + "\n" + "".join(s.line() for s in self.signatures)).encode()


def _check_text(text: str) -> None:
    # "MUST NOT contain any ASCII control characters ... other than newline"
    if not text.endswith("\n") or any(c < " " and c != "\n" for c in text):
        raise NoteError("malformed note")


def parse_note(message: bytes) -> Note:
    """Split a signed note into text and signature lines, strictly; verifies nothing."""
    try:
        decoded = message.decode("utf-8")
    except UnicodeDecodeError:
        raise NoteError("malformed note") from None
    # "the text is separated from the signatures by the last empty line in the note"
    split = decoded.rfind("\n\n")
    if split < 0 or not decoded.endswith("\n"):
        raise NoteError("malformed note")
    text, block = decoded[: split + 1], decoded[split + 2 :]
    _check_text(text)
    lines = block.split("\n")[:-1]
    if not lines or any(c < " " for c in block.replace("\n", "")):
        raise NoteError("malformed note")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError("too many signatures")
    return Note(text, tuple(_parse_signature_line(line) for line in lines))


@dataclass(frozen=True, slots=True)
class OpenedNote:
    """A note with at least one verified signature from a known key."""

    text: str
    verified: tuple[Signature, ...]
    unverified: tuple[Signature, ...]


def _index(verifiers: Iterable[Verifier]) -> dict[tuple[str, int], Verifier]:
    known: dict[tuple[str, int], Verifier] = {}
    for verifier in verifiers:
        slot = (verifier.name, verifier.key_id)
        if known.setdefault(slot, verifier) != verifier:
            raise NoteError("two verifiers with the same name and key ID")
    return known


def open_note(message: bytes, verifiers: Iterable[Verifier]) -> OpenedNote:
    """Parse a note and verify it against known keys (c2sp.org/signed-note "Signatures").

    Signatures are matched by (name, key ID): unknown ones are returned unverified
    (duplicates dropped); a known one is verified once and must be valid.
    """
    note = parse_note(message)
    known = _index(verifiers)
    text = note.text.encode()
    verified: dict[tuple[str, int], Signature] = {}
    unverified: dict[Signature, None] = {}
    for signature in note.signatures:
        slot = (signature.name, signature.key_id)
        verifier = known.get(slot)
        if verifier is None:
            unverified[signature] = None
        elif slot not in verified:
            if not verifier.verify(text, signature.signature):
                raise InvalidSignatureError("invalid signature from a known key")
            verified[slot] = signature
    if not verified:
        raise UnverifiedNoteError("no valid signature from a known key")
    return OpenedNote(note.text, tuple(verified.values()), tuple(unverified))


def sign_note(text: str, signers: Iterable[Signer], existing: Iterable[Signature] = ()) -> bytes:
    """Sign ``text`` (which must end in a newline) and append the new signature lines after
    ``existing`` ones, dropping existing lines of the same (name, key ID) as a new one."""
    _check_text(text)
    new = [signer.sign(text.encode()) for signer in signers]
    replaced = {(s.name, s.key_id) for s in new}
    kept = [s for s in existing if (s.name, s.key_id) not in replaced]
    signatures = (*kept, *new)
    if not signatures or len(signatures) > MAX_SIGNATURES:
        raise NoteError("a note needs 1 to 100 signatures")
    return Note(text, signatures).encode()
