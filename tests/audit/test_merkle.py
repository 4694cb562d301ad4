"""Proof generation against RFC 9162's recursive definitions, for every (index, size) up to 40."""

from __future__ import annotations

import hashlib

import pytest

from gateway.audit.merkle import (
    ProofError,
    consistency_proof,
    consistency_ranges,
    frontier_root,
    inclusion_proof,
    inclusion_ranges,
    is_valid_subtree,
    leaf_hash,
    node_hash,
    perfect_cover,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)

LEAVES = [leaf_hash(i.to_bytes(4, "big")) for i in range(40)]


def mth(d: list[bytes]) -> bytes:
    """MTH of RFC 9162 §2.1.1 over leaf hashes, written out independently."""
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return d[0]
    k = 1
    while k * 2 < len(d):
        k *= 2
    return hashlib.sha256(b"\x01" + mth(d[:k]) + mth(d[k:])).digest()


def path(m: int, d: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 §2.1.3.1."""
    if len(d) == 1:
        return []
    k = 1
    while k * 2 < len(d):
        k *= 2
    if m < k:
        return [*path(m, d[:k]), mth(d[k:])]
    return [*path(m - k, d[k:]), mth(d[:k])]


def subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b) of RFC 9162 §2.1.4.1."""
    if m == len(d):
        return [] if b else [mth(d)]
    k = 1
    while k * 2 < len(d):
        k *= 2
    if m <= k:
        return [*subproof(m, d[:k], b), mth(d[k:])]
    return [*subproof(m - k, d[k:], False), mth(d[:k])]


@pytest.mark.parametrize("size", range(1, 41))
def test_inclusion_proofs_match_the_rfc_and_verify(size: int) -> None:
    tree = LEAVES[:size]
    root = mth(tree)
    assert root_from_leaf_hashes(tree) == root
    for index in range(size):
        proof = inclusion_proof(index, tree)
        assert proof == path(index, tree)
        verify_inclusion(index, size, tree[index], proof, root)
        other = (index + 1) % size
        if other != index:
            with pytest.raises(ProofError):
                verify_inclusion(other, size, tree[index], proof, root)
        for i in range(len(proof)):
            broken = list(proof)
            broken[i] = bytes([broken[i][0] ^ 1]) + broken[i][1:]
            with pytest.raises(ProofError):
                verify_inclusion(index, size, tree[index], broken, root)


@pytest.mark.parametrize("second", range(1, 41))
def test_consistency_proofs_match_the_rfc_and_verify(second: int) -> None:
    tree = LEAVES[:second]
    root2 = mth(tree)
    for first in range(1, second + 1):
        proof = consistency_proof(first, tree)
        assert proof == (subproof(first, tree, True) if first < second else [])
        root1 = mth(tree[:first])
        verify_consistency(first, second, root1, root2, proof)
        if first < second:
            with pytest.raises(ProofError):
                verify_consistency(first, second, root2, root1, proof)
            with pytest.raises(ProofError):
                verify_consistency(first, second, root1, root2, proof[:-1])


def test_imperfect_ranges_are_covered_by_at_most_log_n_perfect_subtrees() -> None:
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(130)]
    for size in range(1, 131):
        proof_ranges = [r for i in range(0, size, 3) for r in inclusion_ranges(i, size)]
        proof_ranges += [r for m in range(1, size, 3) for r in consistency_ranges(m, size)]
        for index in range(0, size, 3):
            assert sum(not _perfect(a, b) for a, b in inclusion_ranges(index, size)) <= 1
        for first in range(1, size, 3):
            assert sum(not _perfect(a, b) for a, b in consistency_ranges(first, size)) <= 1
        for start, end in set(proof_ranges):
            assert is_valid_subtree(start, end)
            cover = perfect_cover(start, end)
            assert len(cover) <= size.bit_length()
            parts = [root_from_leaf_hashes(leaves[i << lv : (i + 1) << lv]) for lv, i in cover]
            assert frontier_root(parts) == root_from_leaf_hashes(leaves[start:end])


def _perfect(start: int, end: int) -> bool:
    width = end - start
    return width & (width - 1) == 0


def test_bad_arguments_are_proof_errors() -> None:
    with pytest.raises(ProofError):
        inclusion_ranges(3, 3)
    with pytest.raises(ProofError):
        consistency_ranges(0, 3)
    with pytest.raises(ProofError):
        consistency_ranges(4, 3)
    with pytest.raises(ProofError):
        perfect_cover(1, 3)  # not a subtree: starts inside a pair
    with pytest.raises(ProofError):
        verify_inclusion(0, 1, b"short", [], b"short")
    assert node_hash(LEAVES[0], LEAVES[1]) == mth(LEAVES[:2])
