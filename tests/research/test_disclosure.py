"""k-anonymity: classes count people (or rows), small classes are suppressed, the lattice
search takes the finest generalisation within the agreed suppression, or refuses."""

from __future__ import annotations

import random
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from gateway.research import class_counter, disclosure, person_links
from gateway.research.class_counter import ClassCounter, ClassKey, group_keys
from gateway.research.disclosure import (
    Lattice,
    PersonPairs,
    evaluate,
    keys_at,
    node_groups,
)
from gateway.research.errors import DisclosureCheckFailedError
from gateway.research.level_choice import choose_levels, row_bound

Row = tuple[str, str, str, str, str | None]
LATTICE = Lattice(("born", "area"), (("year", "age_band"), ("pc4", "municipality")))


def _add(counter: ClassCounter, rows: list[Row]) -> None:
    keys = [pa.array([r[i] for r in rows], pa.string()) for i in range(4)]
    subjects = pa.array([None if r[4] is None else hash(r[4]) for r in rows], pa.int64())
    counter.add(counter.class_ids(keys), subjects if counter.count_subjects else None)


def _people(
    count: int, year: str, band: str, pc4: str, town: str, tag: str
) -> list[tuple[str, str, str, str, str | None]]:
    return [(year, band, pc4, town, f"{tag}{i}") for i in range(count)]


def test_classes_count_people_not_rows() -> None:
    one_person_many_rows: list[Row] = [("2008", "16-17", "9203", "Smallingerland", "p1")] * 6
    counter = ClassCounter(count_subjects=True)
    _add(counter, one_person_many_rows)
    result = evaluate(counter, LATTICE, (0, 0), k=5)
    assert result.small_classes == {("2008", "9203")} and result.suppressed_rows == 6
    rows_only = ClassCounter(count_subjects=False)
    _add(rows_only, one_person_many_rows)
    assert evaluate(rows_only, LATTICE, (0, 0), k=5).suppressed_rows == 0


def test_rows_without_a_subject_key_are_never_counted_as_people() -> None:
    # before: four nameless rows counted as four people and made a "class of 5" with p1
    rows: list[Row] = [("2008", "16-17", "9203", "Smallingerland", None)] * 4
    rows += [("2008", "16-17", "9203", "Smallingerland", "p1")] * 3
    counter = ClassCounter(count_subjects=True)
    _add(counter, rows)
    result = evaluate(counter, LATTICE, (0, 0), k=2)
    assert result.people == 1 and result.suppressed_rows == 7


def test_counts_add_up_across_batches_and_compaction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(class_counter, "COMPACT_EVERY", 3)
    counter = ClassCounter(count_subjects=True)
    for tag in "abc":
        _add(counter, _people(2, "2008", "16-17", "9203", "Smallingerland", tag))
        _add(counter, _people(2, "2008", "16-17", "9203", "Smallingerland", "same"))
    assert counter.total_rows == 12
    result = evaluate(counter, LATTICE, (0, 0), k=8)
    assert result.classes == 1 and result.smallest_kept_class == 8


def _counter() -> ClassCounter:
    counter = ClassCounter(count_subjects=True)
    rows = _people(10, "2008", "16-17", "9203", "Smallingerland", "a")
    rows += _people(10, "2009", "16-17", "9203", "Smallingerland", "b")
    rows += _people(3, "2008", "16-17", "9204", "Smallingerland", "c")  # small pc4 class
    rows += _people(2, "2010", "16-17", "9203", "Smallingerland", "d")  # small year class
    _add(counter, rows)
    return counter


def test_the_finest_passing_node_is_chosen() -> None:
    counter = _counter()
    exact = choose_levels(counter, LATTICE, 5, Decimal("0.25"))
    assert exact.levels == {"born": "year", "area": "pc4"}
    assert exact.suppressed_rows == 5 and exact.small_classes == {
        ("2008", "9204"),
        ("2010", "9203"),
    }
    # one step coarser: born=age_band suppresses 3 (12%), area=municipality only 2 (8%)
    coarser = choose_levels(counter, LATTICE, 5, Decimal("0.15"))
    assert coarser.levels == {"born": "year", "area": "municipality"}
    assert coarser.suppressed_rows == 2
    coarsest = choose_levels(counter, LATTICE, 5, Decimal("0.05"))
    assert coarsest.levels == {"born": "age_band", "area": "municipality"}
    assert coarsest.suppressed_rows == 0


