"""Disclosure control: k-anonymity over the quasi-identifiers, counted in people, not rows.

The unit of protection is the person, counted as an attacker would count them: rows that
share ANY pseudonym value (person, name and birth date, account, line, respondent) are
one person (``person_links.PersonLinks``: union-find over the pseudonyms). The first pass of
an extract feeds each batch's quasi-identifier values (at every level the agreement
allows) and each row's anchor (a hash of its first pseudonym) into a ``ClassCounter``,
which keeps one row per distinct (class, anchor) pair with its row count: bounded by the
number of people, not of rows. ``choose_levels`` then maps anchors to people and
evaluates the generalisation lattice (one level per quasi-identifier, finest first): a
class is kept when it holds at least k distinct people; a person in any smaller class is
suppressed in every row, which may shrink other classes, so the check repeats until
nothing changes. It returns the finest node whose suppression (of people and of rows)
stays within the agreed share, or the node fixed by the project's generalisation state.
A row without any subject key is never counted as a person: the pipeline leaves it out.
Everything here is a pure function of its input.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from gateway.research.errors import DisclosureCheckFailedError
from gateway.research.person_links import (
    COMPACT_EVERY,
    Flags,
    Int64s,
    People,
    distinct,
    int64s,
)

ClassKey = tuple[str | None, ...]
Node = tuple[int, ...]
CLASS = "class"
SUBJECT = "subject"
ROWS = "rows"
SEP = "\x1f"  # joins key parts; never part of a generalised value
_SEP_SCALAR = pa.scalar(SEP, pa.string())  # typed: pyarrow infers nothing per call
NULL_MARK = "\x00"


@dataclass(frozen=True)
class _Pairs:
    """(class, subject) pairs with row counts, as numpy arrays (``known``: subject not null)."""

    classes: npt.NDArray[np.int32]
    subjects: npt.NDArray[np.int64]
    known: npt.NDArray[np.bool_]
    rows: npt.NDArray[np.int64]

    @classmethod
    def concat(cls, parts: Sequence[_Pairs]) -> _Pairs:
        return cls(
            np.concatenate([np.empty(0, np.int32), *(p.classes for p in parts)]),
            np.concatenate([np.empty(0, np.int64), *(p.subjects for p in parts)]),
            np.concatenate([np.empty(0, np.bool_), *(p.known for p in parts)]),
            np.concatenate([np.empty(0, np.int64), *(p.rows for p in parts)]),
        )


def _fold(pairs: _Pairs) -> _Pairs:
    """Return the distinct pairs (sorted), each with the sum of its rows.

    By sorting, in numpy: a hash aggregation (Acero's group_by) needs several times
    the memory of its input on the merged pairs of a large release.
    """
    if len(pairs.classes) == 0:
        return pairs
    order = np.lexsort((pairs.subjects, pairs.known, pairs.classes))
    classes, subjects = pairs.classes[order], pairs.subjects[order]
    known, rows = pairs.known[order], pairs.rows[order]
    del order
    first = np.empty(len(classes), dtype=np.bool_)
    first[0] = True
    first[1:] = (
        (classes[1:] != classes[:-1]) | (subjects[1:] != subjects[:-1]) | (known[1:] != known[:-1])
    )
    starts = np.flatnonzero(first)
    return _Pairs(classes[starts], subjects[starts], known[starts], np.add.reduceat(rows, starts))


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
        self._parts: list[_Pairs] = []
        self._pending = 0
        self._merged = 0

    def class_ids(self, key_columns: Sequence[pa.Array]) -> pa.Array:
        """Return the class id (int32) of each row, given its finest key columns (strings)."""
        parts = [pc.fill_null(column, NULL_MARK) for column in key_columns]
        joined = parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, _SEP_SCALAR)
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
        classes = np.asarray(class_ids.to_numpy(zero_copy_only=False), dtype=np.int32)
        if self.count_subjects:
            if subjects is None:
                raise ValueError("this counter counts subjects")
            known = np.asarray(pc.is_valid(subjects).to_numpy(zero_copy_only=False), np.bool_)
            hashes = int64s(pc.fill_null(subjects, 0))
        else:
            known = np.zeros(len(classes), dtype=np.bool_)
            hashes = np.zeros(len(classes), dtype=np.int64)
        part = _fold(_Pairs(classes, hashes, known, np.ones(len(classes), dtype=np.int64)))
        self._parts.append(part)
        self._pending += len(part.classes)
        # merge when the new pairs outgrow the merged ones: amortised, and memory stays
        # within a small multiple of the distinct (class, subject) pairs
        if self._pending > max(COMPACT_EVERY, self._merged):
            self._compact()

    def _compact(self) -> None:
        if len(self._parts) > 1:
            parts, self._parts = self._parts, []
            self._parts = [_fold(_Pairs.concat(parts))]
        self._merged = len(self._parts[0].classes) if self._parts else 0
        self._pending = 0

    def pairs(self) -> _Pairs:
        """Return all pairs as numpy arrays (distinct, sorted); unknown subjects are 0."""
        self._compact()
        return self._parts[0] if self._parts else _Pairs.concat([])

    def table(self) -> pa.Table:
        """Return all pairs: ``class``, ``subject`` (if counted) and ``rows``."""
        pairs = self.pairs()
        columns = {CLASS: pa.array(pairs.classes, pa.int32())}
        if self.count_subjects:
            columns[SUBJECT] = pa.array(pairs.subjects, pa.int64(), mask=~pairs.known)
        columns[ROWS] = pa.array(pairs.rows, pa.int64())
        return pa.table(columns)

    @property
    def total_rows(self) -> int:
        """The number of rows counted."""
        return int(pc.sum(self.table().column(ROWS)).as_py() or 0)


@dataclass(frozen=True)
class NodeResult:
    """The outcome of the disclosure check at one generalisation node.

    ``kept_people`` flags, per person number, who is released (None when rows are
    counted instead of people); ``people`` and ``suppressed_people`` count them.
    """

    node: Node
    levels: dict[str, str]
    k: int
    total_rows: int
    classes: int
    small_classes: frozenset[ClassKey]
    suppressed_rows: int
    smallest_kept_class: int | None
    people: int = 0
    suppressed_people: int = 0
    kept_people: Flags | None = None
    largest_risk: Fraction = Fraction(0)

    @property
    def share(self) -> Fraction:
        """The suppressed share: the larger of the share of people and the share of rows."""
        rows = Fraction(self.suppressed_rows, self.total_rows) if self.total_rows else Fraction(0)
        people = Fraction(self.suppressed_people, self.people) if self.people else Fraction(0)
        return max(rows, people)

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


@dataclass(frozen=True)
class PersonPairs:
    """The distinct (finest class, person) pairs of a release, with their row counts."""

    classes: npt.NDArray[np.int32]
    person: Int64s
    rows: Int64s
    people: int
    keys: list[ClassKey]
    rows_only: bool = False

    @classmethod
    def of(cls, counter: ClassCounter, people: People | None = None) -> PersonPairs:
        """Return the counter's pairs with anchors mapped to people; withdrawn people left out.

        Without ``people`` every distinct subject is a person. Pairs without a subject
        (no key) belong to nobody and are always suppressed. A counter of rows (not
        subjects) makes each row a person of its own.
        """
        # the counter's own arrays, not an Arrow table of copies: at two million rows
        # the round trip held some 40 MB more at once
        counted = counter.pairs()
        rows, classes = counted.rows, counted.classes
        if not counter.count_subjects:
            # each row its own person: expand pairs into one entry per row
            repeat = np.repeat(classes, rows)
            return cls(
                repeat,
                np.arange(len(repeat), dtype=np.int64),
                np.ones(len(repeat), dtype=np.int64),
                len(repeat),
                counter.keys,
                rows_only=True,
            )
        known, hashes = counted.known, counted.subjects
        del counted
        found = people or People.each_its_own(hashes[known])
        person = np.full(len(hashes), -1, dtype=np.int64)
        person[known] = found.of(hashes[known])
        if found.withdrawn is not None:
            person[(person >= 0) & found.withdrawn[np.maximum(person, 0)]] = -2
        return cls(classes, person, rows, found.count, counter.keys)

    def withdrawn_rows(self) -> int:
        """The rows of withdrawn people (left out before the check)."""
        return int(self.rows[self.person == -2].sum())


def evaluate(
    counter: ClassCounter | PersonPairs, lattice: Lattice, node: Node, k: int
) -> NodeResult:
    """Return the classes, small classes and suppressed people and rows of ``node``.

    A class of fewer than k people fails; each of its people is suppressed in every
    row and class, and the check repeats until every remaining class holds k people.
    """
    pairs = counter if isinstance(counter, PersonPairs) else PersonPairs.of(counter)
    positions = lattice.positions(node)
    node_ids: dict[ClassKey, int] = {}
    node_of_class = np.array(
        [node_ids.setdefault(tuple(key[p] for p in positions), len(node_ids)) for key in pairs.keys]
        or [0],
        dtype=np.int64,
    )
    node_keys = list(node_ids)
    counted = pairs.person != -2  # withdrawn people are out before the check
    cls, person, rows = (
        node_of_class[pairs.classes[counted]],
        pairs.person[counted],
        pairs.rows[counted],
    )
    total_rows = int(rows.sum())
    anonymous = person < 0
    width = max(pairs.people, 1)
    merged, where = np.unique(cls[~anonymous] * width + person[~anonymous], return_inverse=True)
    pair_rows = np.bincount(where, weights=rows[~anonymous], minlength=len(merged))
    pair_class, pair_person = merged // width, merged % width
    alive = np.zeros(pairs.people, dtype=np.bool_)
    alive[pair_person] = True
    present = int(alive.sum())
    slots = len(node_keys)
    small_ever = np.zeros(slots, dtype=np.bool_)
    while True:
        live = alive[pair_person]
        sizes = np.bincount(pair_class[live], minlength=slots)
        small = (sizes > 0) & (sizes < k)
        failing = live & small[pair_class]
        if not failing.any():
            break
        small_ever |= small
        alive[pair_person[failing]] = False
    live = alive[pair_person]
    kept_sizes = sizes[sizes > 0]
    suppressed_rows = round(pair_rows[~live].sum()) + int(rows[anonymous].sum())
    smallest = int(kept_sizes.min()) if len(kept_sizes) else None
    return NodeResult(
        node=node,
        levels=lattice.levels_of(node),
        k=k,
        total_rows=total_rows,
        classes=len(distinct(cls)),
        small_classes=frozenset(node_keys[i] for i in np.flatnonzero(small_ever)),
        suppressed_rows=suppressed_rows,
        smallest_kept_class=smallest,
        people=present,
        suppressed_people=present - int(alive.sum()),
        kept_people=None if pairs.rows_only else alive,
        largest_risk=Fraction(1, smallest) if smallest else Fraction(0),
    )


Judge = Callable[["PersonPairs", Lattice, Node, int], NodeResult]
"""Evaluates one generalisation node: (pairs, lattice, node, k) -> outcome."""


def _percent(share: Fraction) -> str:
    return f"{float(share) * 100:.2f}%"


def choose_levels(
    counter: ClassCounter | PersonPairs,
    lattice: Lattice,
    k: int,
    max_share: Decimal,
    fixed: Node | None = None,
    judge: Judge | None = None,
) -> NodeResult:
    """Return the node to release at: ``fixed`` if given, else the finest that passes.

    ``judge`` evaluates one node (default ``evaluate``: k people per class; the
    m-event attacker's check is ``events.evaluate_events``).

    Among passing nodes of the same total generalisation the one suppressing the
    smallest share (then fewest rows) wins. Raises DisclosureCheckFailedError, with the
    numbers, when no candidate keeps suppression within ``max_share``.
    """
    pairs = counter if isinstance(counter, PersonPairs) else PersonPairs.of(counter)
    judge_node = judge or evaluate
    candidates: Sequence[Node] = [fixed] if fixed is not None else lattice.nodes()
    best: NodeResult | None = None
    for height in sorted({sum(node) for node in candidates}):
        results = [judge_node(pairs, lattice, n, k) for n in candidates if sum(n) == height]
        passing = [r for r in results if r.passes(max_share)]
        if passing:
            return min(passing, key=lambda r: (r.share, r.suppressed_rows))
        for result in results:
            if best is None or (result.share, result.suppressed_rows) < (
                best.share,
                best.suppressed_rows,
            ):
                best = result
    assert best is not None
    which = (
        "the project's fixed generalisation"
        if fixed is not None
        else "the least suppressing generalisation the agreement allows"
    )
    raise DisclosureCheckFailedError(
        f"release refused: the disclosure check would suppress {best.suppressed_rows} of "
        f"{best.total_rows} rows and {best.suppressed_people} of {best.people} people "
        f"({_percent(best.share)}) in {len(best.small_classes)} of "
        f"{best.classes} classes smaller than k={k} people, even with {which} "
        f"({best.describe()}); the agreement allows at most {_percent(Fraction(max_share))}",
        suppressed_rows=best.suppressed_rows,
        total_rows=best.total_rows,
        suppressed_people=best.suppressed_people,
        people=best.people,
        small_classes=len(best.small_classes),
        classes=best.classes,
        k=k,
        max_suppressed_share=str(max_share),
        levels=best.levels,
    )
