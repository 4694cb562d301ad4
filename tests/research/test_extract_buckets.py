"""Pass 2 reads a bounded number of rows at a time: large buckets are scattered again."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.research import extract_output
from tests.research.conftest import Releaser


def test_small_buckets_release_the_same_rows_in_another_order(
    releaser: Releaser, rows: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = releaser.open(releaser.release(rows, "whole", seed=b"\x02" * 32))
    read: list[int] = []
    shuffled = extract_output.shuffled

    def counting(*args: Any) -> Any:
        for table in shuffled(*args):
            read.append(table.num_rows)
            yield table

    monkeypatch.setattr(extract_output, "BUCKET_BYTES", 16 << 10)
    monkeypatch.setattr(extract_output, "shuffled", counting)
    split = releaser.open(releaser.release(rows, "split", seed=b"\x02" * 32))
    lines = [o.csv_text.splitlines() for o in (whole, split)]
    assert lines[0][0] == lines[1][0]  # the header
    assert sorted(lines[0][1:]) == sorted(lines[1][1:])
    assert lines[0][1:] != lines[1][1:]
    assert sum(read) >= len(lines[1]) - 1 and max(read) < len(rows) / 16