def test_a_fixed_node_is_kept_even_if_another_would_pass() -> None:
    counter = _counter()
    fixed = LATTICE.node_of({"born": "year", "area": "pc4"})
    result = choose_levels(counter, LATTICE, 5, Decimal("0.25"), fixed=fixed)
    assert result.levels == {"born": "year", "area": "pc4"}
    with pytest.raises(DisclosureCheckFailedError, match="project's fixed generalisation"):
        choose_levels(counter, LATTICE, 5, Decimal("0.05"), fixed=fixed)


def test_refusal_gives_the_numbers() -> None:
    with pytest.raises(DisclosureCheckFailedError) as info:
        choose_levels(_counter(), LATTICE, 50, Decimal("0.10"))
    error = info.value
    assert "would suppress 25 of 25 rows and 25 of 25 people (100.00%)" in error.detail
    assert "k=50" in error.detail and "at most 10.00%" in error.detail
    assert error.extensions["suppressed_rows"] == 25 and error.extensions["total_rows"] == 25
    assert error.code == "disclosure-check-failed"


def test_an_empty_release_passes_at_the_finest_node() -> None:
    counter = ClassCounter(count_subjects=True)
    result = choose_levels(counter, LATTICE, 5, Decimal("0"))
    assert result.node == (0, 0) and result.total_rows == 0 and result.share == 0


def test_nodes_are_ordered_by_total_generalisation() -> None:
    assert LATTICE.nodes() == [(0, 0), (0, 1), (1, 0), (1, 1)]
    with pytest.raises(ValueError, match="not in tuple"):
        LATTICE.node_of({"born": "decade", "area": "pc4"})


def _hashes(values: list[str | None]) -> pa.Array:
    return pa.array([None if v is None else hash(v) for v in values], pa.int64())


def test_rows_sharing_any_pseudonym_are_one_person_across_batches() -> None:
    links = person_links.PersonLinks()
    # person via bsn only, via account only, and a row holding both: one person
    links.add([_hashes(["b1", None, "b1", "b9"]), _hashes([None, "a1", "a1", None])])
    # a later batch: a new spelling (no bsn) linked through the same account
    anchors = links.add([_hashes([None]), _hashes(["a1"])])
    assert anchors.to_pylist() == [hash("a1")]
    people = links.resolve()
    assert people.count == 2
    b1, a1, b9 = people.of(pa.array([hash("b1"), hash("a1"), hash("b9")]).to_numpy())
    assert b1 == a1 != b9


def test_a_withdrawn_person_leaves_with_every_linked_pseudonym() -> None:
    links = person_links.PersonLinks()
    anchors = links.add([_hashes(["b1", "b2", None]), _hashes(["n1", "n2", "n1"])])
    links.withdraw(anchors.filter(pa.array([False, False, True])))  # known by name only
    people = links.resolve()
    assert people.withdrawn is not None
    assert people.withdrawn[people.of(pa.array([hash("b1")]).to_numpy())].tolist() == [True]
    assert people.withdrawn[people.of(pa.array([hash("b2")]).to_numpy())].tolist() == [False]


def test_a_person_failing_one_class_is_suppressed_in_every_class() -> None:
    rows = _people(5, "2008", "16-17", "9203", "Smallingerland", "p")
    rows.append(("2008", "16-17", "9204", "Smallingerland", "p0"))  # p0 alone in 9204
    counter = ClassCounter(count_subjects=True)
    _add(counter, rows)
    result = evaluate(counter, LATTICE, (0, 0), k=5)
    # p0 goes in every row; then 9203 holds four people and goes too
    assert result.suppressed_people == 5 and result.suppressed_rows == 6
    assert result.kept_people is not None and not result.kept_people.any()
    assert evaluate(counter, LATTICE, (0, 1), k=5).suppressed_rows == 0  # municipality: 5


@pytest.mark.parametrize("width", [0, 1, 2, 4])
def test_keys_at_gives_the_keys_a_generator_per_class_gave(width: int) -> None:
    draw = random.Random(width)
    for _ in range(20):
        parts = draw.randint(max(width, 1), 6)
        keys: list[ClassKey] = [
            tuple(draw.choice([None, "a", "b", "c", "0-11"]) for _ in range(parts))
            for _ in range(draw.randint(0, 60))
        ]
        positions = draw.sample(range(parts), width)
        chosen = sorted(draw.sample(range(len(keys)), draw.randint(0, len(keys))))
        expected = frozenset(tuple(keys[i][p] for p in positions) for i in chosen)
        assert keys_at(keys, chosen, positions) == expected


