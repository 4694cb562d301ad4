"""The m-event attacker: (k, k^m)-anonymity over linked histories, counted in people.

An attacker knows a person's quasi-identifiers and up to m of their events (each event
as released: its event attributes, e.g. category and week). What they can pick out is
an *itemset*: one quasi-identifier class and a set of 1..m distinct events that one
person has in it. A release is safe against them when every itemset held by anybody is
held by at least k people (Terrovitis et al.'s k^m-anonymity, with the
quasi-identifiers joined to every itemset). Checking the itemsets of at most m events
is enough: a smaller set is held by at least the people who hold any larger one.

``itemsets`` enumerates the (itemset, person) pairs with numpy (no Python loop over
people); ``suppress_until_safe`` drops the people in small itemsets until none is left,
as ``disclosure.evaluate`` does for classes; ``smallest_support`` measures each
person's smallest itemset (the risk report). Everything here is a pure function.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import numpy.typing as npt

from gateway.research.class_counter import node_parts
from gateway.research.disclosure import Lattice, Node, NodeResult, PersonPairs
from gateway.research.person_links import Int64s, distinct

Flags = npt.NDArray[np.bool_]


def _dense(columns: list[Int64s]) -> Int64s:
    """Return one dense id per distinct row of ``columns`` (equal-length int64 arrays)."""
    ids = columns[0]
    for column in columns[1:]:
        width = int(column.max(initial=0)) + 1
        limit = int(ids.max(initial=0)) + 1
        if limit * width >= 1 << 62:  # cannot overflow: re-densify first
            _, ids = np.unique(ids, return_inverse=True)
            limit = int(ids.max(initial=0)) + 1
        _, ids = np.unique(ids * width + column, return_inverse=True)
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    return np.asarray(ids, dtype=np.int64).reshape(-1)


def itemsets(qi: Int64s, event: Int64s, person: Int64s, m: int) -> tuple[Int64s, Int64s]:
    """Return the (itemset id, person) pairs of sets of 1..m distinct events per person.

    ``qi``, ``event`` and ``person`` are parallel (one entry per row or per distinct
    row class): the row's quasi-identifier class, its event class and its person (all
    non-negative). An itemset is a quasi-identifier class with a set of events one
    person has in it. Each pair appears once.
    """
    if m < 1:
        raise ValueError("m must be at least 1")
    if len(person) == 0:
        empty = np.empty(0, np.int64)
        return empty, empty
    group = _dense([person, qi])  # one group per (person, quasi-identifier class)
    _, first = np.unique(_dense([group, event]), return_index=True)
    g, e = group[first], event[first]
    order = np.lexsort((e, g))
    g, e = g[order], e[order]
    owner_person = np.empty(int(group.max()) + 1, dtype=np.int64)
    owner_person[group] = person
    owner_qi = np.empty(int(group.max()) + 1, dtype=np.int64)
    owner_qi[group] = qi
    # index of the end of each element's group (exclusive)
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    ends = np.r_[starts[1:], len(g)]
    size = ends - starts
    end_of = np.repeat(ends, size)
    out_sets: list[Int64s] = []
    out_people: list[Int64s] = []
    members = [np.arange(len(g), dtype=np.int64)]  # index tuples of the current size
    for size_now in range(1, m + 1):
        if size_now > 1:
            last = members[-1]
            more = end_of[last] - last - 1  # later elements of the same group
            keep = more > 0
            if not keep.any():
                break
            more = more[keep]
            members = [column[keep] for column in members]
            repeats = [np.repeat(column, more) for column in members]
            # offsets 1..more within each repeated block
            block = np.repeat(np.cumsum(more) - more, more)
            step = np.arange(int(more.sum()), dtype=np.int64) - block + 1
            members = [*repeats, repeats[-1] + step]
        groups = g[members[0]]
        key = _dense([owner_qi[groups], *(e[column] for column in members)])
        out_sets.append(key)
        out_people.append(owner_person[groups])
    # itemsets of different sizes must not share ids: offset each size's ids
    offset = 0
    for i, key in enumerate(out_sets):
        out_sets[i] = key + offset
        offset += int(key.max(initial=-1)) + 1
    return np.concatenate(out_sets), np.concatenate(out_people)


def suppress_until_safe(sets: Int64s, person: Int64s, alive: Flags, k: int) -> Flags:
    """Return ``alive`` with every person in an itemset held by fewer than k alive people out.

    Suppressing a person shrinks the other itemsets they held, so this repeats until
    every itemset of the alive people holds k of them.
    """
    alive = alive.copy()
    slots = int(sets.max(initial=-1)) + 1
    while True:
        live = alive[person]
        support = np.bincount(sets[live], minlength=slots)
        failing = live & (support[sets] < k)
        if not failing.any():
            return alive
        alive[person[failing]] = False


def smallest_support(sets: Int64s, person: Int64s, people: int) -> Int64s:
    """Return, per person number, the fewest people sharing one of their itemsets.

    People without itemsets get the largest int64.
    """
    slots = int(sets.max(initial=-1)) + 1
    support = np.bincount(sets, minlength=slots)
    smallest = np.full(people, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(smallest, person, support[sets])
    return smallest


def evaluate_events(
    pairs: PersonPairs, lattice: Lattice, node: Node, k: int, *, plain: int, m: int
) -> NodeResult:
    """Return the outcome at ``node`` against the attacker who knows m events.

    The first ``plain`` attributes of the lattice are the quasi-identifiers, the rest
    the event attributes. A person in any itemset (quasi-identifier class plus 1..m of
    their events) held by fewer than k people is suppressed in every row, repeatedly.
    """
    positions = lattice.positions(node)
    qi_of, _ = node_parts(pairs.keys, positions[:plain])
    event_of, _ = node_parts(pairs.keys, positions[plain:])
    full_of, full_keys = node_parts(pairs.keys, positions)
    counted = pairs.person != -2  # withdrawn people are out before the check
    classes, person, rows = pairs.classes[counted], pairs.person[counted], pairs.rows[counted]
    anonymous = person < 0
    named = ~anonymous
    qi, event, full = qi_of[classes[named]], event_of[classes[named]], full_of[classes[named]]
    who = person[named]
    alive = np.zeros(pairs.people, dtype=np.bool_)
    alive[who] = True
    present = int(alive.sum())
    sets, holders = itemsets(qi, event, who, m)
    kept = suppress_until_safe(sets, holders, alive, k)
    live = kept[who]
    width = max(pairs.people, 1)
    people_in = distinct(full[live] * width + who[live]) // width
    sizes = np.bincount(people_in, minlength=len(full_keys))
    held = sizes[sizes > 0]
    smallest = int(held.min()) if len(held) else None
    lost = np.unique(full[~live])
    return NodeResult(
        node=node,
        levels=lattice.levels_of(node),
        k=k,
        total_rows=int(rows.sum()),
        classes=len(np.unique(full)),
        small_count=len(lost),
        small_keys=lambda: frozenset(full_keys[i] for i in lost.tolist()),
        suppressed_rows=int(rows[named][~live].sum()) + int(rows[anonymous].sum()),
        smallest_kept_class=smallest,
        people=present,
        suppressed_people=present - int(kept.sum()),
        kept_people=kept,
        largest_risk=Fraction(1, smallest) if smallest else Fraction(0),
    )
