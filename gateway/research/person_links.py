"""People as an attacker counts them: rows that share any pseudonym value are one person.

``PersonLinks`` is a union-find over the pseudonym hashes of an extract's rows, in numpy:
each batch adds its anchors (a hash of a row's first pseudonym) and the links to the
row's other pseudonyms; links are folded into components as they grow, keeping one link
per pseudonym to the lowest one of its component, so memory follows the distinct
pseudonyms, not the rows. ``resolve`` returns ``People``: every anchor's person number.
Everything here is a pure function of its input.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

COMPACT_EVERY = 1 << 18
"""Pending rows after which links (and the class counter's pairs) are merged (bounds memory)."""

Int64s = npt.NDArray[np.int64]
Flags = npt.NDArray[np.bool_]


def distinct(values: Int64s) -> Int64s:
    """Return the sorted distinct values (by sorting: numpy's hash-based unique is 10x slower)."""
    if len(values) == 0:
        return values
    ordered = np.sort(values)
    first = np.empty(len(ordered), dtype=np.bool_)
    first[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    return ordered[first]


def distinct_sorting(values: Int64s) -> Int64s:
    """``distinct(values)``, sorting ``values`` in place: for a temporary the caller drops,
    so that no sorted copy is made beside it."""
    if len(values) == 0:
        return values
    values.sort()
    first = np.empty(len(values), dtype=np.bool_)
    first[0] = True
    np.not_equal(values[1:], values[:-1], out=first[1:])
    return values[first]


def positions(sorted_values: Int64s, queries: Int64s) -> Int64s:
    """Return where each query sits in ``sorted_values`` (``np.searchsorted``).

    Many queries are looked up in sorted order: the sorted array is then walked
    through once, not jumped about in (2-3x faster on millions of pseudonyms).
    """
    if len(queries) < 4096:
        return np.searchsorted(sorted_values, queries)
    order = _nearly_sorted_order(queries)
    found = np.empty(len(queries), dtype=np.int64)
    found[order] = np.searchsorted(sorted_values, queries[order])
    return found


def _nearly_sorted_order(values: Int64s) -> Int64s:
    """Return a permutation that puts ``values`` in ascending order, or nearly.

    Each value's offset from the smallest, shifted right as far as needed, is packed
    with its index into one 64-bit key: one sort of the keys (numpy's vectorised sort,
    2-3x faster than ``argsort``) orders the values by their leading bits. Values that
    share those bits (for pseudonym hashes: rarely; for small numbers: never, nothing is
    shifted out) keep their index order. Only for locality: any order finds the same.
    """
    count = len(values)
    index_bits = max(count - 1, 1).bit_length()
    low = values.min()
    shift = max(0, (int(values.max()) - int(low)).bit_length() + index_bits - 64)
    keys = (values - low).view(np.uint64)  # wraps modulo 2**64: the true offset
    # shifted in place: one array of keys, not a temporary per step
    keys >>= np.uint64(shift)
    keys <<= np.uint64(index_bits)
    keys |= np.arange(count, dtype=np.uint64)
    keys.sort()
    keys &= np.uint64((1 << index_bits) - 1)
    order: Int64s = keys.view(np.int64)
    return order


def int64s(array: pa.Array | pa.ChunkedArray) -> Int64s:
    """Return an Arrow integer array without nulls as a numpy int64 array."""
    return np.asarray(array.to_numpy(zero_copy_only=False), dtype=np.int64)


def _roots(count: int, u: npt.NDArray[np.integer[Any]], v: npt.NDArray[np.integer[Any]]) -> Any:
    """Return, per node 0..count-1, the lowest node of its component given links u[i]-v[i].

    Union-find with pointer jumping, vectorised: hook the higher root onto the lower,
    then jump pointers to the roots, until every link joins equal roots. The numbers
    are of ``u``'s integer type.
    """
    parent = np.arange(count, dtype=u.dtype)
    while True:
        pu, pv = parent[u], parent[v]
        differ = pu != pv
        if not differ.any():
            return parent
        np.minimum.at(parent, np.maximum(pu, pv)[differ], np.minimum(pu, pv)[differ])
        while True:
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand


def _narrow(values: Int64s, small: bool) -> npt.NDArray[np.integer[Any]]:
    """Return ``values`` as int32 when ``small`` (they fit), else as they are."""
    return values.astype(np.int32) if small else values


def _joined(parts: list[Int64s]) -> Int64s:
    """Return ``parts`` concatenated, and empty the list (its arrays may go)."""
    joined = np.concatenate([*parts, np.empty(0, np.int64)])
    parts.clear()
    return joined


class PersonLinks:
    """The links between pseudonyms, across batches: who is one person to an attacker.

    ``add`` takes one batch's pseudonym hashes (one int64 array per pseudonymised
    column, null where the row has none) and returns each row's anchor: the hash of its
    first pseudonym, or null for a row without any. Every other pseudonym of the row is
    linked to the anchor. ``resolve`` joins everything linked, directly or through other
    rows, into people (union-find with pointer jumping, vectorised). Whenever the new
    links outgrow the folded ones (at least ``compact_every``), they are folded into
    components: one link per linked pseudonym, to the lowest of its component, so memory
    follows the distinct pseudonyms (16 bytes each), not the rows.
    """

    def __init__(self, compact_every: int = COMPACT_EVERY) -> None:
        self.compact_every = compact_every
        self._nodes: list[Int64s] = []
        self._edges: list[tuple[Int64s, Int64s]] = []
        """New links (anchor, other pseudonym), not yet folded."""
        self._links: tuple[Int64s, Int64s] = (np.empty(0, np.int64), np.empty(0, np.int64))
        """Folded links: linked pseudonyms (sorted) and the lowest of each one's component."""
        self._withdrawn: list[Int64s] = []
        self._pending = 0
        self._merged = 0

    def add(self, hashes: Sequence[pa.Array]) -> pa.Array:
        """Record one batch's links; return each row's anchor (int64, null if no key)."""
        if not hashes:
            raise ValueError("linking needs at least one pseudonym column")
        anchors = pc.coalesce(*hashes) if len(hashes) > 1 else hashes[0]
        self._nodes.append(int64s(pc.unique(anchors).drop_null()))
        for other in hashes[1:]:
            linked = pc.fill_null(pc.not_equal(other, anchors), False)
            if not pc.any(linked).as_py():
                continue
            first, second = int64s(anchors.filter(linked)), int64s(other.filter(linked))
            self._edges.append((first, second))
            self._pending += len(first)
        self._pending += len(self._nodes[-1])
        # fold the links into components when the new ones outgrow the folded ones:
        # amortised, and memory follows the distinct pseudonyms, not the rows
        if self._pending > max(self.compact_every, self._merged):
            self._compact()
        return anchors

    def _compact(self) -> None:
        """Replace the anchors by the distinct ones and fold the new links into the old.

        Folded, each linked pseudonym keeps a single link, to the lowest pseudonym of its
        component (sorted by pseudonym, no root among them). New links are first read
        through the folded ones (each end replaced by its component's lowest), so the
        union-find runs over the new links only, and the folded links whose lowest
        changed are updated in place: memory follows the folded links plus the new
        ones, not several copies of all of them.
        """
        # each list is emptied once joined, before the joined copy is sorted or looked
        # up: its parts are not held beside the copy
        pending, self._nodes = self._nodes, []
        joined = np.concatenate([*pending, np.empty(0, np.int64)])
        pending.clear()
        anchors = distinct_sorting(joined)
        del joined
        self._nodes = [anchors]
        if self._edges:
            ends, self._edges = self._edges, []
            firsts, seconds = [a for a, _ in ends], [b for _, b in ends]
            ends.clear()
            first = self._lowest(_joined(firsts))
            second = self._lowest(_joined(seconds))
            differ = first != second
            first, second = first[differ], second[differ]
            del differ
            if len(first):
                nodes = distinct_sorting(np.concatenate([first, second]))
                # node numbers, not hashes, through the union-find: half the bytes
                small = len(nodes) < 1 << 31
                u = _narrow(positions(nodes, first), small)
                del first
                v = _narrow(positions(nodes, second), small)
                del second
                parent = _roots(len(nodes), u, v)
                del u, v
                moved = parent != np.arange(len(nodes), dtype=np.int64)
                # sorted, and none of them linked yet: each was a component's lowest
                lower, lowest = nodes[moved], nodes[parent[moved]]
                del nodes, parent, moved
                linked, root = self._links
                at = np.minimum(positions(lower, root), len(lower) - 1)
                hit = lower[at] == root
                root[hit] = lowest[at[hit]]
                del at, hit
                where = np.searchsorted(linked, lower)
                # one array grown at a time, its old copy let go before the next one grows
                self._links = (np.empty(0, np.int64), np.empty(0, np.int64))
                linked = np.insert(linked, where, lower)
                root = np.insert(root, where, lowest)
                self._links = (linked, root)
        self._merged, self._pending = len(anchors) + len(self._links[0]), 0

    def _lowest(self, hashes: Int64s) -> Int64s:
        """Return, per pseudonym, the lowest pseudonym of its component as folded so far."""
        linked, root = self._links
        if len(linked) == 0:
            return hashes
        at = positions(linked, hashes)
        np.minimum(at, len(linked) - 1, out=at)
        hit = linked[at] == hashes
        lowest = hashes.copy()
        lowest[hit] = root[at[hit]]
        return lowest

    def withdraw(self, anchors: pa.Array) -> None:
        """Mark the people of ``anchors`` (non-null int64) as withdrawn: left out entirely."""
        self._withdrawn.append(int64s(pc.unique(anchors).drop_null()))

    def resolve(self) -> People:
        """Return the people: every anchor mapped to one person number.

        Only anchors are kept (rows are found by their anchor): every other pseudonym
        was linked to an anchor, so no person is lost. Once folded, the links are one
        per linked pseudonym to the lowest of its component, so each anchor's person is
        that lowest pseudonym (or the anchor itself): a lookup, no union-find; people
        are numbered in the order of their lowest pseudonyms.
        """
        self._compact()
        anchors = self._nodes[0]
        self._nodes = []
        lowest = self._lowest(anchors)
        self._links = (np.empty(0, np.int64), np.empty(0, np.int64))  # resolve once
        # each anchor's rank among the distinct lowest pseudonyms (``np.unique``'s inverse,
        # without its argsort and inverse temporaries: a sorted copy and a lookup)
        of_anchor = np.searchsorted(distinct(lowest), lowest).astype(np.int64, copy=False)
        del lowest
        people = People(anchors, of_anchor, int(of_anchor.max(initial=-1)) + 1)
        withdrawn = np.zeros(people.count, dtype=np.bool_)
        for gone in self._withdrawn:
            withdrawn[people.of(gone)] = True
        return People(people.nodes, people.person, people.count, withdrawn)


@dataclass(frozen=True)
class People:
    """Anchors (sorted ``nodes``) and the person each belongs to."""

    nodes: Int64s
    person: Int64s
    count: int
    withdrawn: Flags | None = None

    def of(self, hashes: Int64s) -> Int64s:
        """Return the person number of each hash (every hash must be a known node)."""
        return self.person[positions(self.nodes, hashes)]

    @classmethod
    def each_its_own(cls, hashes: Int64s) -> People:
        """Return people where every distinct hash is a person of its own (no links)."""
        nodes = distinct(hashes)
        return cls(nodes, np.arange(len(nodes), dtype=np.int64), len(nodes))
