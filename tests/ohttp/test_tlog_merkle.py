"""RFC 9162 Merkle hashes and proofs: against a from-scratch recursive MTH and published vectors."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ohttp.errors import OHTTPError
from ohttp.tlog.errors import ProofError
from ohttp.tlog.merkle import (
    EMPTY_ROOT,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    leaf_node_reader,
    root_hash,
    subtree_hash,
    verify_consistency,
    verify_inclusion,
)
from tests.ohttp.tlog_vectors import VECTORS

MAX_SIZE = 70
DATA = [f"entry {i}".encode() for i in range(MAX_SIZE)]


# --- the definitions of RFC 9162 §2.1.1, §2.1.3.1 and §2.1.4.1, written out literally -------


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d: list[bytes]) -> bytes:
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = _k(len(d))
    return hashlib.sha256(b"\x01" + mth(d[:k]) + mth(d[k:])).digest()


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _k(len(d))
    if m < k:
        return [*ref_path(m, d[:k]), mth(d[k:])]
    return [*ref_path(m - k, d[k:]), mth(d[:k])]


def ref_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    if m == len(d):
        return [] if b else [mth(d)]
    k = _k(len(d))
    if m <= k:
        return [*ref_subproof(m, d[:k], b), mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), mth(d[:k])]


READ = leaf_node_reader([leaf_hash(d) for d in DATA])
ROOTS = [mth(DATA[:n]) for n in range(MAX_SIZE + 1)]


def test_empty_tree_and_leaf_hash() -> None:
    assert EMPTY_ROOT == hashlib.sha256(b"").digest() == root_hash([])
    record = VECTORS["record_hash"]
    assert leaf_hash(record["entry"].encode()) == base64.b64decode(record["leaf_hash_base64"])


@pytest.mark.parametrize("size", range(MAX_SIZE + 1))
def test_root_matches_recursive_definition(size: int) -> None:
    hashes = [leaf_hash(d) for d in DATA[:size]]
    assert root_hash(hashes) == ROOTS[size]
    assert subtree_hash(READ, 0, size) == ROOTS[size]


@pytest.mark.parametrize("size", range(1, MAX_SIZE + 1))
def test_every_inclusion_proof(size: int) -> None:
    for index in range(size):
        proof = inclusion_proof(READ, index, size)
        assert proof == ref_path(index, DATA[:size])
        verify_inclusion(leaf_hash(DATA[index]), index, size, proof, ROOTS[size])


@pytest.mark.parametrize("new", range(MAX_SIZE + 1))
def test_every_consistency_proof(new: int) -> None:
    for old in range(new + 1):
        proof = consistency_proof(READ, old, new)
        expected = [] if old in (0, new) else ref_subproof(old, DATA[:new], True)
        assert proof == expected
        verify_consistency(old, ROOTS[old], new, ROOTS[new], proof)


def _hex(values: list[str]) -> list[bytes]:
    return [bytes.fromhex(v) for v in values]


def test_published_roots_and_proofs() -> None:
    merkle = VECTORS["merkle"]
    leaves = _hex(merkle["leaves_hex"])
    roots = _hex(merkle["roots_hex"])
    read = leaf_node_reader([leaf_hash(leaf) for leaf in leaves])
    for size, root in enumerate(roots):
        assert root_hash([leaf_hash(leaf) for leaf in leaves[:size]]) == root
    for case in merkle["inclusion"]:
        proof = _hex(case["proof_hex"])
        assert inclusion_proof(read, case["index"], case["size"]) == proof
        index, size = case["index"], case["size"]
        verify_inclusion(leaf_hash(leaves[index]), index, size, proof, roots[size])
    for case in merkle["consistency"]:
        proof = _hex(case["proof_hex"])
        assert consistency_proof(read, case["old"], case["new"]) == proof
        verify_consistency(case["old"], roots[case["old"]], case["new"], roots[case["new"]], proof)


def _corruptions(proof: list[bytes]) -> list[list[bytes]]:
    bad = [[*proof, proof[0]], [proof[0], *proof], proof[:-1], [*proof, EMPTY_ROOT]]
    for i in range(len(proof)):
        flipped = bytearray(proof[i])
        flipped[0] ^= 8
        bad.append([*proof[:i], bytes(flipped), *proof[i + 1 :]])
    return bad


@pytest.mark.parametrize(("index", "size"), [(0, 8), (5, 8), (2, 3), (1, 5), (64, 70), (13, 21)])
def test_inclusion_rejects_corruption(index: int, size: int) -> None:
    proof = inclusion_proof(READ, index, size)
    leaf, root = leaf_hash(DATA[index]), ROOTS[size]
    for bad in _corruptions(proof):
        with pytest.raises(ProofError):
            verify_inclusion(leaf, index, size, bad, root)
    for wrong_index, wrong_size in ((index ^ 1, size), (index, size // 2), (index, size * 2)):
        if wrong_index < wrong_size and (wrong_index, wrong_size) != (index, size):
            with pytest.raises(ProofError):
                verify_inclusion(leaf, wrong_index, wrong_size, proof, root)
    with pytest.raises(ProofError):
        verify_inclusion(leaf_hash(b"other"), index, size, proof, root)
    with pytest.raises(ProofError):
        verify_inclusion(leaf, size, size, proof, root)


@pytest.mark.parametrize(("old", "new"), [(1, 8), (6, 8), (2, 5), (6, 7), (3, 70), (64, 70)])
def test_consistency_rejects_corruption(old: int, new: int) -> None:
    proof = consistency_proof(READ, old, new)
    for bad in [*_corruptions(proof), []]:
        with pytest.raises(ProofError):
            verify_consistency(old, ROOTS[old], new, ROOTS[new], bad)
    for args in (
        (old, ROOTS[new], new, ROOTS[new]),
        (old, ROOTS[old], new, ROOTS[old]),
        (old + 1, ROOTS[old], new, ROOTS[new]),
        (old, ROOTS[old], new * 2, ROOTS[new]),
        (old ^ 2, ROOTS[old], new, ROOTS[new]),
    ):
        with pytest.raises(ProofError):
            verify_consistency(*args, proof)


def test_trivial_consistency() -> None:
    verify_consistency(0, EMPTY_ROOT, 5, ROOTS[5], [])
    verify_consistency(5, ROOTS[5], 5, ROOTS[5], [])
    for args in ((5, ROOTS[5], 5, ROOTS[4], []), (0, EMPTY_ROOT, 5, ROOTS[5], [ROOTS[5]])):
        with pytest.raises(ProofError):
            verify_consistency(*args)
    with pytest.raises(ProofError):
        verify_consistency(6, ROOTS[6], 5, ROOTS[5], [])
    with pytest.raises(ProofError):
        consistency_proof(READ, 6, 5)
    with pytest.raises(ProofError):
        inclusion_proof(READ, 5, 5)
    with pytest.raises(ProofError, match="wrong length"):
        verify_inclusion(b"short", 0, 1, [], ROOTS[1])
    assert issubclass(ProofError, OHTTPError)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, MAX_SIZE).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))))
def test_inclusion_property(case: tuple[int, int]) -> None:
    size, index = case
    proof = inclusion_proof(READ, index, size)
    verify_inclusion(leaf_hash(DATA[index]), index, size, proof, ROOTS[size])
    assert len(proof) <= (size - 1).bit_length()
