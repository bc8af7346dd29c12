"""The c2sp.org/tlog-tiles storage layout, sans-IO.

A tree of size ``s`` is stored as tiles of height 8: the tile at level ``L`` and index ``N``
holds up to 256 hashes of complete subtrees of ``256**L`` leaves (level 0: leaf hashes), and
entry bundles hold the entries themselves, each prefixed by its big-endian uint16 length.
The rightmost tile of a level is *partial* (1..255 hashes) and lives at ``.p/<W>``.

- :func:`tile_path`, :func:`parse_tile_path`: ``tile/<L>/<N>[.p/<W>]`` and
  ``tile/entries/<N>[.p/<W>]``, ``N`` in 3-digit groups (1234067 -> ``x001/x234/067``).
- :func:`tiles_for_size`: every tile a tree of a given size has.
- :func:`encode_bundle`, :func:`parse_bundle`, :func:`parse_tile`: bytes of one file.
- :func:`build_tiles`: every file of a tree, from its entries.
- :class:`TileHashReader`: a :data:`~ohttp.tlog.merkle.NodeReader` over a :data:`TileReader`
  (a callable ``path -> bytes``: a directory, HTTP, a dict), with :meth:`~TileHashReader.root`,
  :meth:`~TileHashReader.inclusion_proof` and :meth:`~TileHashReader.consistency_proof`.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from ohttp.tlog.errors import TileError
from ohttp.tlog.merkle import (
    HASH_SIZE,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_hash,
    subtree_hash,
)

__all__ = [
    "MAX_ENTRY_SIZE",
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "Tile",
    "TileHashReader",
    "TileReader",
    "build_tiles",
    "encode_bundle",
    "parse_bundle",
    "parse_tile",
    "parse_tile_path",
    "read_tile_file",
    "tile_path",
    "tiles_for_size",
]

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT  # "Full tiles MUST be exactly 256 hashes wide"
MAX_LEVEL = 63  # "<L> ... MUST be a decimal ASCII integer between 0 and 63"
MAX_ENTRY_SIZE = 0xFFFF  # entries are prefixed by a big-endian uint16 length

TileReader = Callable[[str], bytes]

_PATH = re.compile(r"tile/(entries|0|[1-9][0-9]?)/((?:x[0-9]{3}/)*[0-9]{3})(?:\.p/([1-9][0-9]*))?")


@dataclass(frozen=True, slots=True)
class Tile:
    """One tile (``level`` 0..63) or entry bundle (``level`` is ``None``) of ``width`` items."""

    level: int | None
    index: int
    width: int = TILE_WIDTH

    def __post_init__(self) -> None:
        if self.level is not None and not 0 <= self.level <= MAX_LEVEL:
            raise TileError("tile level out of range")
        if self.index < 0 or not 1 <= self.width <= TILE_WIDTH:
            raise TileError("tile index or width out of range")

    @property
    def partial(self) -> bool:
        return self.width < TILE_WIDTH

    @property
    def path(self) -> str:
        return tile_path(self)


def _encode_index(index: int) -> str:
    groups = [f"{index % 1000:03d}"]
    index //= 1000
    while index:
        groups.append(f"x{index % 1000:03d}")
        index //= 1000
    return "/".join(reversed(groups))


def tile_path(tile: Tile) -> str:
    """The path of a tile or entry bundle, relative to the log's prefix."""
    level = "entries" if tile.level is None else str(tile.level)
    suffix = f".p/{tile.width}" if tile.partial else ""
    return f"tile/{level}/{_encode_index(tile.index)}{suffix}"


def parse_tile_path(path: str) -> Tile:
    """Parse a canonical tile path (no leading zero group, no zero-width or full ``.p``)."""
    match = _PATH.fullmatch(path)
    if match is None:
        raise TileError("malformed tile path")
    level_text, index_text, width_text = match.groups()
    groups = index_text.replace("x", "").split("/")
    if len(groups) > 1 and groups[0] == "000":
        raise TileError("malformed tile path")  # only one encoding per index
    width = TILE_WIDTH if width_text is None else int(width_text)
    if width_text is not None and width >= TILE_WIDTH:
        raise TileError("malformed tile path")  # "<W> ... between 1 and 255"
    level = None if level_text == "entries" else int(level_text)
    return Tile(level, int("".join(groups)), width)


def tiles_for_size(size: int, *, entries: bool = True) -> list[Tile]:
    """Every tile (and, by default, entry bundle) of a tree of ``size`` leaves, level 0 first."""
    if size < 0:
        raise TileError("negative tree size")
    tiles: list[Tile] = []
    level, count = 0, size  # count: hashes at this tile level
    while count:
        full, width = divmod(count, TILE_WIDTH)
        level_tiles = [Tile(level, n) for n in range(full)]
        if width:  # "The partial tile at level l for a tree of size s has floor(s/256**l) mod 256"
            level_tiles.append(Tile(level, full, width))
        if level == 0 and entries:
            tiles.extend(Tile(None, t.index, t.width) for t in level_tiles)
        tiles.extend(level_tiles)
        level, count = level + 1, full
    return tiles


