"""A release allocates Arrow memory with malloc, and leaves the process's allocator as it was."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from gateway.research import release_builder
from tests.research.conftest import Releaser


def test_a_release_allocates_with_malloc_and_restores_the_allocator_after_it(
    releaser: Releaser, rows: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = pa.default_memory_pool().backend_name
    seen: list[str] = []
    write_extract = release_builder.write_extract

    def watching(*args: Any, **kwargs: Any) -> Any:
        seen.append(pa.default_memory_pool().backend_name)
        return write_extract(*args, **kwargs)

    monkeypatch.setattr(release_builder, "write_extract", watching)
    opened = releaser.open(releaser.release(rows, "malloc"))
    assert opened.csv_text.count("\n") > 1
    assert seen == ["system"]
    assert pa.default_memory_pool().backend_name == before


def test_a_failed_release_restores_the_allocator_too(
    releaser: Releaser, rows: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = pa.default_memory_pool().backend_name

    def failing(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("disk full")

    monkeypatch.setattr(release_builder, "write_extract", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        releaser.release(rows[:500], "fails")
    assert pa.default_memory_pool().backend_name == before
