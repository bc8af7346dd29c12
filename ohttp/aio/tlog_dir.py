"""A key transparency log kept in a directory: create, append, add cosignatures.

The directory is what gets published (any static server, ``ohttp log serve``): ``checkpoint``
and ``tile/...``. The log's signing key never lives in it. Files are written atomically, full
tiles and bundles first, the checkpoint last, so a reader never sees a checkpoint whose tiles
are missing. One writer at a time (the operator's ``ohttp log append``); ``add_cosignature``
only rewrites the checkpoint, and only when its text is still the one cosigned.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ohttp.aio.tlog import CHECKPOINT_PATH, write_atomically
from ohttp.keys import GatewayKey
from ohttp.tlog import (
    EMPTY_ROOT,
    Checkpoint,
    Ed25519Signer,
    KeyStatement,
    TileLog,
    TransparencyError,
    Verifier,
    open_checkpoint,
    open_note,
    parse_note,
    sign_note,
    tiles_for_size,
)
from ohttp.tlog.note import Note
from ohttp.tlog.tiles import parse_bundle, read_tile_file

__all__ = [
    "AppendSummary",
    "LogDirError",
    "add_cosignature",
    "append_keys",
    "default_key_path",
    "init_log",
    "read_entries",
    "read_signer",
    "write_secret",
]

DEFAULT_VALID_FOR = 90 * 24 * 3600  # the window given to a key with no not-after of its own


class LogDirError(Exception):
    """A problem with the log directory or its key; the message is one fixed line."""


def default_key_path(origin: str) -> Path:
    """``$XDG_CONFIG_HOME/ohttp/log-keys/<origin>.key`` (``~/.config`` by default)."""
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in origin)
    return base / "ohttp" / "log-keys" / f"{safe}.key"


def write_secret(path: Path, text: str) -> None:
    """Create ``path`` with mode 0600 (never overwriting) and write ``text``."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise LogDirError(f"{path} exists; not overwriting a key") from None
    with os.fdopen(descriptor, "w", encoding="ascii") as stream:
        stream.write(text)


def read_signer(path: Path) -> Ed25519Signer:
    """The note signer key in ``path`` (a ``PRIVATE+KEY+...`` line)."""
    try:
        return Ed25519Signer.from_skey(path.read_text(encoding="ascii").strip())
    except (OSError, UnicodeDecodeError):
        raise LogDirError(f"cannot read the key file {path}") from None
    except TransparencyError:
        raise LogDirError(f"{path} does not hold a note signer key") from None


def _inside(path: Path, directory: Path) -> bool:
    return path.resolve().is_relative_to(directory.resolve())


def init_log(directory: Path, origin: str, key_path: Path) -> Ed25519Signer:
    """Create an empty log signed by a new key written to ``key_path`` (outside the log)."""
    if _inside(key_path, directory):
        raise LogDirError("the signing key must not be inside the published log directory")
    if (directory / CHECKPOINT_PATH).exists():
        raise LogDirError(f"{directory} already holds a log")
    try:
        signer = Ed25519Signer.generate(origin)  # the key name is the origin
    except TransparencyError:
        raise LogDirError("the origin must be non-empty, without spaces or '+'") from None
    write_secret(key_path, signer.skey + "\n")
    _publish(directory, Checkpoint(origin, 0, EMPTY_ROOT), signer)
    return signer


def _publish(directory: Path, checkpoint: Checkpoint, signer: Ed25519Signer) -> None:
    note = sign_note(checkpoint.encode(), [signer])
    write_atomically(directory / CHECKPOINT_PATH, note)


def _read(directory: Path) -> tuple[Checkpoint, bytes]:
    try:
        note = (directory / CHECKPOINT_PATH).read_bytes()
    except OSError:
        raise LogDirError(f"{directory} holds no log (no checkpoint)") from None
    checkpoint = Checkpoint.parse(parse_note(note).text)
    return checkpoint, note


def read_entries(directory: Path, size: int) -> list[bytes]:
    """The first ``size`` entries of the log in ``directory``, from its entry bundles."""
    entries: list[bytes] = []
    for tile in tiles_for_size(size):
        if tile.level is None:
            data = read_tile_file(lambda path: (directory / path).read_bytes(), tile.path)
            entries.extend(parse_bundle(data, tile.width))
    return entries


@dataclass(frozen=True)
class AppendSummary:
    added: int
    size: int


def append_keys(
    directory: Path,
    keys: Iterable[GatewayKey],
    signer: Ed25519Signer,
    *,
    now: int,
    release: str | None = None,
    valid_for: int = DEFAULT_VALID_FOR,
) -> AppendSummary:
    """Log each key whose configuration is not logged yet, then sign the new checkpoint.

    An open ``not_before`` becomes ``now``, an open ``not_after`` ``not_before + valid_for``.
    Nothing is written when every key is logged already (idempotent).
    """
    checkpoint, note = _read(directory)
    try:
        open_checkpoint(note, [signer.verifier], signer.name)
    except TransparencyError:
        raise LogDirError("the checkpoint is not signed by this key") from None
    entries = read_entries(directory, checkpoint.size)
    logged = set()
    for entry in entries:
        try:
            logged.add(KeyStatement.parse(entry).config)
        except TransparencyError:
            continue  # not a key statement: it vouches for no key
    new: list[bytes] = []
    for key in keys:
        if key.config in logged:
            continue
        start = now if key.not_before is None else key.not_before
        end = start + valid_for if key.not_after is None else key.not_after
        new.append(KeyStatement(key.config, start, end, release).encode())
        logged.add(key.config)
    if not new:
        return AppendSummary(0, checkpoint.size)
    log = TileLog.load(
        lambda path: (directory / path).read_bytes(), checkpoint.size, checkpoint.root
    )
    result = log.append(new)
    for path, data in result.files.items():  # full tiles first, then partial ones
        write_atomically(directory / path, data)
    _publish(directory, Checkpoint(checkpoint.origin, result.size, result.root), signer)
    return AppendSummary(len(new), result.size)


def add_cosignature(directory: Path, cosigned: bytes, witnesses: Iterable[Verifier]) -> int:
    """Merge the witness cosignatures of ``cosigned`` into the current checkpoint.

    ``cosigned`` must carry the current checkpoint's exact text and at least one valid
    cosignature of a known witness; returns how many cosignatures were added.
    """
    _, note = _read(directory)
    current = parse_note(note)
    try:
        opened = open_note(cosigned, witnesses)
    except TransparencyError:
        raise LogDirError("no valid cosignature of a known witness") from None
    if opened.text != current.text:
        raise LogDirError("the cosigned checkpoint is not the current one")
    replaced = {(s.name, s.key_id) for s in opened.verified}
    kept = [s for s in current.signatures if (s.name, s.key_id) not in replaced]
    write_atomically(
        directory / CHECKPOINT_PATH, Note(current.text, (*kept, *opened.verified)).encode()
    )
    return len(opened.verified)
