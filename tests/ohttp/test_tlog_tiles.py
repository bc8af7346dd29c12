"""c2sp.org/tlog-tiles paths, tiles and bundles, reading proofs from tiles, and TileLog appends."""

from __future__ import annotations

import pytest

from ohttp.tlog.errors import LogStateError, TileError
from ohttp.tlog.log import TileLog
from ohttp.tlog.merkle import (
    EMPTY_ROOT,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    leaf_node_reader,
    root_hash,
    verify_consistency,
    verify_inclusion,
)
from ohttp.tlog.tiles import (
    Tile,
    TileHashReader,
    build_tiles,
    encode_bundle,
    parse_bundle,
    parse_tile,
    parse_tile_path,
    tile_path,
    tiles_for_size,
)
from tests.ohttp.tlog_vectors import VECTORS

VECTORS = VECTORS["tile_paths"]
ENTRIES = [f"entry {i}".encode() * (i % 3) for i in range(66_000)]
HASHES = [leaf_hash(e) for e in ENTRIES]
# Sizes around the 256 and 65536 boundaries of the first two tile levels.
SIZES = [0, 1, 2, 255, 256, 257, 511, 512, 513, 1000, 65535, 65536, 65537]


@pytest.fixture(scope="module")
def files() -> dict[str, bytes]:
    """A log grown through every size of SIZES: its partial tiles for each are all there."""
    log, stored = TileLog.empty(), {}
    for size in SIZES:
        stored.update(log.append(ENTRIES[log.size : size]).files)
    return stored


def test_index_encoding_from_the_spec() -> None:
    for index, encoded in VECTORS["index_examples"]:
        assert tile_path(Tile(0, index)) == f"tile/0/{encoded}"
        assert parse_tile_path(f"tile/0/{encoded}") == Tile(0, index)


@pytest.mark.parametrize(("path", "level", "index", "width"), VECTORS["valid"])
def test_valid_paths(path: str, level: int | None, index: int, width: int) -> None:
    tile = parse_tile_path(path)
    assert tile == Tile(level, index, width)
    assert tile.path == path
    assert tile.partial == (width < 256)


@pytest.mark.parametrize("path", VECTORS["invalid"])
def test_invalid_paths(path: str) -> None:
    with pytest.raises(TileError):
        parse_tile_path(path)


def test_tiles_of_the_size_70000_example() -> None:
    tiles = tiles_for_size(70_000, entries=False)
    example = VECTORS["size_70000"]
    assert [(t.level, t.index, t.width) for t in tiles if t.partial] == [
        tuple(p) for p in example["partial"]
    ]
    for level, count in enumerate(example["full_per_level"]):
        assert sum(1 for t in tiles if t.level == level and not t.partial) == count
    bundles = [t for t in tiles_for_size(70_000) if t.level is None]
    assert [(t.index, t.width) for t in bundles[-1:]] == [(273, 112)] and len(bundles) == 274


def test_a_full_tile_has_a_partial_parent() -> None:
    # "a tree of size 256 will be represented by a full level 0 tile and a partial level 1 tile"
    assert tiles_for_size(256, entries=False) == [Tile(0, 0), Tile(1, 0, 1)]
    assert tiles_for_size(0) == []


def test_bundles_round_trip_and_reject_damage() -> None:
    entries = [b"", b"a", b"x" * 65535]
    data = encode_bundle(entries)
    assert data[:3] == b"\x00\x00\x00" and parse_bundle(data, 3) == entries
    for bad, width in ((data[:-1], 3), (data + b"\x00", 3), (data, 2), (data, 4)):
        with pytest.raises(TileError):
            parse_bundle(bad, width)
    with pytest.raises(TileError):
        encode_bundle([b"x" * 65536])
    with pytest.raises(TileError):
        parse_tile(b"\x00" * 33, 1)


