"""The attacker who knows m > 1 of a person's events, and the release held to k against them.

The class sizes are counted here independently of the release code: the released Parquet
file is read with pyarrow, people are joined through their pseudonyms by a union-find of
this test's own, and every set of up to m events of a person (with the person's
quasi-identifiers) is counted in plain Python.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gateway.research.agreements import Agreement, EventCheck
from gateway.research.errors import DisclosureCheckFailedError
from gateway.research.events import itemsets, smallest_support, suppress_until_safe
from gateway.research.transforms import Transform
from tests.research.conftest import Releaser
from tests.research.test_attacks import _people_of


def _brute_itemsets(
    qi: list[int], event: list[int], person: list[int], m: int
) -> dict[tuple[int, tuple[int, ...]], set[int]]:
    history: dict[tuple[int, int], set[int]] = defaultdict(set)
    for q, e, p in zip(qi, event, person, strict=True):
        history[(p, q)].add(e)
    holders: dict[tuple[int, tuple[int, ...]], set[int]] = defaultdict(set)
    for (p, q), events in history.items():
        for size in range(1, m + 1):
            for chosen in itertools.combinations(sorted(events), size):
                holders[(q, chosen)].add(p)
    return holders


@pytest.mark.parametrize("m", [1, 2, 3])
def test_itemsets_match_a_brute_force_count(m: int) -> None:
    rng = np.random.default_rng(m)
    for _ in range(50):
        n = int(rng.integers(1, 80))
        qi, event, person = (rng.integers(0, top, n) for top in (3, 7, 12))
        sets, holders = itemsets(qi, event, person, m)
        brute = _brute_itemsets(qi.tolist(), event.tolist(), person.tolist(), m)
        assert len(set(zip(sets.tolist(), holders.tolist(), strict=True))) == len(sets)
        assert len(sets) == sum(len(people) for people in brute.values())
        support = np.bincount(sets)
        assert sorted(support[support > 0].tolist()) == sorted(len(p) for p in brute.values())
        smallest = smallest_support(sets, holders, 12)
        for who in set(person.tolist()):
            want = min(len(p) for p in brute.values() if who in p)
            assert smallest[who] == want


def test_suppression_repeats_until_every_itemset_holds_k() -> None:
    # persons 0-2 share the events (a, b); person 3 shares a with them but alone has c
    qi = np.zeros(9, np.int64)
    event = np.array([0, 1, 0, 1, 0, 1, 0, 2, 2], np.int64)
    person = np.array([0, 0, 1, 1, 2, 2, 3, 3, 3], np.int64)
    sets, holders = itemsets(qi, event, person, 2)
    alive = suppress_until_safe(sets, holders, np.ones(4, np.bool_), 3)
    assert alive.tolist() == [True, True, True, False]


def _m_events(
    agreement: Agreement, m: int, share: str, events: tuple[str, ...] = ("category", "week")
) -> Agreement:
    week = Transform.parse("generalise:timestamp:week|month|quarter|year")
    columns = tuple(
        c.model_copy(update={"transform": week}) if c.name == "week" else c
        for c in agreement.columns
    )
    disclosure = agreement.disclosure.model_copy(
        update={
            "event_check": EventCheck.ENFORCE,
            "known_events": m,
            "max_suppressed_share": Decimal(share),
            "event_quasi_identifiers": events,
        }
    )
    return agreement.model_copy(update={"columns": columns, "disclosure": disclosure})


def _smallest_itemset_per_person(
    table: pa.Table, person: pa.Array, qi: list[str], events: list[str], m: int
) -> dict[str, int]:
    """Per person: the fewest people holding one of their sets of up to m known events."""
    columns = {n: table.column(n).fill_null("").to_pylist() for n in [*qi, *events]}
    who = person.to_pylist()
    history: dict[tuple[str, tuple[str, ...]], set[tuple[str, ...]]] = defaultdict(set)
    for i, p in enumerate(who):
        history[(p, tuple(columns[n][i] for n in qi))].add(tuple(columns[n][i] for n in events))
    holders: dict[tuple[tuple[str, ...], tuple[tuple[str, ...], ...]], set[str]] = defaultdict(set)
    for (p, key), seen in history.items():
        for size in range(1, m + 1):
            for chosen in itertools.combinations(sorted(seen), size):
                holders[(key, chosen)].add(p)
    smallest: dict[str, int] = {}
    for people in holders.values():
        for p in people:
            smallest[p] = min(smallest.get(p, len(people)), len(people))
    return smallest


def test_two_known_events_single_nobody_out_when_enforced(
    releaser: Releaser, rows: list[dict[str, Any]], agreement: Agreement
) -> None:
    # the synthetic population is small: two known (category, week) events single out
    # almost everybody even at week=year (refused below); two known categories do not
    strict = _m_events(agreement, 2, "0.30", ("category",))
    opened = releaser.open(releaser.release(rows, "two-events", agreement=strict))
    table = pq.read_table(opened.folder / "data.parquet")
    person = _people_of(table)
    qi = list(agreement.disclosure.quasi_identifiers)
    k = agreement.disclosure.k
    smallest = _smallest_itemset_per_person(table, person, qi, ["category"], 2)
    assert min(smallest.values()) >= k
    assert any(len(s) > 1 for s in _histories(table, person, "category").values())
    risk = opened.release.manifest["disclosure"]["risk"]
    assert risk["event_attacker"]["known_events"] == 2
    assert risk["event_attacker"]["people_above_1_over_k"] == 0
    assert risk["event_attacker"]["risk_max"] == f"{1 / min(smallest.values()):.6f}"
    assert opened.release.manifest["disclosure"]["event_quasi_identifiers"] == ["category"]


def _histories(table: pa.Table, person: pa.Array, name: str) -> dict[str, set[str]]:
    seen: dict[str, set[str]] = defaultdict(set)
    for p, value in zip(person.to_pylist(), table.column(name).to_pylist(), strict=True):
        seen[p].add(value)
    return seen


def test_two_known_events_are_measured_when_only_reported(
    releaser: Releaser, rows: list[dict[str, Any]], agreement: Agreement
) -> None:
    # report is what an unlinked release may choose (a linked agreement is refused on
    # load); the measurement is the same either way, so the linked example measures it
    only_reported = {"known_events": 2, "event_check": EventCheck.REPORT}
    measured = agreement.model_copy(
        update={"disclosure": agreement.disclosure.model_copy(update=only_reported)}
    )
    opened = releaser.open(releaser.release(rows, "two-measured", agreement=measured))
    table = pq.read_table(opened.folder / "data.parquet")
    person = _people_of(table)
    qi = list(agreement.disclosure.quasi_identifiers)
    k = agreement.disclosure.k
    smallest = _smallest_itemset_per_person(table, person, qi, ["category", "week"], 2)
    event = opened.release.manifest["disclosure"]["risk"]["event_attacker"]
    assert event["people_above_1_over_k"] == sum(1 for n in smallest.values() if n < k) > 0
    assert event["risk_max"] == f"{1 / min(smallest.values()):.6f}"


def test_two_known_events_that_cannot_be_met_refuse_with_the_figures(
    releaser: Releaser, rows: list[dict[str, Any]], agreement: Agreement
) -> None:
    with pytest.raises(DisclosureCheckFailedError) as info:
        releaser.release(rows, "refused", agreement=_m_events(agreement, 2, "0.05"))
    assert "the agreement allows at most 5.00%" in info.value.detail
    assert info.value.extensions["suppressed_people"] > 0.05 * info.value.extensions["people"]
