"""Folding (class, subject) pairs: the two-sort order gives what lexsort gave."""

from __future__ import annotations

import numpy as np
import pytest

from gateway.research.class_counter import _fold, _Pairs


def lexsort_fold(pairs: _Pairs) -> _Pairs:
    """The former fold: one lexsort over (class, known, subject)."""
    order = np.lexsort((pairs.subjects, pairs.known, pairs.classes))
    classes, subjects = pairs.classes[order], pairs.subjects[order]
    known, rows = pairs.known[order], pairs.rows[order]
    first = np.ones(len(classes), dtype=np.bool_)
    first[1:] = (
        (classes[1:] != classes[:-1]) | (subjects[1:] != subjects[:-1]) | (known[1:] != known[:-1])
    )
    starts = np.flatnonzero(first)
    return _Pairs(classes[starts], subjects[starts], known[starts], np.add.reduceat(rows, starts))


@pytest.mark.parametrize("seed", range(40))
def test_fold_equals_the_lexsort_fold(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 5000))
    classes = rng.integers(0, int(rng.integers(1, 300)), n).astype(np.int32)
    # few distinct subjects make many equal pairs; extreme values test the packing
    pool = rng.integers(np.iinfo(np.int64).min, np.iinfo(np.int64).max, int(rng.integers(1, 400)))
    subjects = rng.choice(np.append(pool, [0, -1, np.iinfo(np.int64).max]), n)
    known = rng.random(n) < rng.random()
    subjects[~known] = 0
    rows = rng.integers(1, 4, n).astype(np.int64)
    got, want = (
        _fold(_Pairs(classes, subjects, known, rows)),
        lexsort_fold(_Pairs(classes, subjects, known, rows)),
    )
    for name in ("classes", "subjects", "known", "rows"):
        assert np.array_equal(getattr(got, name), getattr(want, name)), name
        assert getattr(got, name).dtype == getattr(want, name).dtype, name
