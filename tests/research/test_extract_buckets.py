"""Pass 2 reads a bounded number of rows at a time: large buckets are scattered again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from gateway.research import extract_output
from gateway.research.extract_input import BUCKETS
from tests.research.conftest import Releaser


def test_small_buckets_release_the_same_rows_in_another_order(
    releaser: Releaser, rows: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = releaser.open(releaser.release(rows, "whole", seed=b"\x02" * 32))
    read: list[int] = []
    permutations = extract_output.permutations

    def counting(*args: Any) -> Any:
        for table, order in permutations(*args):
            read.append(table.num_rows)
            yield table, order

    monkeypatch.setattr(extract_output, "BUCKET_BYTES", 16 << 10)
    monkeypatch.setattr(extract_output, "permutations", counting)
    split = releaser.open(releaser.release(rows, "split", seed=b"\x02" * 32))
    lines = [o.csv_text.splitlines() for o in (whole, split)]
    assert lines[0][0] == lines[1][0]  # the header
    assert sorted(lines[0][1:]) == sorted(lines[1][1:])
    assert lines[0][1:] != lines[1][1:]
    assert sum(read) >= len(lines[1]) - 1 and max(read) < len(rows) / 16


def test_scatter_sends_each_row_to_its_drawn_bucket_in_input_order() -> None:
    rows = 5_000
    spill = pa.RecordBatch.from_pydict({"row": pa.array(range(rows), pa.int64())})
    sinks = [pa.BufferOutputStream() for _ in range(BUCKETS)]
    writers = [pa.ipc.new_stream(sink, spill.schema) for sink in sinks]
    extract_output.scatter(spill, np.random.default_rng(7), writers)
    for writer in writers:
        writer.close()
    drawn = np.random.default_rng(7).integers(0, BUCKETS, rows)
    for bucket, sink in enumerate(sinks):
        got = pa.ipc.open_stream(sink.getvalue()).read_all().column("row").to_pylist()
        assert got == np.flatnonzero(drawn == bucket).tolist()


@pytest.mark.parametrize("key_high", [50, 1 << 40, 1 << 62])
def test_distinct_class_person_pairs_are_sorted_by_class_then_person(key_high: int) -> None:
    # 1 << 62 leaves no room to pack a person beside the class: the other sort runs
    rng = np.random.default_rng(3)
    key = rng.integers(0, key_high, 20_000, dtype=np.int64)
    key[:3] = [0, key_high - 1, key_high - 1]
    person = rng.integers(0, 1 << 20, 20_000).astype(np.int32)
    person[:3] = [0, (1 << 20) - 1, 0]
    got_key, got_person = extract_output._distinct_pairs(key, person)
    expected = sorted(set(zip(key.tolist(), person.tolist(), strict=True)))
    assert list(zip(got_key.tolist(), got_person.tolist(), strict=True)) == expected
    assert got_key.dtype == np.int64 and got_person.dtype == np.int32


@pytest.mark.parametrize("seed", range(4))
def test_leaving_rows_out_of_the_order_equals_filtering_the_permuted_rows(seed: int) -> None:
    """Pass 2 takes the kept rows in their random order: what permuting and then filtering gave."""
    rng = np.random.default_rng(seed)
    rows = int(rng.integers(1, 3_000))
    table = pa.table(
        {
            "row": pa.array(np.arange(rows)),
            "text": pa.array([None if i % 7 == 0 else f"v{i}" for i in range(rows)]),
        }
    )
    order = rng.permutation(rows)
    keep = rng.random(rows) < rng.random()  # per row of the bucket, before permuting
    before = table.take(pa.array(order))
    before = before.filter(pa.array(keep[order]))
    assert table.take(pa.array(order[keep[order]])).equals(before)


def test_a_large_bucket_is_scattered_again_in_groups_of_rows_not_message_by_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "pass1-00.arrow"
    schema = pa.schema([("row", pa.int64())])
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
        for start in range(0, 20_000, 100):  # as pass 1 writes it: a small message per batch
            writer.write_batch(pa.record_batch([pa.array(range(start, start + 100))], schema))
    monkeypatch.setattr(extract_output, "BUCKET_BYTES", path.stat().st_size // 3)
    calls: list[int] = []
    scatter = extract_output.scatter

    def counting(spill: Any, rng: np.random.Generator, writers: Any) -> None:
        calls.append(spill.num_rows)
        scatter(spill, rng, writers)

    monkeypatch.setattr(extract_output, "scatter", counting)
    read = [
        table.column("row").to_numpy()[order]
        for table, order in extract_output.permutations([path], np.random.default_rng(3))
    ]
    released = np.concatenate(read)
    assert sorted(released.tolist()) == list(range(20_000))  # every row once
    assert len(read) > 1 and released.tolist() != list(range(20_000))
    first = -(-extract_output.SCATTER_ROWS // 100) * 100  # whole messages: 16,400 rows
    assert calls == [first, 20_000 - first]  # not one call per message (200)
    assert not list(tmp_path.iterdir())  # every file removed once read
