"""RFC 9162 (RFC 6962) Merkle tree hashing, proof construction and proof verification.

Hashes are 32-byte SHA-256 digests. Proofs are built from a :data:`NodeReader`, a callable
``(level, index) -> hash`` returning the hash of the *complete* subtree of ``2**level`` leaves
starting at leaf ``index * 2**level`` (the tiles of :mod:`ohttp.tlog.tiles` provide one; so does
:func:`leaf_node_reader` for a list of leaf hashes). Every range the RFC's recursions need is a
concatenation of such subtrees, so no reader ever has to hash an incomplete subtree.

Verification raises :class:`~ohttp.tlog.errors.ProofError` and returns nothing on success.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterator, Sequence
from functools import cache

from ohttp.tlog.errors import ProofError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "NodeReader",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "leaf_node_reader",
    "node_hash",
    "root_hash",
    "subtree_hash",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
# RFC 9162 §2.1.1: the hash of an empty list is the hash of an empty string.
EMPTY_ROOT = hashlib.sha256(b"").digest()

NodeReader = Callable[[int, int], bytes]


def leaf_hash(entry: bytes) -> bytes:
    """MTH({d(0)}) = SHA-256(0x00 || d(0)) (RFC 9162 §2.1.1)."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right) (RFC 9162 §2.1.1)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_hash(leaf_hashes: Sequence[bytes]) -> bytes:
    """The Merkle tree hash of a list of leaf hashes, in one pass with a stack of subtrees."""
    if not leaf_hashes:
        return EMPTY_ROOT
    # stack[i] is a complete subtree of sizes[i] leaves; sizes strictly decrease.
    stack: list[bytes] = []
    sizes: list[int] = []
    for hashed in leaf_hashes:
        stack.append(hashed)
        sizes.append(1)
        while len(sizes) > 1 and sizes[-1] == sizes[-2]:
            right = stack.pop()
            sizes.pop()
            stack[-1] = node_hash(stack[-1], right)
            sizes[-1] *= 2
    return _fold_right(stack)


def _fold_right(hashes: Sequence[bytes]) -> bytes:
    # A range split into complete subtrees of decreasing size hashes right to left.
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


def _split(size: int) -> int:
    # RFC 9162 §2.1.1: k is the largest power of two smaller than n (n > 1).
    return 1 << ((size - 1).bit_length() - 1)


def subtree_hash(read: NodeReader, start: int, size: int) -> bytes:
    """MTH(D[start:start+size]), where ``start`` is a multiple of a power of two >= ``size``."""
    if size == 0:
        return EMPTY_ROOT
    parts: list[bytes] = []
    while size:
        level = size.bit_length() - 1
        parts.append(read(level, start >> level))
        start += 1 << level
        size -= 1 << level
    return _fold_right(parts)


def leaf_node_reader(leaf_hashes: Sequence[bytes]) -> NodeReader:
    """A :data:`NodeReader` over an in-memory list of leaf hashes (memoised)."""

    @cache
    def read(level: int, index: int) -> bytes:
        if level == 0:
            return leaf_hashes[index]
        return node_hash(read(level - 1, 2 * index), read(level - 1, 2 * index + 1))

    return read


def inclusion_proof(read: NodeReader, index: int, size: int) -> list[bytes]:
    """PATH(index, D[0:size]) of RFC 9162 §2.1.3.1."""
    if not 0 <= index < size:
        raise ProofError("leaf index outside the tree")
    return _path(read, index, 0, size)


def _path(read: NodeReader, index: int, start: int, size: int) -> list[bytes]:
    if size == 1:
        return []
    k = _split(size)
    if index < k:
        return [*_path(read, index, start, k), subtree_hash(read, start + k, size - k)]
    return [*_path(read, index - k, start + k, size - k), subtree_hash(read, start, k)]


def consistency_proof(read: NodeReader, old_size: int, new_size: int) -> list[bytes]:
    """PROOF(m, D[0:n]) of RFC 9162 §2.1.4.1; empty when m is 0 or m equals n."""
    if not 0 <= old_size <= new_size:
        raise ProofError("consistency proof sizes out of order")
    if old_size in (0, new_size):
        return []
    return _subproof(read, old_size, 0, new_size, complete=True)


def _subproof(read: NodeReader, m: int, start: int, size: int, *, complete: bool) -> list[bytes]:
    if m == size:
        return [] if complete else [subtree_hash(read, start, m)]
    k = _split(size)
    if m <= k:
        head = _subproof(read, m, start, k, complete=complete)
        return [*head, subtree_hash(read, start + k, size - k)]
    head = _subproof(read, m - k, start + k, size - k, complete=False)
    return [*head, subtree_hash(read, start, k)]


def _check_hashes(*hashes: bytes) -> None:
    if any(len(h) != HASH_SIZE for h in hashes):
        raise ProofError("hash of the wrong length")


def _sides(fn: int, sn: int, count: int) -> Iterator[bool]:
    """The walk shared by RFC 9162 §2.1.3.2 step 4 and §2.1.4.2 step 6: for each of ``count``
    proof elements, whether it is a left sibling; raises unless the walk ends at the root."""
    for _ in range(count):
        if sn == 0:
            raise ProofError("proof too long")
        left = bool(fn & 1) or fn == sn
        yield left
        # "right-shift fn and sn equally until either LSB(fn) is set or fn is 0"
        while left and fn and not fn & 1:
            fn >>= 1
            sn >>= 1
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("proof too short")


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Verify an inclusion proof for a leaf hash (RFC 9162 §2.1.3.2)."""
    _check_hashes(leaf, root, *proof)
    if not 0 <= index < size:
        raise ProofError("leaf index outside the tree")
    r = leaf
    for left, p in zip(_sides(index, size - 1, len(proof)), proof, strict=True):
        r = node_hash(p, r) if left else node_hash(r, p)
    if not hmac.compare_digest(r, root):
        raise ProofError("inclusion proof does not verify")


def verify_consistency(
    old_size: int, old_root: bytes, new_size: int, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Verify that (new_size, new_root) extends (old_size, old_root) (RFC 9162 §2.1.4.2)."""
    _check_hashes(old_root, new_root, *proof)
    if not 0 <= old_size <= new_size:
        raise ProofError("consistency proof sizes out of order")
    if old_size in (0, new_size):
        # Any tree extends the empty tree; a tree is consistent only with itself. Both proofs
        # are empty (RFC 9162 §2.1.4.1).
        if proof or (old_size == new_size and not hmac.compare_digest(old_root, new_root)):
            raise ProofError("consistency proof does not verify")
        return
    if not proof:
        raise ProofError("consistency proof is empty")
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # step 2: an exact power of two
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:  # step 4
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for left, c in zip(_sides(fn, sn, len(path) - 1), path[1:], strict=True):
        if left:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
        else:
            sr = node_hash(sr, c)
    if not (hmac.compare_digest(fr, old_root) and hmac.compare_digest(sr, new_root)):
        raise ProofError("consistency proof does not verify")
