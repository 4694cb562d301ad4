"""Disclosure control: k-anonymity over the quasi-identifiers, counted in people, not rows.

The unit of protection is the person, counted as an attacker would count them: rows that
share ANY pseudonym value (person, name and birth date, account, line, respondent) are
one person (``person_links.PersonLinks``: union-find over the pseudonyms). The first pass of
an extract feeds each batch's quasi-identifier values (at every level the agreement
allows) and each row's anchor (a hash of its first pseudonym) into a ``ClassCounter``,
which keeps one row per distinct (class, anchor) pair with its row count: bounded by the
number of people, not of rows. ``PersonPairs`` maps anchors to people, and ``evaluate``
checks one node of the generalisation lattice (one level per quasi-identifier): a class
is kept when it holds at least k distinct people; a person in any smaller class is
suppressed in every row, which may shrink other classes, so the check repeats until
nothing changes. ``level_choice.choose_levels`` walks the lattice and returns the finest
node whose suppression (of people and of rows) stays within the agreed share, or the
node fixed by the project's generalisation state.
A row without any subject key is never counted as a person: the pipeline leaves it out.
Everything here is a pure function of its input.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from functools import cached_property, partial
from operator import itemgetter

import numpy as np
import numpy.typing as npt

from gateway.research.class_counter import (
    ClassCounter,
    ClassKey,
    ClassKeys,
    cached_codes,
    group_keys,
)
from gateway.research.person_links import Flags, Int64s, People, distinct, distinct_sorting

Node = tuple[int, ...]


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
    small_count: int
    """How many classes held fewer than k people (``small_classes`` names them)."""
    suppressed_rows: int
    smallest_kept_class: int | None
    people: int = 0
    suppressed_people: int = 0
    kept_people: Flags | None = None
    largest_risk: Fraction = Fraction(0)
    small_keys: Callable[[], frozenset[ClassKey]] = field(
        default=frozenset, repr=False, compare=False
    )
    """Builds ``small_classes``: only the chosen node's are ever needed, not every node's."""

    @cached_property
    def small_classes(self) -> frozenset[ClassKey]:
        """The keys of the classes that held fewer than k people, at this node's levels."""
        return self.small_keys()

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
class ClassRows:
    """Per finest class: its counted rows, and those of them without a subject key."""

    counted: Int64s
    anonymous: Int64s | None
    """None when every counted row has a subject key."""
    total: int

    @classmethod
    def of(cls, pairs: PersonPairs) -> ClassRows:
        """Sum ``pairs``' rows per finest class: all but the withdrawn (-2), and those of
        nobody (-1)."""
        slots = len(pairs.keys)
        person, rows = pairs.person, pairs.rows
        counted = np.zeros(slots, dtype=np.int64)
        np.add.at(counted, pairs.classes, np.where(person == -2, 0, rows))
        anonymous = None
        nobody = person == -1
        if nobody.any():
            anonymous = np.zeros(slots, dtype=np.int64)
            np.add.at(anonymous, pairs.classes[nobody], rows[nobody])
        return cls(counted, anonymous, int(counted.sum()))


@dataclass(frozen=True)
class PersonPairs:
    """The distinct (finest class, person) pairs of a release, with their row counts."""

    classes: npt.NDArray[np.int32]
    person: Int64s
    rows: Int64s
    people: int
    keys: Sequence[ClassKey]
    rows_only: bool = False
    _grouped: dict[tuple[int, ...], tuple[Int64s, npt.NDArray[np.intp]]] = field(
        default_factory=dict, repr=False, compare=False
    )
    _class_rows: list[ClassRows] = field(
        default_factory=list, init=False, repr=False, compare=False
    )
    """Not copied by ``dataclasses.replace``: it depends on ``person`` (the withdrawn)."""

    def grouped(self, positions: Sequence[int]) -> tuple[Int64s, npt.NDArray[np.intp]]:
        """``node_groups(self.keys, positions)``, kept for the last node asked about (the
        bound and the check of one node group alike)."""
        at = tuple(positions)
        found = self._grouped.get(at)
        if found is None:
            found = node_groups(self.keys, at)
            self._grouped.clear()
            self._grouped[at] = found
        return found

    def class_rows(self) -> ClassRows:
        """The counted rows of each finest class (withdrawn people left out), computed once."""
        if not self._class_rows:
            self._class_rows.append(ClassRows.of(self))
        return self._class_rows[0]

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