def _evaluate_before(pairs: PersonPairs, node: tuple[int, ...], k: int) -> tuple[Any, ...]:
    """The check as it was computed before its memory was trimmed: the reference."""
    positions = LATTICE.positions(node)
    node_of_class, firsts = class_counter.group_keys(pairs.keys, positions)
    counted = pairs.person != -2
    cls, person, rows = (
        node_of_class[pairs.classes[counted]],
        pairs.person[counted],
        pairs.rows[counted],
    )
    anonymous = person < 0
    width = max(pairs.people, 1)
    merged, where = np.unique(cls[~anonymous] * width + person[~anonymous], return_inverse=True)
    pair_rows = np.bincount(where, weights=rows[~anonymous], minlength=len(merged))
    pair_class, pair_person = merged // width, merged % width
    alive = np.zeros(pairs.people, dtype=np.bool_)
    alive[pair_person] = True
    present = int(alive.sum())
    small_ever = np.zeros(len(firsts), dtype=np.bool_)
    while True:
        live = alive[pair_person]
        sizes = np.bincount(pair_class[live], minlength=len(firsts))
        small = (sizes > 0) & (sizes < k)
        failing = live & small[pair_class]
        if not failing.any():
            break
        small_ever |= small
        alive[pair_person[failing]] = False
    live = alive[pair_person]
    kept = sizes[sizes > 0]
    return (
        int(rows.sum()),
        len(person_links.distinct(cls)),
        round(pair_rows[~live].sum()) + int(rows[anonymous].sum()),
        int(kept.min()) if len(kept) else None,
        present,
        present - int(alive.sum()),
        alive.tolist(),
        frozenset(
            tuple(pairs.keys[firsts[i]][p] for p in positions) for i in np.flatnonzero(small_ever)
        ),
    )


def _random_pairs(
    draw: np.random.Generator,
    trial: int,
    *,
    classes: int,
    areas: int,
    size: tuple[int, int],
    people: int,
    odd: float = 0.1,
    rows: int = 9,
) -> PersonPairs:
    """Random pairs over ``LATTICE``'s keys; some trials with rows of nobody or withdrawn."""
    count = int(draw.integers(1, classes))
    keys: list[ClassKey] = [
        (
            f"y{draw.integers(3)}",
            f"b{draw.integers(2)}",
            f"p{draw.integers(areas)}",
            f"m{draw.integers(3)}",
        )
        for _ in range(count)
    ]
    length, persons = int(draw.integers(*size)), int(draw.integers(1, people))
    person = draw.integers(0, persons, length)
    if trial % 3:
        person[draw.random(length) < odd] = -1  # no subject key
    if trial % 2:
        person[draw.random(length) < odd] = -2  # withdrawn
    return PersonPairs(
        draw.integers(0, count, length).astype(np.int32),
        person.astype(np.int64),
        draw.integers(1, rows, length).astype(np.int64),
        persons,
        keys,
    )


