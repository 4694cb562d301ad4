"""Disclosure control: k-anonymity over the quasi-identifiers, with small-class suppression.

The first pass of an extract feeds each batch's quasi-identifier values (at every level
the agreement allows) and subjects into a ``ClassCounter``, which keeps one row per
distinct (class, subject) pair with its row count: bounded by the number of people,
not of rows. ``choose_levels`` then evaluates the generalisation lattice (one level
per quasi-identifier, finest first) and returns the finest node whose suppression
stays within the agreed share, or the node fixed by the project's generalisation
state. A class is kept when it holds at least k distinct subjects (or k rows when the
agreement counts rows); rows without a subject key count as a person each. Rows of
smaller classes are suppressed. Everything here is a pure function of its input.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

import pyarrow as pa
import pyarrow.compute as pc

from gateway.research.errors import DisclosureCheckFailedError

ClassKey = tuple[str | None, ...]
Node = tuple[int, ...]
CLASS = "class"
SUBJECT = "subject"
ROWS = "rows"
SEP = "\x1f"  # joins key parts; never part of a generalised value
NULL_MARK = "\x00"
COMPACT_EVERY = 1 << 18
"""Pending pair rows after which the counter merges its parts (bounds memory)."""


class ClassCounter:
    """Distinct (class, subject) pairs with their row counts, across batches.

    Classes are numbered as they are first seen (``keys[i]`` is the finest key of class
    ``i``: every level of every quasi-identifier); subjects are 64-bit hashes of the
    subject pseudonym (null: no subject key). Three integers per pair keep the memory
    far below that of the rows.
    """

    def __init__(self, count_subjects: bool) -> None:
        self.count_subjects = count_subjects
        self.keys: list[ClassKey] = []
        self._ids: dict[str, int] = {}
        self._group = [CLASS, SUBJECT] if count_subjects else [CLASS]
        self._parts: list[pa.Table] = []
        self._pending = 0
        self._merged = 0

    def class_ids(self, key_columns: Sequence[pa.Array]) -> pa.Array:
        """Return the class id (int32) of each row, given its finest key columns (strings)."""
        parts = [pc.fill_null(column, NULL_MARK) for column in key_columns]
        joined = parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, SEP)
        encoded = joined.dictionary_encode()
        ids = []
        for text in encoded.dictionary.to_pylist():
            found = self._ids.get(text)
            if found is None:
                found = self._ids[text] = len(self.keys)
                self.keys.append(tuple(None if p == NULL_MARK else p for p in text.split(SEP)))
            ids.append(found)
        return pc.take(pa.array(ids, pa.int32()), encoded.indices)

    def add(self, class_ids: pa.Array, subjects: pa.Array | None) -> None:
        """Count one batch: each row's class id and its subject hash (int64, or null)."""
        if len(class_ids) == 0:
            return
        columns = {CLASS: class_ids}
        if self.count_subjects:
            if subjects is None:
                raise ValueError("this counter counts subjects")
            columns[SUBJECT] = subjects
        grouped = pa.table(columns).group_by(self._group).aggregate([([], "count_all")])
        self._parts.append(grouped.rename_columns([*self._group, ROWS]))
        self._pending += grouped.num_rows
        # merge when the new pairs outgrow the merged ones: amortised, and memory stays
        # within a small multiple of the distinct (class, subject) pairs
        if self._pending > max(COMPACT_EVERY, self._merged):
            self._compact()

    def _compact(self) -> None:
        if len(self._parts) > 1:
            merged = pa.concat_tables(self._parts).group_by(self._group).aggregate([(ROWS, "sum")])
            self._parts = [merged.rename_columns([*self._group, ROWS])]
        self._merged = self._parts[0].num_rows if self._parts else 0
        self._pending = 0

    def table(self) -> pa.Table:
        """Return all pairs: ``class``, ``subject`` (if counted) and ``rows``."""
        self._compact()
        if self._parts:
            return self._parts[0]
        types = {CLASS: pa.int32(), SUBJECT: pa.int64()}
        return pa.schema([(n, types[n]) for n in self._group] + [(ROWS, pa.int64())]).empty_table()

    @property
    def total_rows(self) -> int:
        """The number of rows counted."""
        return int(pc.sum(self.table().column(ROWS)).as_py() or 0)


@dataclass(frozen=True)
class NodeResult:
    """The outcome of the disclosure check at one generalisation node."""

    node: Node
    levels: dict[str, str]
    k: int
    total_rows: int
    classes: int
    small_classes: frozenset[ClassKey]
    suppressed_rows: int
    smallest_kept_class: int | None

    @property
    def share(self) -> Fraction:
        """The suppressed share of rows (0 when there are no rows)."""
        return Fraction(self.suppressed_rows, self.total_rows) if self.total_rows else Fraction(0)

    def passes(self, max_share: Decimal) -> bool:
        """Whether the suppressed share is at most ``max_share``."""
        return self.share <= Fraction(max_share)

    def describe(self) -> str:
        """Return e.g. ``born=year, area=pc4``."""
        return ", ".join(f"{name}={level}" for name, level in self.levels.items())


