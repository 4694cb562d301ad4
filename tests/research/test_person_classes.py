"""The risk report's class sizes, spilled to files by class, match a count done by hand.

Pass 2 spreads the (class, person) pairs of the written rows over files by class and
measures one file at a time; a class split across files, or a pair counted twice because
a person's rows fell into several batches, would change the figures of the manifest.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from contextlib import ExitStack
from fractions import Fraction
from pathlib import Path

import numpy as np

from gateway.research.extract_output import PAIR_PARTITIONS, _PersonClasses
from gateway.research.person_links import Int64s


def _by_hand(
    rows: Sequence[tuple[tuple[int, ...], int]], k: int
) -> tuple[int, int, Fraction, int, int]:
    """Return (people, people above 1/k, max risk, DM, classes) counted with sets."""
    holders: dict[tuple[int, ...], set[int]] = defaultdict(set)
    for cls, person in rows:
        holders[cls].add(person)
    smallest: dict[int, int] = {}
    for people in holders.values():
        for person in people:
            smallest[person] = min(smallest.get(person, len(people)), len(people))
    least = min(smallest.values())
    return (
        len(smallest),
        sum(1 for size in smallest.values() if size < k),
        Fraction(1, least),
        sum(len(people) ** 2 for people in holders.values()),
        len(holders),
    )


def _measured(
    tmp_path: Path, batches: list[tuple[list[Int64s], Int64s]], k: int
) -> tuple[int, int, Fraction, int, int]:
    with ExitStack() as stack:
        classes = _PersonClasses(tmp_path, "classes", stack)
        for parts, holders in batches:
            classes.add(parts, holders)
    people, above, risk, discernibility = classes.risk(k)
    assert not any(path.exists() for path in classes.paths)  # each file removed once read
    return people, above, risk, discernibility, classes.count


def test_one_part_classes_over_many_batches_and_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    batches, rows = [], []
    for _ in range(7):
        cls = rng.integers(0, 3 * PAIR_PARTITIONS, 400)
        person = rng.integers(0, 300, 400)
        batches.append(([cls], person))
        rows += [((int(c),), int(p)) for c, p in zip(cls, person, strict=True)]
    assert _measured(tmp_path, batches, 5) == _by_hand(rows, 5)


def test_two_part_classes_count_each_event_apart(tmp_path: Path) -> None:
    rng = np.random.default_rng(12)
    batches, rows = [], []
    for _ in range(5):
        qi = rng.integers(0, 40, 500)
        event = rng.integers(0, 90, 500)
        person = rng.integers(0, 200, 500)
        batches.append(([qi, event], person))
        rows += [((int(q), int(e)), int(p)) for q, e, p in zip(qi, event, person, strict=True)]
    measured = _measured(tmp_path, batches, 3)
    assert measured == _by_hand(rows, 3)
    assert measured[2] > Fraction(1, 3)  # some people stand alone in a class: the test can fail
