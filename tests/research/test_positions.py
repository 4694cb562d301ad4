"""Looking many pseudonym hashes up in a sorted array: the same as np.searchsorted."""

from __future__ import annotations

import numpy as np
import pytest

from gateway.research.person_links import _nearly_sorted_order, positions

INT64 = np.iinfo(np.int64)


def queries(rng: np.random.Generator, count: int, kind: int) -> np.ndarray:
    if kind == 0:  # pseudonym hashes: the whole int64 range
        values = rng.integers(INT64.min, INT64.max, count, dtype=np.int64, endpoint=True)
    elif kind == 1:  # row numbers (unlinked releases), shuffled
        values = rng.permutation(count).astype(np.int64)
    elif kind == 2:  # few distinct values, the extremes among them
        pool = np.array([INT64.min, -1, 0, 1, INT64.max, 2**62, -(2**62)], dtype=np.int64)
        values = rng.choice(pool, count)
    else:  # a narrow band far from zero
        values = rng.integers(2**40, 2**40 + 3 * count, count, dtype=np.int64)
    return values


@pytest.mark.parametrize("seed", range(24))
def test_positions_equal_searchsorted(seed: int) -> None:
    rng = np.random.default_rng(seed)
    count = int(rng.choice([1, 100, 4095, 4096, 5000, 70_000]))
    found = queries(rng, count, seed % 4)
    # the sorted array holds some of the queries and other values
    known = np.sort(np.concatenate([rng.choice(found, count // 2 + 1), queries(rng, 50, 0)]))
    assert np.array_equal(positions(known, found), np.searchsorted(known, found))


@pytest.mark.parametrize("seed", range(12))
def test_the_order_is_a_permutation_and_exact_without_a_shift(seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = queries(rng, int(rng.integers(2, 50_000)), seed % 4)
    order = _nearly_sorted_order(values)
    assert np.array_equal(np.sort(order), np.arange(len(values)))
    if seed % 4 in (1, 3):  # a range that fits beside the index: sorted exactly
        assert np.array_equal(values[order], np.sort(values))
    elif seed % 4 == 0:  # hashes: sorted by their leading bits, nearly always exactly
        assert (np.diff(values[order]) < 0).sum() <= len(values) // 1000