@pytest.mark.parametrize("chunk", [None, 7])
def test_the_check_counts_as_it_did_before_its_memory_was_trimmed(
    chunk: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if chunk is not None:  # the suppressed rows summed a few pairs at a time
        monkeypatch.setattr(disclosure, "_CHUNK", chunk)
    draw = np.random.default_rng(17)
    for trial in range(40):
        pairs = _random_pairs(draw, trial, classes=30, areas=6, size=(0, 400), people=80)
        for node in LATTICE.nodes():
            k = int(draw.integers(1, 6))
            got = evaluate(pairs, LATTICE, node, k)
            assert (
                got.total_rows,
                got.classes,
                got.suppressed_rows,
                got.smallest_kept_class,
                got.people,
                got.suppressed_people,
                None if got.kept_people is None else got.kept_people.tolist(),
                got.small_classes,
            ) == _evaluate_before(pairs, node, k)


def test_skipping_nodes_whose_small_row_classes_exceed_the_share_chooses_as_judging_all() -> None:
    # ``judge=evaluate`` judges every node; the default skips nodes that cannot pass
    # (and judges them after all if the release is refused): same node, same figures
    draw = np.random.default_rng(29)
    refused = skipped = 0
    for trial in range(60):
        pairs = _random_pairs(
            draw, trial, classes=40, areas=8, size=(1, 300), people=90, odd=0.05, rows=4
        )
        k = int(draw.integers(2, 6))
        share = Decimal(str(round(float(draw.choice([0.0, 0.05, 0.2, 0.5])), 2)))
        outcomes: list[tuple[Any, ...]] = []
        for judge in (None, evaluate):
            try:
                got = choose_levels(pairs, LATTICE, k, share, judge=judge)
                outcomes.append(("chose", got.node, got.share, got.suppressed_rows))
            except DisclosureCheckFailedError as error:
                outcomes.append(("refused", str(error), error.extensions))
        assert outcomes[0] == outcomes[1], trial
        refused += outcomes[0][0] == "refused"
        skipped += any(row_bound(pairs, LATTICE, n, k) > share for n in LATTICE.nodes())
    assert 0 < refused < 60 and skipped > 10  # every way is exercised


@pytest.mark.parametrize("width", [3, 40, 5_000])
def test_node_groups_are_the_classes_group_keys_makes(width: int) -> None:
    # the check's own grouping numbers classes in another order (no sort where the keys
    # pack densely); the classes themselves, and a finest class of each, are the same
    draw = np.random.default_rng(width)
    counter = ClassCounter(count_subjects=False)
    for _ in range(3):
        columns = [
            pa.array([f"v{v}" for v in draw.integers(0, width, 500)], pa.string()) for _ in range(6)
        ]
        counter.class_ids(columns)
    keys = counter.keys
    for positions in ([0], [1, 3], [0, 2, 4, 5], list(range(6)), []):
        ids, firsts = node_groups(keys, positions)
        old_ids, old_firsts = group_keys(keys, positions)
        assert len(firsts) == len(old_firsts) and ids.dtype == np.int64
        pairs = {(int(a), int(b)) for a, b in zip(ids, old_ids, strict=True)}
        assert len(pairs) == len(set(ids.tolist())) == len(set(old_ids.tolist()))
        for node_id, finest in enumerate(firsts.tolist()):
            member = int(np.flatnonzero(ids == node_id)[0])
            assert [keys[finest][p] for p in positions] == [keys[member][p] for p in positions]


def _row_bound_before(pairs: PersonPairs, node: tuple[int, ...], k: int) -> Fraction:
    """``row_bound`` as it was computed before it summed rows per finest class: the reference."""
    node_of_class, firsts = pairs.grouped(LATTICE.positions(node))
    counted = pairs.person != -2
    classes, rows = pairs.classes[counted], pairs.rows[counted]
    total = int(rows.sum())
    if total == 0:
        return Fraction(0)
    slot = node_of_class[classes]
    per_class = np.bincount(slot, weights=rows, minlength=len(firsts))
    small_rows = rows[(per_class < k)[slot] | (pairs.person[counted] < 0)]
    return Fraction(int(small_rows.sum()), total)


def test_the_row_bound_is_what_it_was_before_it_summed_per_finest_class() -> None:
    draw = np.random.default_rng(31)
    for trial in range(60):
        pairs = _random_pairs(draw, trial, classes=40, areas=8, size=(0, 300), people=90)
        for node in LATTICE.nodes():
            k = int(draw.integers(1, 7))
            assert row_bound(pairs, LATTICE, node, k) == _row_bound_before(pairs, node, k), trial


def _node_groups_before(
    keys: list[ClassKey] | class_counter.ClassKeys, positions: list[int]
) -> tuple[Any, Any]:
    """``node_groups`` as it packed keys before (a matrix product): the reference."""
    if not len(keys) or not len(positions):
        return group_keys(keys, positions)
    codes = class_counter.cached_codes(keys)[:, list(positions)]
    widths = codes.max(axis=0).astype(np.int64) + 1
    size = float(np.prod(widths.astype(np.float64)))
    if size >= 2.0**62:
        return group_keys(keys, positions)
    radix = np.cumprod(np.concatenate([[1], widths[:-1]])).astype(np.int64)
    packed = codes @ radix
    if size < 1 << 22:
        present = np.zeros(int(size), dtype=np.bool_)
        present[packed] = True
        ids = (np.cumsum(present) - 1)[packed]
    else:
        ids = np.unique(packed, return_inverse=True)[1].reshape(-1)
    firsts = np.empty(int(ids.max()) + 1, dtype=np.intp)
    firsts[ids] = np.arange(len(ids), dtype=np.intp)
    return ids.astype(np.int64), firsts


@pytest.mark.parametrize("width", [3, 40, 5_000])
def test_node_groups_number_the_classes_as_the_matrix_product_did(width: int) -> None:
    draw = np.random.default_rng(width + 1)
    counter = ClassCounter(count_subjects=False)
    for _ in range(3):
        columns = [
            pa.array([f"v{v}" for v in draw.integers(0, width, 700)], pa.string()) for _ in range(7)
        ]
        counter.class_ids(columns)
    for positions in ([0], [2, 1], [0, 2, 4, 5], list(range(7)), [6, 3], []):
        ids, firsts = node_groups(counter.keys, positions)
        old_ids, old_firsts = _node_groups_before(counter.keys, positions)
        assert ids.tolist() == old_ids.tolist() and firsts.tolist() == old_firsts.tolist()