_DENSE = 1 << 22
"""Node keys packed below this are grouped by a flag per possible key, not by sorting."""


def node_groups(
    keys: Sequence[ClassKey], positions: Sequence[int]
) -> tuple[Int64s, npt.NDArray[np.intp]]:
    """Return, per finest class, the id of its class at a node (its key over
    ``positions``), and per id one finest class that has it.

    The same classes as ``group_keys``, numbered in another order, which the check does
    not depend on: where the node's keys pack into fewer than ``_DENSE`` integers (most
    nodes coarser than the finest) no sort is needed at all.
    """
    if not len(keys) or not len(positions):
        return group_keys(keys, positions)
    codes = cached_codes(keys)
    # column by column over views of the codes: no copy of the node's columns, and no
    # int64 copy of them for a matrix product
    columns = [codes[:, p] for p in positions]
    widths = np.array([int(c.max()) + 1 for c in columns], dtype=np.int64)
    size = float(np.prod(widths.astype(np.float64)))
    if size >= 2.0**62:
        return group_keys(keys, positions)
    radix = np.cumprod(np.concatenate([[1], widths[:-1]])).astype(np.int64)
    packed = columns[0].astype(np.int64)
    term = np.empty_like(packed)
    for column, factor in zip(columns[1:], radix[1:].tolist(), strict=True):
        np.multiply(column, factor, out=term, dtype=np.int64)
        packed += term
    del term
    if size < _DENSE:
        present = np.zeros(int(size), dtype=np.bool_)
        present[packed] = True
        ids = (np.cumsum(present) - 1)[packed]
    else:
        ids = np.unique(packed, return_inverse=True)[1].reshape(-1)
    firsts = np.empty(int(ids.max()) + 1, dtype=np.intp)
    firsts[ids] = np.arange(len(ids), dtype=np.intp)
    return ids.astype(np.int64), firsts


def _merge_pairs(node_of_class: Int64s, pairs: PersonPairs, width: int) -> Int64s:
    """Return the distinct (node class, person) pairs of the pairs with a person, packed as
    class * width + person (sorted).

    Packed a part of the pairs at a time into one array, then one in-place sort (no
    argsort, no rows carried along: the check sums the suppressed rows over the finest
    pairs instead).
    """
    person = pairs.person
    key = np.empty(int(np.count_nonzero(person >= 0)), dtype=np.int64)
    at = 0
    for start in range(0, len(person), _CHUNK):
        who = person[start : start + _CHUNK]
        named = who >= 0  # neither withdrawn (-2) nor without a subject key (-1)
        part = node_of_class[pairs.classes[start : start + _CHUNK][named]]
        part *= width
        part += who[named]
        key[at : at + len(part)] = part
        at += len(part)
    return distinct_sorting(key)


_CHUNK = 1 << 18
"""Pairs looked at a time where a pass over every pair needs per-pair temporaries."""


def _rows_of_the_suppressed(pairs: PersonPairs, alive: Flags) -> int:
    """Return the rows of the pairs whose person is not ``alive`` (pairs with a person).

    A part of the pairs at a time: the temporaries stay small whatever their number.
    """
    dead = ~alive
    total = 0
    for start in range(0, len(pairs.person), _CHUNK):
        person = pairs.person[start : start + _CHUNK]
        named = person >= 0
        if not named.any():
            continue
        lost = dead[np.where(named, person, 0)]
        lost &= named
        total += int(pairs.rows[start : start + _CHUNK][lost].sum())
    return total


def _class_runs(packed: Int64s, width: int) -> Int64s:
    """Return where each class begins in sorted packed pairs (class * width + person).

    A part of the pairs at a time, each compared with the pair before it.
    """
    starts = [np.empty(0, np.int64)]
    for start in range(0, len(packed), _CHUNK):
        part = packed[max(start - 1, 0) : start + _CHUNK] // width
        begins = np.flatnonzero(part[1:] != part[:-1]) + 1
        if start == 0:
            starts.append(np.zeros(1, np.int64))
        else:
            begins -= 1
        starts.append(begins + start)
    return np.concatenate(starts)