@pytest.mark.parametrize("size", SIZES)
def test_tiles_give_roots_and_proofs(files: dict[str, bytes], size: int) -> None:
    reader = TileHashReader(files.__getitem__, size)
    hashes = HASHES[:size]
    root = root_hash(hashes)
    assert reader.root() == root
    if size == 0:
        assert root == EMPTY_ROOT
        return
    memory = leaf_node_reader(hashes)
    for index in {0, size // 3, size - 1}:
        proof = reader.inclusion_proof(index)
        assert proof == inclusion_proof(memory, index, size)
        verify_inclusion(hashes[index], index, size, proof, root)
    for old in {1, size // 2, size - 1}:
        proof = reader.consistency_proof(old)
        assert proof == consistency_proof(memory, old, size)
        verify_consistency(old, root_hash(hashes[:old]), size, root, proof)


@pytest.mark.parametrize("size", SIZES)
def test_tiles_for_size_match_what_build_writes(size: int) -> None:
    built = build_tiles(ENTRIES[:size])
    assert sorted(built) == sorted(t.path for t in tiles_for_size(size))


def test_reader_reports_missing_and_short_tiles(files: dict[str, bytes]) -> None:
    with pytest.raises(TileError, match="missing"):
        TileHashReader(dict[str, bytes]().__getitem__, 5).root()
    short = {"tile/0/000.p/5": files["tile/0/000"][: 5 * 32 - 1]}
    with pytest.raises(TileError):
        TileHashReader(short.__getitem__, 5).root()
    with pytest.raises(TileError):
        TileHashReader(files.__getitem__, 5).tile(0, 1)


def _append_in_chunks(chunks: list[int]) -> tuple[TileLog, dict[str, bytes]]:
    log, written, start = TileLog.empty(), {}, 0
    for chunk in chunks:
        result = log.append(ENTRIES[start : start + chunk])
        start += chunk
        written.update(result.files)
        assert (result.size, result.root) == (start, root_hash(HASHES[:start]))
    return log, written


@pytest.mark.parametrize("chunks", [[1] * 300, [255, 1, 1, 300], [0, 513, 0, 1], [65537]])
def test_appends_write_what_build_tiles_writes(chunks: list[int]) -> None:
    log, written = _append_in_chunks(chunks)
    expected = build_tiles(ENTRIES[: log.size])
    assert {path: written[path] for path in expected} == expected
    assert log.root() == root_hash(HASHES[: log.size])


def test_append_returns_only_new_and_changed_files() -> None:
    log, _ = _append_in_chunks([300])
    files = log.append([b"one more"]).files
    # Level 1 still holds one hash (the full level 0 tile): its partial tile is unchanged.
    assert sorted(files) == ["tile/0/001.p/45", "tile/entries/001.p/45"]
    files = log.append(ENTRIES[:211]).files  # 301 + 211 = 512: two full tiles, no partial
    assert sorted(files) == ["tile/0/001", "tile/1/000.p/2", "tile/entries/001"]
    assert log.append([]).files == {}


@pytest.mark.parametrize(("size", "more"), [(0, 3), (5, 300), (256, 1), (300, 212), (65536, 2)])
def test_load_then_append(size: int, more: int) -> None:
    stored = build_tiles(ENTRIES[:size])
    log = TileLog.load(stored.__getitem__, size, root_hash(HASHES[:size]))
    assert log.size == size
    result = log.append(ENTRIES[size : size + more])
    stored.update(result.files)
    assert result.root == root_hash(HASHES[: size + more])
    assert TileHashReader(stored.__getitem__, size + more).root() == result.root


def test_load_rejects_inconsistent_storage() -> None:
    stored = build_tiles(ENTRIES[:300])
    with pytest.raises(LogStateError):
        TileLog.load(stored.__getitem__, 300, EMPTY_ROOT)
    stored["tile/entries/001.p/44"] = encode_bundle([b"forged"] * 44)
    with pytest.raises(LogStateError):
        TileLog.load(stored.__getitem__, 300)
    with pytest.raises(TileError):
        TileLog.load(stored.__getitem__, 301)
    del stored["tile/entries/001.p/44"]
    with pytest.raises(TileError, match="missing"):
        TileLog.load(stored.__getitem__, 300)
    with pytest.raises(TileError):
        TileLog.empty().append([b"x" * 65536])
