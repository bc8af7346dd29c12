"""A tiled log that appends entries, sans-IO.

:class:`TileLog` keeps only the right edge of the tree (the partial tile of each level and the
partial entry bundle), loaded once from a :data:`~ohttp.tlog.tiles.TileReader`. Each
:meth:`TileLog.append` returns the files that are new or changed (path -> bytes) together with
the new size and root; the caller writes the files (full tiles first, then partial ones, then
the new checkpoint) before it signs and publishes the checkpoint. A directory writer is::

    log = TileLog.load(lambda path: (root / path).read_bytes(), size, expected_root)
    result = log.append([statement.encode()])
    for path, data in result.files.items():
        write_atomically(root / path, data)

Partial tiles of earlier sizes are superseded, never rewritten: their paths differ (``.p/W``).
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field

from ohttp.tlog.errors import LogStateError, TileError
from ohttp.tlog.merkle import leaf_hash, root_hash, subtree_hash
from ohttp.tlog.tiles import (
    MAX_ENTRY_SIZE,
    TILE_HEIGHT,
    TILE_WIDTH,
    Tile,
    TileHashReader,
    TileReader,
    encode_bundle,
    parse_bundle,
    read_tile_file,
)

__all__ = ["AppendResult", "TileLog"]


def _no_tiles(path: str) -> bytes:
    raise KeyError(path)


@dataclass(frozen=True, slots=True)
class AppendResult:
    """What one append produced: the files to write and the tree they describe.

    ``files`` is in a safe write order: full tiles and bundles before partial ones.
    """

    size: int
    root: bytes
    files: dict[str, bytes] = field(repr=False)


class TileLog:
    """The writable right edge of a tiled log. Use :meth:`empty` or :meth:`load`."""

    def __init__(self) -> None:
        self.size = 0
        self._edges: list[list[bytes]] = []  # per tile level: the hashes of its partial tile
        self._counts: list[int] = []  # per tile level: how many hashes it has
        self._bundle: list[bytes] = []  # the entries of the partial entry bundle

    @classmethod
    def empty(cls) -> TileLog:
        """A log with no entries."""
        return cls()

    @classmethod
    def load(cls, read: TileReader, size: int, root: bytes | None = None) -> TileLog:
        """The log of ``size`` entries stored behind ``read``; checked against ``root`` if given.

        Reads only the partial tiles and the partial entry bundle. Raises
        :class:`~ohttp.tlog.errors.LogStateError` when the stored files disagree with each
        other or with ``root``, and :class:`~ohttp.tlog.errors.TileError` when one is missing
        or malformed.
        """
        log = cls()
        reader = TileHashReader(read, size)
        count, level = size, 0
        while count:
            full, width = divmod(count, TILE_WIDTH)
            log._counts.append(count)
            log._edges.append(list(reader.tile(level, full)) if width else [])
            count, level = full, level + 1
        log.size = size
        if size % TILE_WIDTH:
            bundle = Tile(None, size // TILE_WIDTH, size % TILE_WIDTH)
            log._bundle = parse_bundle(read_tile_file(read, bundle.path), bundle.width)
            if [leaf_hash(entry) for entry in log._bundle] != log._edges[0]:
                raise LogStateError("entry bundle does not match its tile")
        if root is not None and not hmac.compare_digest(log.root(), root):
            raise LogStateError("stored tiles do not match the expected root")
        return log

    def root(self) -> bytes:
        """The root hash of the current tree."""
        return subtree_hash(self._node, 0, self.size)

    def _node(self, level: int, index: int) -> bytes:
        # Only the right edge is held; the RFC recursion for the root asks for nothing else.
        tile_level, height = divmod(level, TILE_HEIGHT)
        offset = (index << height) % TILE_WIDTH
        return root_hash(self._edges[tile_level][offset : offset + (1 << height)])

    def append(self, entries: Sequence[bytes]) -> AppendResult:
        """Append entries; returns the new and changed files with the new size and root."""
        if any(len(entry) > MAX_ENTRY_SIZE for entry in entries):
            raise TileError("entry too large for a bundle")
        files: dict[str, bytes] = {}
        dirty: set[int] = set()
        for entry in entries:
            self._bundle.append(entry)
            if len(self._bundle) == TILE_WIDTH:
                bundle = Tile(None, self.size // TILE_WIDTH)
                files[bundle.path] = encode_bundle(self._bundle)
                self._bundle = []
            self._push(0, leaf_hash(entry), files, dirty)
            self.size += 1
        for level in sorted(dirty):
            if self._edges[level]:
                tile = Tile(level, self._counts[level] // TILE_WIDTH, len(self._edges[level]))
                files[tile.path] = b"".join(self._edges[level])
        if self._bundle and entries:
            bundle = Tile(None, self.size // TILE_WIDTH, len(self._bundle))
            files[bundle.path] = encode_bundle(self._bundle)
        return AppendResult(self.size, self.root(), files)

    def _push(self, level: int, hashed: bytes, files: dict[str, bytes], dirty: set[int]) -> None:
        if level == len(self._edges):
            self._edges.append([])
            self._counts.append(0)
        self._edges[level].append(hashed)
        self._counts[level] += 1
        dirty.add(level)
        if len(self._edges[level]) == TILE_WIDTH:
            full = Tile(level, self._counts[level] // TILE_WIDTH - 1)
            files[full.path] = b"".join(self._edges[level])
            carry = root_hash(self._edges[level])
            self._edges[level] = []
            self._push(level + 1, carry, files, dirty)
