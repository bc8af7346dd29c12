"""The exception tree of the transparency log core.

Every class derives from :class:`TransparencyError`, itself an :class:`ohttp.errors.OHTTPError`;
errors about bytes that do not follow their format also derive from
:class:`ohttp.errors.MalformedError`. Messages are fixed strings and never contain input.
"""

from __future__ import annotations

from ohttp.errors import MalformedError, OHTTPError

__all__ = [
    "CheckpointError",
    "ForkError",
    "InvalidSignatureError",
    "KeyStatementError",
    "LogStateError",
    "NoteError",
    "ProofError",
    "RollbackError",
    "SignerKeyError",
    "TileError",
    "TransparencyError",
    "UnverifiedNoteError",
    "WitnessError",
]


class TransparencyError(OHTTPError):
    """Base class of every error raised by ``ohttp.tlog``."""


class ProofError(TransparencyError):
    """An inclusion or consistency proof does not verify, or asks for impossible sizes."""


class TileError(TransparencyError, MalformedError):
    """A malformed tile path, tile, entry bundle or entry, or a tile missing from its reader."""


class LogStateError(TransparencyError):
    """The stored tiles do not reproduce the tree the log was told it has."""


class CheckpointError(TransparencyError, MalformedError):
    """A checkpoint body that does not follow c2sp.org/tlog-checkpoint."""


class NoteError(TransparencyError, MalformedError):
    """A signed note, verifier key or signature line that does not follow c2sp.org/signed-note."""


class SignerKeyError(NoteError):
    """A malformed private signer key string."""


class InvalidSignatureError(TransparencyError):
    """A signature from a known key fails to verify: the whole note is rejected."""


class UnverifiedNoteError(TransparencyError):
    """No signature from a known key: the note text must be ignored."""


class KeyStatementError(TransparencyError, MalformedError):
    """A log entry that is not a canonical ``ohttp-key/v1`` key statement."""


class WitnessError(TransparencyError):
    """The witness refuses to cosign this checkpoint."""


class ForkError(WitnessError):
    """Same size with a different root, or a consistency proof that fails: a split view."""


class RollbackError(WitnessError):
    """A checkpoint smaller than the one the witness already cosigned."""
