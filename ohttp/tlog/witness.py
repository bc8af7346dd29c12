"""Checkpoint cosignatures (c2sp.org/tlog-cosignature, Ed25519 ``cosignature/v1``) and a
sans-IO witness.

A cosignature is a note signature of type 0x04 whose bytes are the key ID, a big-endian u64
POSIX timestamp and an Ed25519 signature over ``cosignature/v1\\ntime <T>\\n`` followed by the
checkpoint body. :class:`CosignatureVerifier` plugs into :func:`ohttp.tlog.note.open_note`;
:class:`Cosigner` makes them. :class:`Witness` cosigns a log's checkpoints only while they
stay append-only: given a new signed checkpoint and a consistency proof from the size it last
cosigned, it verifies both and returns its cosignature, or raises
:class:`~ohttp.tlog.errors.RollbackError` (smaller size) or
:class:`~ohttp.tlog.errors.ForkError` (a proof that fails, or the same size with another
root). Its whole state is :attr:`Witness.state`, the last cosigned checkpoint as a note; time
is passed in.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from ohttp.tlog.checkpoint import Checkpoint, open_checkpoint
from ohttp.tlog.errors import ForkError, NoteError, ProofError, RollbackError
from ohttp.tlog.merkle import EMPTY_ROOT, verify_consistency
from ohttp.tlog.note import NamedPublicKey, NamedSeed, Note, Signature, Verifier

__all__ = [
    "ALG_COSIGNATURE_V1",
    "CosignatureVerifier",
    "Cosigner",
    "Witness",
    "cosignature_message",
    "cosignature_timestamp",
]

ALG_COSIGNATURE_V1 = 0x04  # "0x04 — Timestamped Ed25519 checkpoint cosignatures"
MAX_TIMESTAMP = (1 << 63) - 1  # "It MUST NOT exceed 2^63 - 1"
_SIGNATURE_SIZE = 8 + 64  # u64 timestamp || Ed25519 signature


def cosignature_message(body: str, timestamp: int) -> bytes:
    """The signed message: header line, timestamp line, then the whole checkpoint body."""
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise NoteError("cosignature timestamp out of range")
    return _message(body.encode(), timestamp)


def _message(body: bytes, timestamp: int) -> bytes:
    # "time", one space, the timestamp in decimal with no leading zeroes
    return b"cosignature/v1\ntime %d\n" % timestamp + body


def cosignature_timestamp(signature: Signature) -> int:
    """The timestamp of a cosignature (after its key ID), unverified."""
    if len(signature.signature) != _SIGNATURE_SIZE:
        raise NoteError("malformed cosignature")
    (timestamp,) = struct.unpack(">Q", signature.signature[:8])
    return int(timestamp)


@dataclass(frozen=True, slots=True)
class CosignatureVerifier(NamedPublicKey):
    """A cosigner's public key (signature type 0x04); its vkeys carry type 0x04 too."""

    # SHA-256(<name> || "\n" || 0x04 || 32-byte Ed25519 cosigner public key)[:4]
    ALG: ClassVar[int] = ALG_COSIGNATURE_V1

    def verify(self, text: bytes, signature: bytes) -> bool:
        if len(signature) != _SIGNATURE_SIZE:
            return False
        (timestamp,) = struct.unpack(">Q", signature[:8])
        if timestamp > MAX_TIMESTAMP:
            return False
        return self._verify(_message(text, timestamp), signature[8:])


@dataclass(frozen=True, slots=True)
class Cosigner(NamedSeed):
    """A cosigner's private key."""

    @property
    def verifier(self) -> CosignatureVerifier:
        return CosignatureVerifier(self.name, self.public_key)

    def cosign(self, body: str, timestamp: int) -> Signature:
        """The cosignature of a checkpoint body at ``timestamp`` (POSIX seconds)."""
        signature = self._sign(cosignature_message(body, timestamp))
        return Signature(self.name, self.verifier.key_id, struct.pack(">Q", timestamp) + signature)


class Witness:
    """Cosigns one log's checkpoints while they stay consistent with the last one it cosigned.

    ``log`` verifies the log's own signature and ``origin`` is the log's origin line.
    ``state`` is a previous :attr:`state` (``None`` for a witness that has seen nothing: it
    then cosigns the first valid checkpoint it is shown, trust on first use).
    """

    def __init__(
        self, cosigner: Cosigner, log: Verifier, origin: str, state: bytes | None = None
    ) -> None:
        self._cosigner = cosigner
        self._log = log
        self._origin = origin
        self._checkpoint: Checkpoint | None = None
        self._state = state
        if state is not None:
            self._checkpoint, _ = open_checkpoint(state, [log, cosigner.verifier], origin)

    @property
    def checkpoint(self) -> Checkpoint | None:
        """The last checkpoint cosigned, if any."""
        return self._checkpoint

    @property
    def state(self) -> bytes | None:
        """The last cosigned checkpoint as a note (log signatures and this cosignature)."""
        return self._state

    def cosign(self, message: bytes, proof: Sequence[bytes], now: int) -> Signature:
        """Verify a signed checkpoint and its consistency proof from :attr:`checkpoint`.

        Returns the cosignature (add its :meth:`~ohttp.tlog.note.Signature.line` to the note)
        and moves the state forward. Log signature failures raise the errors of
        :func:`~ohttp.tlog.note.open_note`; the state is unchanged on any error.
        """
        checkpoint, opened = open_checkpoint(message, [self._log], self._origin)
        old = self._checkpoint
        old_size, old_root = (0, EMPTY_ROOT) if old is None else (old.size, old.root)
        if checkpoint.size < old_size:
            raise RollbackError("checkpoint older than the one already cosigned")
        try:
            verify_consistency(old_size, old_root, checkpoint.size, checkpoint.root, proof)
        except ProofError:
            raise ForkError("checkpoint inconsistent with the one already cosigned") from None
        signature = self._cosigner.cosign(opened.text, now)
        self._checkpoint = checkpoint
        self._state = Note(opened.text, (*opened.verified, signature)).encode()
        return signature
