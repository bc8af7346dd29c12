"""Reading a published key transparency log and checking it whole (issue "Verifiable keys").

A log is a c2sp.org/tlog-tiles directory, read from an ``http(s)://`` URL or a local directory
(:func:`log_reader`). :func:`fetch_log` downloads the signed checkpoint and every tile and
entry bundle of its tree, verifies the log's signature, rebuilds every tile from the entries
and compares them byte for byte, and checks the root. A log of gateway keys stays small (one
entry per key), so reading it whole costs little, and it tells the log server nothing about
which key the reader holds. Full tiles never change: a ``cache`` dict keeps them between reads.

The client's policy on top of this is :mod:`ohttp.aio.tlog_policy`; the formats are the
sans-IO core's, :mod:`ohttp.tlog`. Every error here is a :class:`LogError` with a fixed message.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import tempfile
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import ClassVar, Final, Protocol

import aiohttp
from yarl import URL

from ohttp.aio._errors import ClientError, network_errors, read_body
from ohttp.keys import KeyConfig
from ohttp.tlog import (
    Checkpoint,
    Ed25519Verifier,
    KeyStatement,
    OpenedNote,
    ProofError,
    TransparencyError,
    Verifier,
    build_tiles,
    consistency_proof,
    leaf_hash,
    open_checkpoint,
    root_hash,
    tiles_for_size,
    verify_consistency,
)
from ohttp.tlog.merkle import leaf_node_reader
from ohttp.tlog.tiles import TILE_WIDTH, parse_bundle

__all__ = [
    "CHECKPOINT_PATH",
    "KeyNotLogged",
    "KeyWindowError",
    "LogContentError",
    "LogError",
    "LogInconsistent",
    "LogReader",
    "LogSignatureError",
    "LogUnavailable",
    "ReleaseNotPinned",
    "VerifiedLog",
    "WitnessQuorumError",
    "check_consistent",
    "fetch_log",
    "log_reader",
    "log_verifier",
    "open_saved_checkpoint",
    "with_session",
    "write_atomically",
]

CHECKPOINT_PATH: Final = "checkpoint"
_MAX_CHECKPOINT_BYTES: Final = 64 * 1024
_MAX_TILE_BYTES: Final = TILE_WIDTH * (2 + 0xFFFF)  # a full bundle of the largest entries


class LogError(ClientError):
    """The key transparency log does not vouch for the key; ``exit_code`` in ``ohttp request``."""

    exit_code: ClassVar[int] = 10
    default_message = "the transparency log check failed"


class LogUnavailable(LogError):
    exit_code = 10
    default_message = "the transparency log could not be fetched"


class LogSignatureError(LogError):
    exit_code = 11
    default_message = "the log checkpoint is not validly signed by the log key"


class WitnessQuorumError(LogError):
    exit_code = 12
    default_message = "the log checkpoint lacks the required witness cosignatures"


class LogContentError(LogError):
    exit_code = 13
    default_message = "the log's tiles do not match its signed checkpoint"


class LogInconsistent(LogError):
    exit_code = 14
    default_message = "the log checkpoint is not consistent with the last one seen"


class KeyNotLogged(LogError):
    exit_code = 15
    default_message = "the key configuration is not in the transparency log"


class KeyWindowError(LogError):
    exit_code = 16
    default_message = "the logged key is outside its not-before/not-after window"


class ReleaseNotPinned(LogError):
    exit_code = 17
    default_message = "the logged key names a release that is not pinned"


class LogReader(Protocol):
    """Reads one file of the log by its path (``checkpoint``, ``tile/...``)."""

    async def read(self, path: str, limit: int) -> bytes: ...


@dataclass(frozen=True, slots=True)
class _HttpReader:
    base: URL
    http: Callable[[], aiohttp.ClientSession]
    timeout: aiohttp.ClientTimeout

    async def read(self, path: str, limit: int) -> bytes:
        url = self.base.with_path(self.base.path.rstrip("/") + "/" + path)
        with network_errors(LogUnavailable()):
            async with self.http().get(
                url, allow_redirects=False, timeout=self.timeout,
                skip_auto_headers=("User-Agent", "Accept-Encoding"),
            ) as response:  # fmt: skip
                if response.status != 200:
                    raise LogUnavailable()
                return await read_body(response, limit, LogUnavailable)


@dataclass(frozen=True, slots=True)
class _DirReader:
    root: Path

    async def read(self, path: str, limit: int) -> bytes:
        # Paths are ours (``checkpoint`` or a canonical tile path): nothing climbs out of root.
        try:
            data = await asyncio.to_thread((self.root / path).read_bytes)
        except OSError:
            raise LogUnavailable() from None
        if len(data) > limit:
            raise LogUnavailable("the log file is larger than the client accepts")
        return data


def log_reader(
    location: str | Path,
    http: Callable[[], aiohttp.ClientSession],
    timeout: aiohttp.ClientTimeout | None = None,
) -> LogReader:
    """A reader for an ``http(s)://`` base URL, or else a directory."""
    text = str(location)
    if text.startswith(("http://", "https://")):
        return _HttpReader(URL(text), http, timeout or aiohttp.ClientTimeout(total=30))
    return _DirReader(Path(text))


