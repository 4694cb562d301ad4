"""RFC 9162 (RFC 6962) Merkle tree hashing and proofs, pure functions over bytes.

Leaves are hashed as ``SHA-256(0x00 || data)`` and interior nodes as
``SHA-256(0x01 || left || right)``. The *frontier* of a tree of size n is the list of
roots of its perfect subtrees, largest first, one per set bit of n; it lets an append
cost O(log n) and gives the root without reading old leaves.

Proofs are described here as lists of *ranges* ``[start, end)`` of leaves whose tree
hashes form the proof (``inclusion_ranges``, ``consistency_ranges``). Every range is a
subtree in the sense of RFC 9162: perfect, or the imperfect right edge of a tree, which
``perfect_cover`` splits into at most log2(n) perfect subtrees. A store that keeps
every perfect subtree hash can therefore build any proof from O(log n) stored hashes.
The verifiers implement RFC 9162 §2.1.3.2 and §2.1.4.2 literally, and the subtree
variants of the Merkle Tree Certificates draft (``verify_subtree_*``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

Range = tuple[int, int]
"""Leaves ``[start, end)`` of a subtree."""

NodeId = tuple[int, int]
"""``(level, index)`` of a perfect subtree, covering leaves ``index << level`` up to the next."""


class ProofError(ValueError):
    """A proof did not verify or cannot be built; the message says why (for logs, not callers)."""


def leaf_hash(data: bytes) -> bytes:
    """Return the RFC 9162 hash of a leaf's data."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 9162 hash of an interior node."""
    return hashlib.sha256(b"\x01" + left + right).digest()


@dataclass(frozen=True, slots=True)
class CompletedNode:
    """A perfect subtree completed by an append: ``level`` 1 covers two leaves."""

    level: int
    index: int
    hash: bytes


def frontier_append(
    size: int, frontier: list[bytes], new_leaf_hash: bytes
) -> tuple[list[bytes], list[CompletedNode]]:
    """Append a leaf hash to a tree of ``size`` leaves given its frontier.

    Returns the new frontier and the interior nodes the append completed (to store, so
    that proofs never need to rehash old leaves). Raises ValueError if the frontier
    does not match the size.
    """
    if len(frontier) != size.bit_count():
        raise ValueError("frontier does not match tree size")
    stack = list(frontier)
    carry = new_leaf_hash
    completed: list[CompletedNode] = []
    level = 0
    while (size >> level) & 1:
        carry = node_hash(stack.pop(), carry)
        level += 1
        completed.append(CompletedNode(level=level, index=size >> level, hash=carry))
    stack.append(carry)
    return stack, completed


def frontier_root(frontier: Sequence[bytes]) -> bytes:
    """Return the root hash of the tree whose frontier is given (also: of any perfect cover)."""
    if not frontier:
        return EMPTY_ROOT
    root = frontier[-1]
    for subtree in reversed(frontier[:-1]):
        root = node_hash(subtree, root)
    return root


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """Return the root over leaf hashes, computed by the RFC 9162 recursive definition."""
    if not hashes:
        return EMPTY_ROOT
    if len(hashes) == 1:
        return hashes[0]
    split = _split(len(hashes))
    return node_hash(root_from_leaf_hashes(hashes[:split]), root_from_leaf_hashes(hashes[split:]))


def _split(n: int) -> int:
    """Return the largest power of two smaller than ``n`` (n > 1): RFC 9162's k."""
    return 1 << ((n - 1).bit_length() - 1)


# --- which hashes make up a proof -------------------------------------------------------


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """Return the ranges whose hashes form PATH(index, D[size]), leaf sibling first.

    Raises ProofError unless ``0 <= index < size``.
    """
    if not 0 <= index < size:
        raise ProofError(f"index {index} is not in a tree of size {size}")
    ranges: list[Range] = []
    lo, hi = 0, size
    while hi - lo > 1:
        mid = lo + _split(hi - lo)
        if index < mid:
            ranges.append((mid, hi))
            hi = mid
        else:
            ranges.append((lo, mid))
            lo = mid
    ranges.reverse()
    return ranges


def consistency_ranges(first: int, second: int) -> list[Range]:
    """Return the ranges whose hashes form PROOF(first, D[second]) of RFC 9162 §2.1.4.1.

    Empty when the sizes are equal. Raises ProofError unless ``0 < first <= second``.
    """
    if not 0 < first <= second:
        raise ProofError(f"no consistency proof from size {first} to {second}")
    ranges: list[Range] = []
    lo, hi, m, include_self = 0, second, first, False
    # SUBPROOF(m, D[lo:hi], b), unrolled: the recursion only ever descends one side.
    while m != hi - lo:
        mid = lo + _split(hi - lo)
        if m <= mid - lo:
            ranges.append((mid, hi))
            hi = mid
        else:
            ranges.append((lo, mid))
            m -= mid - lo
            lo = mid
            include_self = True
    if include_self:
        ranges.append((lo, hi))
    ranges.reverse()
    return ranges


