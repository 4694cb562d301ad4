"""The release's leaner steps equal the definitions they replaced, on random inputs.

Each ``_previous_*`` below is the code a step replaced, kept as the reference:

- class pairs spilled to the work folder (``ClassPairSpill``) against the in-memory
  ``ClassCounter`` and ``PersonPairs.of``: the same (class, person) pairs and rows, and
  the same outcome of the disclosure check at every node (people, rows one by one, and
  the m-event attacker);
- ``PersonLinks.resolve`` numbering people by a sorted lookup against ``np.unique``'s
  inverse;
- ``redraw_tags`` with a flag per class and sorting in place against ``np.isin`` and
  ``np.unique``.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from gateway.research.class_counter import ClassCounter, ClassKey
from gateway.research.disclosure import Lattice, NodeResult, PersonPairs, evaluate
from gateway.research.events import evaluate_events
from gateway.research.pair_spill import ClassPairSpill
from gateway.research.person_links import (
    Flags,
    Int64s,
    People,
    PersonLinks,
    distinct,
    distinct_sorting,
)
from gateway.research.release_modes import Redraw, _mix, node_classes, redraw_tags, rowwise

LATTICE = Lattice(("born", "area"), (("year", "decade"), ("pc4", "region")))


def _batches(
    rng: np.random.Generator, rows: int, subjects: int
) -> list[tuple[list[pa.Array], pa.Array]]:
    """Random batches: finest key columns (born@year, born@decade, area@pc4, area@region)
    and each row's subject hash (a few null)."""
    hashes = rng.integers(-(1 << 62), 1 << 62, subjects)
    out = []
    left = rows
    while left:
        size = min(left, int(rng.integers(1, 400)))
        left -= size
        year = rng.integers(1990, 2000, size)
        pc4 = rng.integers(9000, 9000 + int(rng.integers(2, 40)), size)
        columns = [
            pa.array([str(y) for y in year], pa.string()),
            pa.array([str(y // 5 * 5) for y in year], pa.string()),
            pa.array([None if p % 7 == 0 else str(p) for p in pc4], pa.string()),
            pa.array([str(p // 10) for p in pc4], pa.string()),
        ]
        subject = hashes[rng.integers(0, subjects, size)]
        mask = rng.random(size) < 0.02
        out.append((columns, pa.array(subject, pa.int64(), mask=mask)))
    return out


def _random_people(
    rng: np.random.Generator, batches: list[tuple[list[pa.Array], pa.Array]]
) -> People:
    """Every subject hash of ``batches``, linked at random into fewer people."""
    nodes = distinct(
        np.concatenate([np.asarray(s.drop_null().to_numpy(), np.int64) for _, s in batches])
    )
    people = max(1, len(nodes) // int(rng.integers(1, 4)))
    person = rng.integers(0, people, len(nodes))
    _, person = np.unique(person, return_inverse=True)  # every number used
    return People(nodes, np.asarray(person, np.int64).reshape(-1), int(person.max()) + 1)


def _as_counts(pairs: PersonPairs) -> Counter[tuple[int, int]]:
    """The pairs as a multiset: rows per (class, person)."""
    counts: Counter[tuple[int, int]] = Counter()
    for c, p, r in zip(
        pairs.classes.tolist(), pairs.person.tolist(), pairs.rows.tolist(), strict=True
    ):
        counts[(c, p)] += r
    return counts


@pytest.mark.parametrize("seed", range(8))
def test_spilled_class_pairs_are_the_counted_ones(seed: int, tmp_path: Path) -> None:
    rng = np.random.default_rng(seed)
    batches = _batches(rng, int(rng.integers(1, 5000)), int(rng.integers(1, 3000)))
    people = _random_people(rng, batches)
    counter = ClassCounter(count_subjects=True)
    with ExitStack() as stack:
        spill = ClassPairSpill(tmp_path, stack, parts=int(rng.integers(1, 9)))
        for columns, subjects in batches:
            ids = counter.class_ids(columns)
            counter.add(ids, subjects)
            spill.add(ids, subjects)
    new = spill.person_pairs(people, counter.keys)
    old = PersonPairs.of(counter, people)
    assert _as_counts(new) == _as_counts(old)
    assert (new.people, new.keys) == (old.people, old.keys)
    assert list(tmp_path.iterdir()) == []  # every file removed once read
    for node in LATTICE.nodes():
        for k in (2, 5):
            # people counted through links, rows counted one by one (unlinked), and the
            # m-event attacker (born as the QI, area as the event attribute)
            for (a, b), by_person in (
                ((evaluate(new, LATTICE, node, k), evaluate(old, LATTICE, node, k)), True),
                (
                    (
                        evaluate(rowwise(new), LATTICE, node, k),
                        evaluate(rowwise(old), LATTICE, node, k),
                    ),
                    False,
                ),
                (
                    (
                        evaluate_events(new, LATTICE, node, k, plain=1, m=2),
                        evaluate_events(old, LATTICE, node, k, plain=1, m=2),
                    ),
                    True,
                ),
            ):
                assert _figures(a) == _figures(b)
                assert (a.kept_people is not None) == by_person


def _figures(result: NodeResult) -> tuple[Any, ...]:
    """What a node's check decided: its small classes, counts and who is kept."""
    kept = None if result.kept_people is None else result.kept_people.tolist()
    return (
        result.small_classes,
        result.suppressed_rows,
        result.suppressed_people,
        result.people,
        result.classes,
        kept,
    )


def _previous_resolve_numbers(lowest: Int64s) -> Int64s:
    _, person = np.unique(lowest, return_inverse=True)
    return np.asarray(person, dtype=np.int64).reshape(-1)


@pytest.mark.parametrize("seed", range(6))
def test_people_are_numbered_as_np_unique_numbered_them(seed: int) -> None:
    rng = np.random.default_rng(seed)
    links = PersonLinks(compact_every=int(rng.integers(0, 500)))
    pool = rng.integers(-(1 << 62), 1 << 62, int(rng.integers(2, 800)))
    for _ in range(int(rng.integers(1, 20))):
        size = int(rng.integers(1, 300))
        hashes = [
            pa.array(
                pool[rng.integers(0, len(pool), size)], pa.int64(), mask=rng.random(size) < 0.5
            )
            for _column in range(3)
        ]
        links.add(hashes)
    links._compact()
    anchors = links._nodes[0].copy()
    lowest = links._lowest(anchors)
    people = links.resolve()
    assert np.array_equal(people.nodes, anchors)
    assert np.array_equal(people.person, _previous_resolve_numbers(lowest))
    values = rng.integers(-50, 50, int(rng.integers(0, 400)))
    assert np.array_equal(distinct_sorting(values.copy()), np.unique(values))


def _stable_hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def _previous_redraw_tags(
    pairs: PersonPairs,
    qi_of_class: Int64s,
    qi_keys: Sequence[ClassKey],
    touched: Flags,
    stable: Int64s,
    others: int,
) -> Redraw | None:
    """``redraw_tags`` as it was, with ``np.isin`` and ``np.unique``."""
    known = pairs.person >= 0
    person, qi = pairs.person[known], qi_of_class[pairs.classes[known]]
    hit = touched[person]
    if not hit.any():
        return None
    width = max(pairs.people, 1)
    withdrawn = np.unique(qi[hit] * width + person[hit]) // width
    classes, counts = np.unique(withdrawn, return_counts=True)
    texts = [
        "|".join("" if part is None else part for part in qi_keys[cls]) + f"#{n}"
        for cls, n in zip(classes.tolist(), counts.tolist(), strict=True)
    ]
    affected = np.isin(qi, classes)
    pair = np.unique(np.searchsorted(classes, qi[affected]) * width + person[affected])
    tag, who = pair // width, pair % width
    salt = np.array([_stable_hash(text) for text in texts], dtype=np.uint64)
    score = _mix(stable[who].astype(np.uint64) ^ salt[tag])
    score[touched[who]] = 0
    order = np.lexsort((score, tag))
    tag, who = tag[order], who[order]
    starts = np.searchsorted(tag, np.arange(len(classes)))
    rank = np.arange(len(tag)) - starts[tag]
    extra = counts[tag]
    chosen = rank < extra + others
    pair = np.unique(who[chosen] * len(classes) + tag[chosen])
    who, tag = pair // len(classes), pair % len(classes)
    first = np.r_[True, who[1:] != who[:-1]]
    several = np.zeros(len(who), dtype=np.bool_)
    several[1:] |= ~first[1:]
    several[:-1] |= ~first[1:]
    tag_of = np.full(pairs.people, -1, dtype=np.int64)
    tag_of[who[first & ~several]] = tag[first & ~several]
    joined: dict[int, list[str]] = {}
    for person_id, tag_id in zip(who[several].tolist(), tag[several].tolist(), strict=True):
        joined.setdefault(person_id, []).append(texts[tag_id])
    for person_id, parts in joined.items():
        tag_of[person_id] = len(texts)
        texts.append("\x1e".join(sorted(parts)))
    return Redraw(tag_of, pa.array(texts, pa.string()))


@pytest.mark.parametrize("seed", range(8))
def test_redraw_tags_are_what_they_were(seed: int, tmp_path: Path) -> None:
    rng = np.random.default_rng(100 + seed)
    batches = _batches(rng, int(rng.integers(50, 4000)), int(rng.integers(10, 2000)))
    people = _random_people(rng, batches)
    counter = ClassCounter(count_subjects=True)
    for columns, subjects in batches:
        counter.add(counter.class_ids(columns), subjects)
    pairs = PersonPairs.of(counter, people)
    node = LATTICE.nodes()[int(rng.integers(0, 4))]
    qi_of, qi_keys = node_classes(counter.keys, LATTICE, node, 2)
    touched = rng.random(people.count) < rng.choice((0.0, 0.01, 0.2))
    stable = rng.integers(0, 1 << 62, people.count)
    others = int(rng.integers(0, 12))
    new = redraw_tags(pairs, qi_of, qi_keys, touched, stable, others)
    old = _previous_redraw_tags(pairs, qi_of, qi_keys, touched, stable, others)
    if old is None:
        assert new is None
        return
    assert new is not None
    assert np.array_equal(new.tag_of, old.tag_of)
    assert new.texts.equals(old.texts)