def evaluate(
    counter: ClassCounter | PersonPairs, lattice: Lattice, node: Node, k: int
) -> NodeResult:
    """Return the classes, small classes and suppressed people and rows of ``node``.

    A class of fewer than k people fails; each of its people is suppressed in every
    row and class, and the check repeats until every remaining class holds k people.
    """
    pairs = counter if isinstance(counter, PersonPairs) else PersonPairs.of(counter)
    positions = lattice.positions(node)
    node_of_class, firsts = pairs.grouped(positions)
    slots = len(firsts)
    classes, person, rows = pairs.classes, pairs.person, pairs.rows
    # masks over the pairs' own arrays, not filtered copies of them
    withdrawn = person == -2  # out before the check
    anonymous = (person < 0) & ~withdrawn  # no subject key: always suppressed
    some_withdrawn = bool(withdrawn.any())
    total_rows = int(rows.sum()) - (int(rows[withdrawn].sum()) if some_withdrawn else 0)
    anonymous_rows = int(rows[anonymous].sum())
    seen = np.zeros(len(node_of_class), dtype=np.bool_)
    seen[classes[~withdrawn] if some_withdrawn else classes] = True
    node_classes = len(distinct(node_of_class[np.flatnonzero(seen)]))
    del withdrawn, anonymous, seen
    width = max(pairs.people, 1)
    pair_person = _merge_pairs(node_of_class, pairs, width)
    # the pairs are sorted by class: each class is a run, so a class per run, not per pair
    runs = _class_runs(pair_person, width)
    run_class = pair_person[runs] // width
    run_length = np.diff(np.r_[runs, len(pair_person)])
    pair_person %= width  # in place: the packed pairs become their people
    alive = np.zeros(pairs.people, dtype=np.bool_)
    alive[pair_person] = True
    present = int(alive.sum())
    small_ever = np.zeros(slots, dtype=np.bool_)
    while True:
        live = alive[pair_person]
        sizes = np.zeros(slots, dtype=np.int64)
        if len(runs):
            sizes[run_class] = np.add.reduceat(live, runs, dtype=np.int64)
        small = (sizes > 0) & (sizes < k)
        failing = live & np.repeat(small[run_class], run_length)
        if not failing.any():
            break
        small_ever |= small
        alive[pair_person[failing]] = False
    del pair_person, runs, run_class, run_length
    kept_sizes = sizes[sizes > 0]
    # a merged pair's rows are those of its finest pairs: summed over them directly
    suppressed_rows = _rows_of_the_suppressed(pairs, alive) + anonymous_rows
    smallest = int(kept_sizes.min()) if len(kept_sizes) else None
    return NodeResult(
        node=node,
        levels=lattice.levels_of(node),
        k=k,
        total_rows=total_rows,
        classes=node_classes,
        small_count=int(small_ever.sum()),
        small_keys=partial(keys_at, pairs.keys, firsts[small_ever], positions),
        suppressed_rows=suppressed_rows,
        smallest_kept_class=smallest,
        people=present,
        suppressed_people=present - int(alive.sum()),
        kept_people=None if pairs.rows_only else alive,
        largest_risk=Fraction(1, smallest) if smallest else Fraction(0),
    )


def keys_at(
    keys: Sequence[ClassKey], chosen: Sequence[int] | Int64s, positions: Sequence[int]
) -> frozenset[ClassKey]:
    """Return the keys over ``positions`` of the finest classes ``chosen`` (indices into ``keys``).

    Class keys held as codes are cut to ``positions`` and made distinct in numpy before
    any tuple is built; a plain list takes one ``itemgetter`` call per class.
    """
    if isinstance(keys, ClassKeys):
        return frozenset(keys.decode(np.asarray(chosen, dtype=np.int64), positions, unique=True))
    chosen = [int(i) for i in chosen]
    if len(positions) == 1:
        (at,) = positions
        return frozenset((keys[i][at],) for i in chosen)
    if not positions:
        return frozenset(() for _ in chosen)
    get = itemgetter(*positions)
    return frozenset(get(keys[i]) for i in chosen)