def perfect_cover(start: int, end: int) -> list[NodeId]:
    """Return the perfect subtrees, left to right, whose combination is MTH(D[start:end]).

    ``[start, end)`` must be a subtree (start a multiple of the next power of two of its
    size); the hash of the range is ``frontier_root`` of the covering hashes. Raises
    ProofError for anything else.
    """
    if not is_valid_subtree(start, end) or start == end:
        raise ProofError(f"[{start}, {end}) is not a non-empty subtree")
    cover: list[NodeId] = []
    position, width = start, end - start
    for level in reversed(range(width.bit_length())):
        if (width >> level) & 1:
            cover.append((level, position >> level))
            position += 1 << level
    return cover


def is_valid_subtree(start: int, end: int) -> bool:
    """Return whether ``[start, end)`` is a subtree of every tree that contains it."""
    if start > end:
        return False
    size = end - start
    ceiling = 1 if size <= 1 else 1 << (size - 1).bit_length()
    return start % ceiling == 0


def subtree_hash(start: int, end: int, leaves: Sequence[bytes]) -> bytes:
    """Return MTH(D[start:end]) from all leaf hashes (a reference, O(end - start))."""
    return root_from_leaf_hashes(leaves[start:end])


def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """Return PATH(index, D[n]) computed from all n leaf hashes (reference implementation)."""
    return [subtree_hash(a, b, leaves) for a, b in inclusion_ranges(index, len(leaves))]


def consistency_proof(first: int, leaves: Sequence[bytes]) -> list[bytes]:
    """Return PROOF(first, D[n]) computed from all n leaf hashes (reference implementation)."""
    return [subtree_hash(a, b, leaves) for a, b in consistency_ranges(first, len(leaves))]


# --- verification (RFC 9162 §2.1.3.2, §2.1.4.2) -------------------------------------------


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """Return the root that an inclusion proof of ``leaf`` (a leaf hash) at ``index`` implies.

    Raises ProofError when the proof has the wrong shape for (index, size).
    """
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not below tree size {size}")
    if len(leaf) != HASH_SIZE or any(len(p) != HASH_SIZE for p in proof):
        raise ProofError("hashes must be 32 bytes")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is too short")
    return r


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf`` (a leaf hash) is at ``index`` in the tree (size, root).

    Raises ProofError if it is not proven.
    """
    if root_from_inclusion_proof(index, size, leaf, proof) != root:
        raise ProofError("inclusion proof does not lead to the root")


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree (first, first_root) is a prefix of (second, second_root).

    Sizes must satisfy ``0 < first <= second``; equal sizes need an empty proof and equal
    roots. Raises ProofError if consistency is not proven.
    """
    if not 0 < first <= second:
        raise ProofError(f"no consistency between sizes {first} and {second}")
    if first == second:
        if proof:
            raise ProofError("equal sizes need an empty proof")
        if first_root != second_root:
            raise ProofError("equal sizes with different roots")
        return
    if not proof:
        raise ProofError("empty consistency proof")
    if any(len(p) != HASH_SIZE for p in proof):
        raise ProofError("hashes must be 32 bytes")
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is too short")
    if fr != first_root or sr != second_root:
        raise ProofError("consistency proof does not lead to both roots")


def verify_subtree_inclusion(
    index: int, start: int, end: int, leaf: bytes, proof: Sequence[bytes], subtree_root: bytes
) -> None:
    """Check that ``leaf`` is entry ``index`` of subtree ``[start, end)`` with ``subtree_root``.

    The subtree inclusion proof of the Merkle Tree Certificates draft: RFC 9162's
    procedure on the subtree. Raises ProofError if it is not proven.
    """
    if not is_valid_subtree(start, end) or not start <= index < end:
        raise ProofError(f"entry {index} is not in a subtree [{start}, {end})")
    if root_from_inclusion_proof(index - start, end - start, leaf, proof) != subtree_root:
        raise ProofError("subtree inclusion proof does not lead to the subtree root")


def verify_subtree_consistency(
    start: int, end: int, size: int, subtree_root: bytes, root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that subtree ``[start, end)`` with ``subtree_root`` is part of the tree (size, root).

    The subtree consistency proof of the Merkle Tree Certificates draft. Raises
    ProofError if it is not proven.
    """
    if not is_valid_subtree(start, end) or end > size:
        raise ProofError(f"[{start}, {end}) is not a subtree of a tree of size {size}")
    if any(len(p) != HASH_SIZE for p in proof):
        raise ProofError("hashes must be 32 bytes")
    if start == end:
        if proof or subtree_root != EMPTY_ROOT:
            raise ProofError("an empty subtree needs an empty proof and the empty root")
        return
    fn, sn, tn = start, end - 1, size - 1
    if sn == tn:
        while fn != sn:
            fn, sn, tn = fn >> 1, sn >> 1, tn >> 1
    else:
        while fn != sn and sn & 1:
            fn, sn, tn = fn >> 1, sn >> 1, tn >> 1
    path = list(proof)
    if fn == sn:
        fr = sr = subtree_root
    else:
        if not path:
            raise ProofError("empty subtree consistency proof")
        fr = sr = path.pop(0)
    for c in path:
        if tn == 0:
            raise ProofError("subtree consistency proof is too long")
        if sn & 1 or sn == tn:
            if fn < sn:
                fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not sn & 1:
                fn, sn, tn = fn >> 1, sn >> 1, tn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn, tn = fn >> 1, sn >> 1, tn >> 1
    if tn != 0 or fr != subtree_root or sr != root:
        raise ProofError("subtree consistency proof does not lead to both roots")
