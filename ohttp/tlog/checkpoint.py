"""Checkpoints (c2sp.org/tlog-checkpoint): the signed note body naming a tree head.

The body is the origin line, the tree size in decimal, the base64 root hash, each ending in a
newline, then optional non-empty extension lines (kept, and signed, as they are).
:meth:`Checkpoint.parse` is strict; :meth:`Checkpoint.encode` gives the note text to sign with
:func:`ohttp.tlog.note.sign_note`. :func:`open_checkpoint` verifies a signed checkpoint against
the log's verifier and parses its body.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ohttp.tlog._text import b64decode, b64encode, is_decimal
from ohttp.tlog.errors import CheckpointError
from ohttp.tlog.merkle import HASH_SIZE
from ohttp.tlog.note import OpenedNote, Verifier, open_note

__all__ = ["Checkpoint", "open_checkpoint"]

MAX_TREE_SIZE = (1 << 63) - 1  # tree sizes are uint64 elsewhere; keep them signed-safe


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A tree head: origin, size, root hash, extension lines (without their newlines)."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # "The origin MUST be non-empty", extension lines "MUST be non-empty"; and as note
        # text no line holds a control character (c2sp.org/signed-note).
        lines = (self.origin, *self.extensions)
        if any(not line or min(line) < " " for line in lines):
            raise CheckpointError("malformed checkpoint")
        if not 0 <= self.size <= MAX_TREE_SIZE or len(self.root) != HASH_SIZE:
            raise CheckpointError("malformed checkpoint")

    def encode(self) -> str:
        """The note text of this checkpoint."""
        lines = (self.origin, str(self.size), b64encode(self.root), *self.extensions)
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Parse a checkpoint note text strictly (canonical size and base64, final newline)."""
        if not text.endswith("\n"):
            raise CheckpointError("malformed checkpoint")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise CheckpointError("malformed checkpoint")
        origin, size_text, root_text, *extensions = lines
        root = b64decode(root_text)
        # "ASCII decimal ... with no leading zeroes"
        if not is_decimal(size_text) or root is None:
            raise CheckpointError("malformed checkpoint")
        return cls(origin, int(size_text), root, tuple(extensions))


def open_checkpoint(
    message: bytes, verifiers: Iterable[Verifier], origin: str | None = None
) -> tuple[Checkpoint, OpenedNote]:
    """Verify a signed checkpoint note and parse its body; check its origin if given."""
    opened = open_note(message, verifiers)
    checkpoint = Checkpoint.parse(opened.text)
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointError("checkpoint of another log")
    return checkpoint, opened
