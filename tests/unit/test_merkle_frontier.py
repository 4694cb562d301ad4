"""The O(log n) frontier append gives the same roots as the RFC 9162 definition."""

from __future__ import annotations

import hashlib

import pytest

from gateway.audit.merkle import (
    EMPTY_ROOT,
    frontier_append,
    frontier_root,
    leaf_hash,
    root_from_leaf_hashes,
)


def test_empty_tree_root_is_hash_of_nothing() -> None:
    assert frontier_root([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()


def test_frontier_matches_recursive_definition_up_to_70_leaves() -> None:
    frontier: list[bytes] = []
    leaves: list[bytes] = []
    for size in range(70):
        leaf = leaf_hash(size.to_bytes(4, "big"))
        frontier, completed = frontier_append(size, frontier, leaf)
        leaves.append(leaf)
        assert len(frontier) == (size + 1).bit_count()
        assert frontier_root(frontier) == root_from_leaf_hashes(leaves)
        for node in completed:
            width = 1 << node.level
            start = node.index * width
            assert node.hash == root_from_leaf_hashes(leaves[start : start + width])


def test_frontier_of_wrong_length_is_refused() -> None:
    with pytest.raises(ValueError, match="frontier"):
        frontier_append(3, [EMPTY_ROOT], EMPTY_ROOT)
