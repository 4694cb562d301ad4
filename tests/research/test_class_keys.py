"""The vectorised class numbering gives exactly what the former per-class loops gave."""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pytest

from gateway.research import class_counter
from gateway.research.class_counter import (
    NULL_MARK,
    SEP,
    ClassCounter,
    ClassKey,
    group_keys,
    node_parts,
)


def _old_class_ids(
    ids: dict[str, int], keys: list[ClassKey], columns: Sequence[list[str | None]]
) -> list[int]:
    """The former ``ClassCounter.class_ids``: one dict lookup per distinct key, in Python."""
    out = []
    for row in zip(*columns, strict=True):
        text = SEP.join(NULL_MARK if part is None else part for part in row)
        found = ids.get(text)
        if found is None:
            found = ids[text] = len(keys)
            keys.append(tuple(None if p == NULL_MARK else p for p in text.split(SEP)))
        out.append(found)
    return out


def _old_node_parts(
    keys: Sequence[ClassKey], positions: Sequence[int]
) -> tuple[list[int], list[ClassKey]]:
    """The former per-class loop of ``evaluate``, ``node_classes`` and ``_node_parts``."""
    ids: dict[ClassKey, int] = {}
    of = [ids.setdefault(tuple(key[p] for p in positions), len(ids)) for key in keys]
    return of or [0], list(ids)


def _value(rng: random.Random, width: int) -> str | None:
    return None if rng.random() < 0.1 else f"v{rng.randrange(width)}"


@pytest.mark.parametrize("seed", range(30))
def test_class_ids_and_node_classes_match_the_former_loops(seed: int) -> None:
    rng = random.Random(seed)
    parts = rng.randint(1, 5)
    widths = [rng.choice([1, 2, 5, 40]) for _ in range(parts)]
    counter = ClassCounter(count_subjects=False)
    ids: dict[str, int] = {}
    keys: list[ClassKey] = []
    for _ in range(rng.randint(1, 6)):
        rows = rng.randint(0, 300)
        columns = [[_value(rng, w) for _ in range(rows)] for w in widths]
        got = counter.class_ids([pa.array(c, pa.string()) for c in columns])
        assert got.type == pa.int32()
        assert got.to_pylist() == _old_class_ids(ids, keys, columns)
    assert list(counter.keys) == keys
    for _ in range(10):
        positions = sorted(rng.sample(range(parts), rng.randint(0, parts)))
        of, by_id = node_parts(counter.keys, positions)
        old_of, old_keys = _old_node_parts(keys, positions)
        assert of.dtype == np.int64
        assert of.tolist() == old_of
        assert by_id == old_keys


def test_class_ids_of_keys_too_wide_for_one_integer_match_the_former_loop() -> None:
    # twelve parts of thousands of values each: a batch's codes do not fit one int64
    rng = random.Random(11)
    counter = ClassCounter(count_subjects=False)
    ids: dict[str, int] = {}
    keys: list[ClassKey] = []
    for _ in range(3):
        columns = [[_value(rng, 5_000) for _ in range(400)] for _ in range(12)]
        columns = [c + c[:50] for c in columns]  # repeated keys within the batch
        got = counter.class_ids([pa.array(c, pa.string()) for c in columns])
        assert got.to_pylist() == _old_class_ids(ids, keys, columns)
    assert list(counter.keys) == keys
    assert counter.keys[-1] == keys[-1] and counter.keys[1:3] == keys[1:3]


def test_wide_keys_that_overflow_one_integer_are_grouped_by_row() -> None:
    rng = random.Random(7)
    keys: list[ClassKey] = [tuple(_value(rng, 60_000) for _ in range(6)) for _ in range(2000)]
    keys += keys[:500]  # repeats: the same key in several finest classes
    positions = list(range(6))
    of, firsts = group_keys(keys, positions)
    old_of, old_keys = _old_node_parts(keys, positions)
    assert of.tolist() == old_of
    assert [keys[i] for i in firsts] == old_keys


def test_no_classes_gives_the_former_placeholder() -> None:
    of, by_id = node_parts([], [0, 1])
    assert (of.tolist(), by_id) == _old_node_parts([], [0, 1])


@pytest.mark.parametrize("merge_at", [4, 1 << 15])
def test_class_ids_match_the_former_loop_as_keys_outgrow_their_packing(
    merge_at: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # known keys are packed into one integer until their parts need more than 62 bits,
    # packed again each time a part outgrows its bits, then looked up as bytes
    monkeypatch.setattr(class_counter, "_MERGE_AT", merge_at)
    rng = random.Random(23)
    counter = ClassCounter(count_subjects=False)
    ids: dict[str, int] = {}
    keys: list[ClassKey] = []
    for width in (1, 2, 3, 40, 40, 700, 5_000, 40, 60_000, 60_000, 5):
        rows = rng.randint(0, 400)
        columns = [[_value(rng, width) for _ in range(rows)] for _ in range(8)]
        columns = [c + c[: rows // 3] for c in columns]  # repeated keys within the batch
        got = counter.class_ids([pa.array(c, pa.string()) for c in columns])
        assert got.to_pylist() == _old_class_ids(ids, keys, columns), width
    assert list(counter.keys) == keys


def test_codes_held_narrow_then_wide_give_the_keys_the_former_loop_gave() -> None:
    # codes are held as int16 while they fit; a part of more values makes later chunks
    # int32, and the matrix of both is the same keys
    rng = random.Random(29)
    counter = ClassCounter(count_subjects=False)
    ids: dict[str, int] = {}
    keys: list[ClassKey] = []
    for rows, width in ((300, 40), (40_000, 10**9), (300, 40)):
        columns = [[_value(rng, width) for _ in range(rows)], [_value(rng, 3) for _ in range(rows)]]
        got = counter.class_ids([pa.array(c, pa.string()) for c in columns])
        assert got.to_pylist() == _old_class_ids(ids, keys, columns)
        if width == 40 and len(keys) < 1_000:
            assert counter.keys.codes().dtype == np.int16
    assert counter.keys.codes().dtype == np.int32
    assert list(counter.keys) == keys
    for positions in ([0], [1], [0, 1]):
        of, by_id = node_parts(counter.keys, positions)
        assert (of.tolist(), by_id) == _old_node_parts(keys, positions)