@dataclass(frozen=True)
class Lattice:
    """The quasi-identifiers, their allowed levels (finest first) and the key layout."""

    names: tuple[str, ...]
    ladders: tuple[tuple[str, ...], ...]

    @property
    def key_names(self) -> list[str]:
        """The columns of a finest class key: ``<qi>@<level>`` for every level of every QI."""
        return [
            f"{name}@{level}"
            for name, ladder in zip(self.names, self.ladders, strict=True)
            for level in ladder
        ]

    def nodes(self) -> list[Node]:
        """Every node, lowest total generalisation first."""
        ranges = [range(len(ladder)) for ladder in self.ladders]
        return sorted(itertools.product(*ranges), key=lambda n: (sum(n), n))

    def node_of(self, levels: dict[str, str]) -> Node:
        """Return the node of ``levels``; raise ValueError if a level is not allowed."""
        return tuple(
            ladder.index(levels[name])
            for name, ladder in zip(self.names, self.ladders, strict=True)
        )

    def levels_of(self, node: Node) -> dict[str, str]:
        """Return ``{quasi-identifier: level}`` for ``node``."""
        return {
            name: ladder[i] for name, ladder, i in zip(self.names, self.ladders, node, strict=True)
        }

    def positions(self, node: Node) -> list[int]:
        """Return the positions in a finest class key that make up ``node``'s class key."""
        offsets = itertools.accumulate((len(ladder) for ladder in self.ladders), initial=0)
        return [offset + i for offset, i in zip(offsets, node, strict=False)]


def evaluate(counter: ClassCounter, lattice: Lattice, node: Node, k: int) -> NodeResult:
    """Return the classes, small classes and suppressed rows of ``node``."""
    positions = lattice.positions(node)
    node_ids: dict[ClassKey, int] = {}
    node_of_class = [
        node_ids.setdefault(tuple(key[p] for p in positions), len(node_ids)) for key in counter.keys
    ]
    node_keys = list(node_ids)
    pairs = counter.table()
    mapped = pc.take(pa.array(node_of_class, pa.int32()), pairs.column(CLASS))
    table = pa.table({"node": mapped, ROWS: pairs.column(ROWS)})
    if counter.count_subjects:
        subjects = pairs.column(SUBJECT)
        table = table.append_column(SUBJECT, subjects).append_column(
            "anonymous", pc.if_else(pc.is_null(subjects), pairs.column(ROWS), 0)
        )
        grouped = table.group_by(["node"]).aggregate(
            [(ROWS, "sum"), (SUBJECT, "count_distinct"), ("anonymous", "sum")]
        )
        sizes = pc.add(grouped.column(f"{SUBJECT}_count_distinct"), grouped.column("anonymous_sum"))
    else:
        grouped = table.group_by(["node"]).aggregate([(ROWS, "sum")])
        sizes = grouped.column(f"{ROWS}_sum")
    small = pc.less(sizes, k)
    small_table = grouped.filter(small)
    kept_sizes = pc.filter(sizes, pc.invert(small))
    return NodeResult(
        node=node,
        levels=lattice.levels_of(node),
        k=k,
        total_rows=int(pc.sum(grouped.column(f"{ROWS}_sum")).as_py() or 0),
        classes=grouped.num_rows,
        small_classes=frozenset(node_keys[i] for i in small_table.column("node").to_pylist()),
        suppressed_rows=int(pc.sum(small_table.column(f"{ROWS}_sum")).as_py() or 0),
        smallest_kept_class=pc.min(kept_sizes).as_py() if len(kept_sizes) else None,
    )


def _percent(share: Fraction) -> str:
    return f"{float(share) * 100:.2f}%"


def choose_levels(
    counter: ClassCounter,
    lattice: Lattice,
    k: int,
    max_share: Decimal,
    fixed: Node | None = None,
) -> NodeResult:
    """Return the node to release at: ``fixed`` if given, else the finest that passes.

    Among passing nodes of the same total generalisation the one suppressing fewest rows
    wins. Raises DisclosureCheckFailedError, with the numbers, when no candidate keeps
    suppression within ``max_share``.
    """
    candidates: Sequence[Node] = [fixed] if fixed is not None else lattice.nodes()
    best: NodeResult | None = None
    for height in sorted({sum(node) for node in candidates}):
        results = [evaluate(counter, lattice, n, k) for n in candidates if sum(n) == height]
        passing = [r for r in results if r.passes(max_share)]
        if passing:
            return min(passing, key=lambda r: r.suppressed_rows)
        for result in results:
            if best is None or result.suppressed_rows < best.suppressed_rows:
                best = result
    assert best is not None
    which = (
        "the project's fixed generalisation"
        if fixed is not None
        else "the least suppressing generalisation the agreement allows"
    )
    raise DisclosureCheckFailedError(
        f"release refused: the disclosure check would suppress {best.suppressed_rows} of "
        f"{best.total_rows} rows ({_percent(best.share)}) in {len(best.small_classes)} of "
        f"{best.classes} classes smaller than k={k}, even with {which} ({best.describe()}); "
        f"the agreement allows at most {_percent(Fraction(max_share))}",
        suppressed_rows=best.suppressed_rows,
        total_rows=best.total_rows,
        small_classes=len(best.small_classes),
        classes=best.classes,
        k=k,
        max_suppressed_share=str(max_share),
        levels=best.levels,
    )
