"""A transparency log of gateway keys, sans-IO (issue "Verifiable keys").

The pieces, each in its own module and all re-exported here:

- :mod:`~ohttp.tlog.merkle`: RFC 9162 Merkle tree hashes, inclusion and consistency proofs.
- :mod:`~ohttp.tlog.tiles`: the c2sp.org/tlog-tiles layout: tile paths, tile and entry bundle
  bytes, and :class:`TileHashReader`, which reads any tree hash or proof through a
  :data:`TileReader` (a callable ``path -> bytes``).
- :mod:`~ohttp.tlog.log`: :class:`TileLog`, which appends entries and returns the files to
  write with the new size and root.
- :mod:`~ohttp.tlog.note`: c2sp.org/signed-note with Ed25519 keys (vkeys and signer keys).
- :mod:`~ohttp.tlog.checkpoint`: c2sp.org/tlog-checkpoint bodies.
- :mod:`~ohttp.tlog.witness`: c2sp.org/tlog-cosignature (cosignature/v1) and :class:`Witness`.
- :mod:`~ohttp.tlog.statement`: :class:`KeyStatement`, the ``ohttp-key/v1`` log entry.

A log operator appends a statement and signs the new checkpoint::

    log = TileLog.load(read, checkpoint.size, checkpoint.root)
    result = log.append([KeyStatement.from_gateway_key(key).encode()])
    # write result.files, then:
    body = Checkpoint(origin, result.size, result.root).encode()
    signed = sign_note(body, [Ed25519Signer.from_skey(skey)])

A client checks that a key is logged::

    checkpoint, _ = open_checkpoint(signed, [Ed25519Verifier.from_vkey(vkey)], origin)
    tiles = TileHashReader(read, checkpoint.size)
    verify_inclusion(leaf_hash(entry), index, checkpoint.size,
                     tiles.inclusion_proof(index), checkpoint.root)

Every error is a :class:`TransparencyError` (an :class:`ohttp.errors.OHTTPError`).
"""

from __future__ import annotations

from ohttp.tlog.checkpoint import Checkpoint, open_checkpoint
from ohttp.tlog.errors import (
    CheckpointError,
    ForkError,
    InvalidSignatureError,
    KeyStatementError,
    LogStateError,
    NoteError,
    ProofError,
    RollbackError,
    SignerKeyError,
    TileError,
    TransparencyError,
    UnverifiedNoteError,
    WitnessError,
)
from ohttp.tlog.log import AppendResult, TileLog
from ohttp.tlog.merkle import (
    EMPTY_ROOT,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_hash,
    verify_consistency,
    verify_inclusion,
)
from ohttp.tlog.note import (
    Ed25519Signer,
    Ed25519Verifier,
    Note,
    OpenedNote,
    Signature,
    Signer,
    Verifier,
    open_note,
    parse_note,
    sign_note,
)
from ohttp.tlog.statement import KeyStatement
from ohttp.tlog.tiles import (
    Tile,
    TileHashReader,
    TileReader,
    build_tiles,
    parse_tile_path,
    tile_path,
    tiles_for_size,
)
from ohttp.tlog.witness import CosignatureVerifier, Cosigner, Witness

__all__ = [
    "EMPTY_ROOT",
    "AppendResult",
    "Checkpoint",
    "CheckpointError",
    "CosignatureVerifier",
    "Cosigner",
    "Ed25519Signer",
    "Ed25519Verifier",
    "ForkError",
    "InvalidSignatureError",
    "KeyStatement",
    "KeyStatementError",
    "LogStateError",
    "Note",
    "NoteError",
    "OpenedNote",
    "ProofError",
    "RollbackError",
    "Signature",
    "Signer",
    "SignerKeyError",
    "Tile",
    "TileError",
    "TileHashReader",
    "TileLog",
    "TileReader",
    "TransparencyError",
    "UnverifiedNoteError",
    "Verifier",
    "Witness",
    "WitnessError",
    "build_tiles",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "open_checkpoint",
    "open_note",
    "parse_note",
    "parse_tile_path",
    "root_hash",
    "sign_note",
    "tile_path",
    "tiles_for_size",
    "verify_consistency",
    "verify_inclusion",
]
