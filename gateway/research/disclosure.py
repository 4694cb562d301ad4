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


class ClassKeys(list[ClassKey]):
    """The finest class keys by class id, with each key part's value as a dense code
    (``codes()``: classes x parts), coded in Arrow as the keys are added, not per key."""

    def __init__(self) -> None:
        super().__init__()
        self._chunks: list[npt.NDArray[np.int64]] = []
        self._values: list[pa.Array] = []  # per part: the values seen, by code
        self._coded: npt.NDArray[np.int64] | None = None

    def add_codes(self, joined: pa.Array) -> None:
        """Code the parts of ``joined`` (keys joined by SEP, just appended to the list)."""
        split = pc.split_pattern(joined, SEP)
        chunk = []
        for part in range(pc.min(pc.list_value_length(split)).as_py() or 0):
            values = pc.list_element(split, part)
            if len(self._values) <= part:
                self._values.append(pa.array([], pa.string()))
            found = pc.index_in(values, value_set=self._values[part])
            new = pc.unique(values.filter(pc.is_null(found)))
            if len(new):
                self._values[part] = pa.concat_arrays([self._values[part], new])
                found = pc.index_in(values, value_set=self._values[part])
            chunk.append(np.asarray(found.to_numpy(), dtype=np.int64))
        self._chunks.append(np.stack(chunk, axis=1))
        self._coded = None

    def codes(self) -> npt.NDArray[np.int64]:
        """The (classes x parts) matrix of part codes."""
        if self._coded is None or len(self._coded) != len(self):
            coded = np.concatenate(self._chunks) if self._chunks else None
            # a key appended without its codes: coded from the keys themselves
            self._coded = (
                coded if coded is not None and len(coded) == len(self) else key_codes(self)
            )
        return self._coded


class ClassCounter:
    """Distinct (class, subject) pairs with their row counts, across batches.

    Classes are numbered as they are first seen (``keys[i]`` is the finest key of class
    ``i``: every level of every quasi-identifier); subjects are 64-bit hashes of the
    subject pseudonym (null: no subject key). Three integers per pair keep the memory
    far below that of the rows.
    """

    def __init__(self, count_subjects: bool) -> None:
        self.count_subjects = count_subjects
        self.keys = ClassKeys()
        self._known = pa.array([], pa.string())  # joined key of class i at position i
        self._parts: list[_Pairs] = []
        self._pending = 0
        self._merged = 0

    def class_ids(self, key_columns: Sequence[pa.Array]) -> pa.Array:
        """Return the class id (int32) of each row, given its finest key columns (strings)."""
        parts = [pc.fill_null(column, NULL_MARK) for column in key_columns]
        joined = parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, _SEP_SCALAR)
        encoded = joined.dictionary_encode()
        texts = encoded.dictionary
        # the batch's distinct keys looked up among the known ones in one hash join
        # (C), not one dict lookup per class per batch (Python)
        found = pc.index_in(texts, value_set=self._known).to_numpy(zero_copy_only=False)
        new = np.isnan(found) if found.dtype.kind == "f" else np.zeros(len(found), np.bool_)
        ids = np.where(new, 0, np.nan_to_num(found)).astype(np.int32)
        if new.any():
            fresh = texts.filter(pa.array(new))
            ids[new] = np.arange(len(self.keys), len(self.keys) + len(fresh), dtype=np.int32)
            self._known = pa.concat_arrays([self._known, fresh])
            self.keys.add_codes(fresh)
            self.keys.extend(
                tuple(None if p == NULL_MARK else p for p in text.split(SEP))
                for text in fresh.to_pylist()
            )
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


def key_codes(keys: Sequence[ClassKey]) -> npt.NDArray[np.int64]:
    """Return a (classes x key parts) matrix: each part's value as a dense code (null too)."""
    if not keys:
        return np.zeros((0, 0), dtype=np.int64)
    columns = [
        pc.dictionary_encode(pa.array(part, pa.string()), null_encoding="encode").indices
        for part in zip(*keys, strict=True)
    ]
    return np.stack([np.asarray(c.to_numpy(), dtype=np.int64) for c in columns], axis=1)


def group_keys(
    keys: Sequence[ClassKey], positions: Sequence[int]
) -> tuple[Int64s, npt.NDArray[np.intp]]:
    """Return, per finest class, the dense id of its key over ``positions`` (numbered in
    order of first appearance), and per id the first finest class that has it.

    ``[0]`` and no ids when there are no classes (an index array that is never used).
    """
    if not keys:
        return np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.intp)
    codes = _cached_codes(keys)[:, list(positions)]
    if codes.shape[1] == 0:
        return np.zeros(len(keys), dtype=np.int64), np.zeros(1, dtype=np.intp)
    # one integer per key when the mixed radix fits, else whole rows
    widths = codes.max(axis=0) + 1
    if float(np.prod(widths.astype(np.float64))) < 2.0**62:
        radix = np.cumprod(np.concatenate([[1], widths[:-1]])).astype(np.int64)
        _, first, inverse = np.unique(codes @ radix, return_index=True, return_inverse=True)
    else:
        _, first, inverse = np.unique(codes, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order), dtype=np.int64)
    return rank[np.asarray(inverse).reshape(-1)], first[order]


def node_parts(keys: Sequence[ClassKey], positions: Sequence[int]) -> tuple[Int64s, list[ClassKey]]:
    """Return, per finest class, its dense id over ``positions``, and the keys by id."""
    of, firsts = group_keys(keys, positions)
    return of, [tuple(keys[i][p] for p in positions) for i in firsts]


_CODES: dict[int, tuple[Sequence[ClassKey], int, npt.NDArray[np.int64]]] = {}


def _cached_codes(keys: Sequence[ClassKey]) -> npt.NDArray[np.int64]:
    """``key_codes(keys)``, kept for the last key list (every node of a release reuses
    it; class keys are only ever appended): a list that grew since is coded again."""
    if isinstance(keys, ClassKeys):
        return keys.codes()
    held = _CODES.get(id(keys))
    if held is not None and held[0] is keys and held[1] == len(keys):
        return held[2]
    codes = key_codes(keys)
    _CODES.clear()  # one list at a time: a release's, not every release's since start
    _CODES[id(keys)] = (keys, len(keys), codes)
    return codes


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
    node_of_class, firsts = group_keys(pairs.keys, positions)
    slots = len(firsts)
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
        small_classes=frozenset(
            tuple(pairs.keys[firsts[i]][p] for p in positions) for i in np.flatnonzero(small_ever)
        ),
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
