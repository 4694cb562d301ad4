"""Person linking (``PersonLinks``) gives the same people as a naive union-find.

Rows sharing ANY pseudonym value are one person, however long the chain: A shares a
phone line with B, B an account with C, so A, B and C are one person, even when the
rows arrive in different batches and the shared values sit in different columns.
"""

from __future__ import annotations

import random

import pyarrow as pa

from gateway.research.person_links import PersonLinks

Row = tuple[str | None, ...]


def _naive_people(rows: list[Row]) -> list[frozenset[int]]:
    """Group row numbers into people: a plain union-find over (column, value) keys."""
    parent: dict[object, object] = {}

    def find(x: object) -> object:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, row in enumerate(rows):
        for column, value in enumerate(row):
            if value is not None:
                parent[find(("row", i))] = find((column, value))
    groups: dict[object, set[int]] = {}
    for i, row in enumerate(rows):
        if any(v is not None for v in row):
            groups.setdefault(find(("row", i)), set()).add(i)
    return sorted((frozenset(g) for g in groups.values()), key=min)


def _linked_people(
    rows: list[Row], batch: int, compact_every: int = 1 << 18
) -> list[frozenset[int]]:
    """Group row numbers into people with ``PersonLinks``, fed ``batch`` rows at a time.

    A small ``compact_every`` folds the links into components between batches.
    """
    links = PersonLinks(compact_every)
    width = len(rows[0])
    anchors: list[int | None] = []
    for start in range(0, len(rows), batch):
        part = rows[start : start + batch]
        # a value hashes per column, as the pipeline salts each pseudonym by its column
        columns = [
            pa.array([None if r[c] is None else hash((c, r[c])) for r in part], pa.int64())
            for c in range(width)
        ]
        anchors += links.add(columns).to_pylist()
    people = links.resolve()
    known = [i for i, a in enumerate(anchors) if a is not None]
    person = people.of(pa.array([anchors[i] for i in known], pa.int64()).to_numpy())
    groups: dict[int, set[int]] = {}
    for i, p in zip(known, person.tolist(), strict=True):
        groups.setdefault(p, set()).add(i)
    assert people.count == len(groups)
    return sorted((frozenset(g) for g in groups.values()), key=min)


def test_a_chain_through_different_columns_is_one_person() -> None:
    # columns: bsn, name+birth date, account, phone line
    rows: list[Row] = [
        ("b-a", None, None, "line-1"),  # A
        (None, "nb-b", "acc-1", "line-1"),  # B: A's phone line
        (None, None, "acc-1", None),  # C: B's account, nothing else
        ("b-d", "nb-d", None, None),  # D: nobody else
        (None, "nb-b", None, None),  # B again by name only, much later
        (None, None, None, None),  # no key at all: nobody
    ]
    for batch, compact_every in ((1, 1 << 18), (1, 0), (2, 3), (6, 1 << 18)):
        people = _linked_people(rows, batch, compact_every)
        assert people == _naive_people(rows)
        assert frozenset({0, 1, 2, 4}) in people and frozenset({3}) in people
        assert not any(5 in p for p in people)


def test_random_populations_with_long_chains_match_a_naive_union_find() -> None:
    rng = random.Random(14)
    for _ in range(30):
        size = rng.randint(20, 400)
        pool = rng.randint(3, size)  # few values per column: long chains across rows
        rows: list[Row] = [
            tuple(None if rng.random() < 0.6 else f"v{rng.randrange(pool)}" for _column in range(4))
            for _row in range(size)
        ]
        expected = _naive_people(rows)
        for batch in (1, 7, size):
            assert _linked_people(rows, batch) == expected
            # folded into components between batches: the same people
            assert _linked_people(rows, batch, compact_every=rng.choice((0, 5, 50))) == expected
