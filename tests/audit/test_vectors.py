"""Known answers: every transparency-dev/merkle proof vector, and the RFC 6962 roots of 0-8 leaves.

The vectors are in ``tests/vectors/merkle`` (see its README for origin and licence). A
case with ``wantErr`` must fail to verify; every other case must verify.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from gateway.audit.merkle import (
    EMPTY_ROOT,
    ProofError,
    consistency_proof,
    frontier_append,
    frontier_root,
    inclusion_proof,
    leaf_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
    verify_subtree_consistency,
    verify_subtree_inclusion,
)

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "merkle"

# transparency-dev/merkle testonly/constants.go: LeafInputs, NodeHashes, RootHashes.
LEAF_INPUTS = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
]
NODE_HASHES = [
    [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    [
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    [
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    ["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
]
ROOT_HASHES = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
LEAVES = [leaf_hash(bytes.fromhex(x)) for x in LEAF_INPUTS]


def cases(kind: str) -> list[Path]:
    return sorted(VECTORS.glob(f"{kind}/**/*.json"))


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def h(value: str | None) -> bytes:
    return base64.b64decode(value) if value else b""


def hashes(values: list[str] | None) -> list[bytes]:
    return [h(v) for v in values or []]


def case_id(path: Path) -> str:
    return str(path.relative_to(VECTORS))


def expect(case: dict[str, Any], check: Any) -> None:
    if case["wantErr"]:
        with pytest.raises(ProofError):
            check()
    else:
        check()


def test_every_vector_folder_is_there() -> None:
    counts = {kind: len(cases(kind)) for kind in ("inclusion", "consistency")}
    counts |= {kind: len(cases(kind)) for kind in ("subtreeinclusion", "subtreeconsistency")}
    assert counts == {
        "inclusion": 98,
        "consistency": 98,
        "subtreeinclusion": 204,
        "subtreeconsistency": 118,
    }


@pytest.mark.parametrize("path", cases("inclusion"), ids=case_id)
def test_inclusion_vector(path: Path) -> None:
    case = load(path)
    expect(
        case,
        lambda: verify_inclusion(
            case["leafIdx"],
            case["treeSize"],
            h(case["leafHash"]),
            hashes(case["proof"]),
            h(case["root"]),
        ),
    )


@pytest.mark.parametrize("path", cases("consistency"), ids=case_id)
def test_consistency_vector(path: Path) -> None:
    case = load(path)
    expect(
        case,
        lambda: verify_consistency(
            case["size1"], case["size2"], h(case["root1"]), h(case["root2"]), hashes(case["proof"])
        ),
    )


@pytest.mark.parametrize("path", cases("subtreeinclusion"), ids=case_id)
def test_subtree_inclusion_vector(path: Path) -> None:
    case = load(path)
    expect(
        case,
        lambda: verify_subtree_inclusion(
            case["leafIdx"],
            case["start"],
            case["end"],
            h(case["leafHash"]),
            hashes(case["proof"]),
            h(case["root"]),
        ),
    )


@pytest.mark.parametrize("path", cases("subtreeconsistency"), ids=case_id)
def test_subtree_consistency_vector(path: Path) -> None:
    case = load(path)
    expect(
        case,
        lambda: verify_subtree_consistency(
            case["start"],
            case["end"],
            case["size"],
            h(case["root1"]),
            h(case["root2"]),
            hashes(case["proof"]),
        ),
    )


@pytest.mark.parametrize("size", range(9))
def test_rfc6962_roots_of_0_to_8_leaves(size: int) -> None:
    expected = bytes.fromhex(ROOT_HASHES[size])
    assert root_from_leaf_hashes(LEAVES[:size]) == expected
    frontier: list[bytes] = []
    for i in range(size):
        frontier, _ = frontier_append(i, frontier, LEAVES[i])
    assert frontier_root(frontier) == expected
    assert (size == 0) == (expected == EMPTY_ROOT)


def test_rfc6962_node_hashes_are_the_completed_subtrees() -> None:
    frontier: list[bytes] = []
    completed = {}
    for i, leaf in enumerate(LEAVES):
        assert leaf.hex() == NODE_HASHES[0][i]
        frontier, nodes = frontier_append(i, frontier, leaf)
        completed.update({(n.level, n.index): n.hash.hex() for n in nodes})
    expected = {(lv, i): x for lv, row in enumerate(NODE_HASHES) if lv for i, x in enumerate(row)}
    assert completed == expected


@pytest.mark.parametrize(
    "path",
    [p for p in cases("inclusion") + cases("consistency") if p.name == "happy-path.json"],
    ids=case_id,
)
def test_generated_proofs_equal_the_happy_path_vectors(path: Path) -> None:
    """The happy paths are proofs over the LeafInputs tree: generating them gives the same."""
    case = load(path)
    if "leafIdx" in case:
        size, index = case["treeSize"], case["leafIdx"]
        assert h(case["root"]) == bytes.fromhex(ROOT_HASHES[size])
        assert inclusion_proof(index, LEAVES[:size]) == hashes(case["proof"])
    else:
        first, second = case["size1"], case["size2"]
        assert h(case["root2"]) == bytes.fromhex(ROOT_HASHES[second])
        assert consistency_proof(first, LEAVES[:second]) == hashes(case["proof"])