@dataclass(frozen=True)
class VerifiedLog:
    """A log read whole: its checkpoint (signature verified) and every entry, checked against
    the root."""

    note: bytes  # the signed checkpoint as read
    checkpoint: Checkpoint
    opened: OpenedNote
    entries: tuple[bytes, ...] = field(repr=False)

    @cached_property
    def statements(self) -> list[tuple[int, KeyStatement | None]]:
        """Each entry's index and key statement (``None``: not a canonical statement)."""
        result: list[tuple[int, KeyStatement | None]] = []
        for index, entry in enumerate(self.entries):
            try:
                result.append((index, KeyStatement.parse(entry)))
            except TransparencyError:
                result.append((index, None))
        return result

    def statements_of(self, config: KeyConfig) -> list[KeyStatement]:
        """The statements for one key configuration (parsing only the entries that name it)."""
        needle = b"\nconfig " + base64.b64encode(config.encode()) + b"\n"
        found: list[KeyStatement] = []
        for entry in self.entries:
            if needle in entry:
                with contextlib.suppress(TransparencyError):
                    statement = KeyStatement.parse(entry)
                    if statement.config == config:
                        found.append(statement)
        return found


def log_verifier(vkey: str) -> Ed25519Verifier:
    """The log's verifier key; its name is the log's origin. ValueError if malformed."""
    try:
        return Ed25519Verifier.from_vkey(vkey)
    except TransparencyError:
        raise ValueError("the log key is not a valid Ed25519 verifier key") from None


async def fetch_log(
    reader: LogReader,
    log_key: Ed25519Verifier,
    *,
    others: Iterable[Verifier] = (),
    cache: MutableMapping[str, bytes] | None = None,
) -> VerifiedLog:
    """Read and check the whole log whose checkpoint ``log_key`` signs (origin: its name).

    ``others`` (witness cosignature verifiers) are checked too when their signature is present
    (a present but invalid one rejects the checkpoint); see ``opened.verified`` for which were.
    """
    note = await reader.read(CHECKPOINT_PATH, _MAX_CHECKPOINT_BYTES)
    checkpoint, opened = _open(note, log_key, others)
    entries = await _read_entries(reader, checkpoint, cache if cache is not None else {})
    return VerifiedLog(note, checkpoint, opened, entries)


def _open(
    note: bytes, log_key: Ed25519Verifier, others: Iterable[Verifier]
) -> tuple[Checkpoint, OpenedNote]:
    try:
        checkpoint, opened = open_checkpoint(note, [log_key, *others], log_key.name)
    except TransparencyError:
        raise LogSignatureError() from None
    if not any((s.name, s.key_id) == (log_key.name, log_key.key_id) for s in opened.verified):
        raise LogSignatureError()  # only a witness signed it
    return checkpoint, opened


async def _read_entries(
    reader: LogReader, checkpoint: Checkpoint, cache: MutableMapping[str, bytes]
) -> tuple[bytes, ...]:
    tiles = tiles_for_size(checkpoint.size)

    async def read(path: str, partial: bool) -> bytes:
        cached = None if partial else cache.get(path)
        return cached if cached is not None else await reader.read(path, _MAX_TILE_BYTES)

    contents = await asyncio.gather(*(read(tile.path, tile.partial) for tile in tiles))
    files = {tile.path: data for tile, data in zip(tiles, contents, strict=True)}
    entries: list[bytes] = []
    try:
        for tile in tiles:
            if tile.level is None:
                entries.extend(parse_bundle(files[tile.path], tile.width))
    except TransparencyError:
        raise LogContentError() from None
    # Every tile rebuilt from the entries must be the one served, and the root the signed one.
    if (
        build_tiles(entries) != files
        or root_hash([leaf_hash(e) for e in entries]) != checkpoint.root
    ):
        raise LogContentError()
    cache.update((tile.path, files[tile.path]) for tile in tiles if not tile.partial)
    return tuple(entries)


def check_consistent(old: Checkpoint, log: VerifiedLog) -> None:
    """That ``log`` extends the tree of ``old`` (RFC 9162 §2.1.4), else LogInconsistent."""
    new = log.checkpoint
    if old.origin != new.origin or old.size > new.size:
        raise LogInconsistent()  # another log, or a rollback
    read = leaf_node_reader([leaf_hash(entry) for entry in log.entries])
    try:
        proof = consistency_proof(read, old.size, new.size)
        verify_consistency(old.size, old.root, new.size, new.root, proof)
    except ProofError:
        raise LogInconsistent() from None


def open_saved_checkpoint(note: bytes, log_key: Ed25519Verifier) -> Checkpoint:
    """A checkpoint saved earlier (a state file), verified again; LogInconsistent if bad."""
    try:
        checkpoint, _ = open_checkpoint(note, [log_key], log_key.name)
    except TransparencyError:
        raise LogInconsistent("the saved log checkpoint is not valid") from None
    return checkpoint


def write_atomically(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


async def with_session(
    run: Callable[[Callable[[], aiohttp.ClientSession]], Awaitable[VerifiedLog]],
) -> VerifiedLog:
    """Run ``run`` with a session opened (lazily) and closed here: for one-off reads."""
    sessions: list[aiohttp.ClientSession] = []

    def http() -> aiohttp.ClientSession:
        if not sessions:
            sessions.append(aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()))
        return sessions[0]

    try:
        return await run(http)
    finally:
        for session in sessions:
            await session.close()