def encode_bundle(entries: Sequence[bytes]) -> bytes:
    """An entry bundle: each entry prefixed by its big-endian uint16 length."""
    if any(len(entry) > MAX_ENTRY_SIZE for entry in entries):
        raise TileError("entry too large for a bundle")
    return b"".join(struct.pack(">H", len(entry)) + entry for entry in entries)


def parse_bundle(data: bytes, width: int) -> list[bytes]:
    """Split an entry bundle that must hold exactly ``width`` entries."""
    entries: list[bytes] = []
    offset = 0
    while offset < len(data):
        if offset + 2 > len(data):
            raise TileError("truncated entry bundle")
        (length,) = struct.unpack_from(">H", data, offset)
        end = offset + 2 + length
        if end > len(data):
            raise TileError("truncated entry bundle")
        entries.append(data[offset + 2 : end])
        offset = end
    if len(entries) != width:
        raise TileError("entry bundle has the wrong number of entries")
    return entries


def parse_tile(data: bytes, width: int) -> list[bytes]:
    """Split a hash tile that must hold exactly ``width`` hashes."""
    if len(data) != width * HASH_SIZE:
        raise TileError("tile has the wrong length")
    return [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]


def read_tile_file(read: TileReader, path: str) -> bytes:
    """``read(path)``, with a missing file (``KeyError``, ``FileNotFoundError``) as TileError."""
    try:
        return read(path)
    except (KeyError, FileNotFoundError):
        raise TileError("tile missing") from None


def _level_hashes(entries: Sequence[bytes]) -> Iterator[list[bytes]]:
    # Level L + 1 hashes the full tiles of level L: partial tiles are never hashed upwards.
    hashes = [leaf_hash(entry) for entry in entries]
    while hashes:
        yield hashes
        hashes = [
            root_hash(hashes[i : i + TILE_WIDTH])
            for i in range(0, len(hashes) - TILE_WIDTH + 1, TILE_WIDTH)
        ]


def build_tiles(entries: Sequence[bytes]) -> dict[str, bytes]:
    """Every file (path -> bytes) of the tree of these entries, tiles and bundles."""
    files: dict[str, bytes] = {}
    for level, hashes in enumerate(_level_hashes(entries)):
        for start in range(0, len(hashes), TILE_WIDTH):
            chunk = hashes[start : start + TILE_WIDTH]
            files[tile_path(Tile(level, start // TILE_WIDTH, len(chunk)))] = b"".join(chunk)
            if level == 0:
                bundle = Tile(None, start // TILE_WIDTH, len(chunk))
                files[tile_path(bundle)] = encode_bundle(entries[start : start + TILE_WIDTH])
    return files


class TileHashReader:
    """Hashes of the tree of ``size`` leaves, read lazily from a :data:`TileReader` and cached.

    Callable as a :data:`~ohttp.tlog.merkle.NodeReader`. A tile that is missing (the reader
    raises ``KeyError`` or ``FileNotFoundError``) or of the wrong length raises
    :class:`~ohttp.tlog.errors.TileError`. Nothing read is trusted until :meth:`root` is
    compared with a verified checkpoint.
    """

    def __init__(self, read: TileReader, size: int) -> None:
        if size < 0:
            raise TileError("negative tree size")
        self._read = read
        self.size = size
        self._tiles: dict[Tile, list[bytes]] = {}

    def tile(self, level: int, index: int) -> list[bytes]:
        """The hashes of tile (``level``, ``index``), full or as partial as ``size`` makes it."""
        span = TILE_WIDTH**level  # leaves under one hash of this level
        count = self.size // span  # hashes at this level
        width = min(TILE_WIDTH, count - index * TILE_WIDTH)
        if width <= 0:
            raise TileError("tile outside the tree")
        tile = Tile(level, index, width)
        if tile not in self._tiles:
            self._tiles[tile] = parse_tile(read_tile_file(self._read, tile.path), width)
        return self._tiles[tile]

    def __call__(self, level: int, index: int) -> bytes:
        tile_level, height = divmod(level, TILE_HEIGHT)
        first = index << height  # first hash of this subtree at the tile level
        hashes = self.tile(tile_level, first // TILE_WIDTH)
        offset = first % TILE_WIDTH
        if offset + (1 << height) > len(hashes):
            raise TileError("tile outside the tree")
        return root_hash(hashes[offset : offset + (1 << height)])

    def root(self) -> bytes:
        """The root hash of the tree of ``size`` leaves."""
        return subtree_hash(self, 0, self.size)

    def inclusion_proof(self, index: int) -> list[bytes]:
        """The inclusion proof of leaf ``index`` in this tree."""
        return inclusion_proof(self, index, self.size)

    def consistency_proof(self, old_size: int) -> list[bytes]:
        """The consistency proof from the tree of ``old_size`` leaves to this tree."""
        return consistency_proof(self, old_size, self.size)
