"""A release allocates from jemalloc's pool and gives the previous pool back afterwards."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from gateway.research.extract import ExtractRequest
from gateway.research.heap import give_back, release_pool
from gateway.research.release_builder import make_release
from tests.research.conftest import RELEASE_AT, Releaser


def _jemalloc() -> str:
    """The backend a release should allocate from on this build (jemalloc when present)."""
    try:
        return str(pa.jemalloc_memory_pool().backend_name)
    except NotImplementedError:
        return str(pa.default_memory_pool().backend_name)


class _Phases:
    """A progress sink that notes the allocator of each phase."""

    def __init__(self) -> None:
        self.backends: list[str] = []

    def start(self, phase: str, total: int | None) -> None:
        self.backends.append(pa.default_memory_pool().backend_name)

    def advance(self, rows: int) -> None:
        pass


def test_a_release_allocates_from_jemalloc_and_restores_the_pool(
    releaser: Releaser, rows: list[dict[str, Any]]
) -> None:
    before = pa.default_memory_pool().backend_name
    phases = _Phases()
    agreement = releaser.agreement
    request = ExtractRequest(
        agreement, "pooled", RELEASE_AT, "p1", consenting_providers=agreement.provider_ids
    )
    make_release(
        request,
        iter(rows),
        pseudonymiser=releaser.ring.pseudonymiser(agreement.project),
        signer=releaser.signer,
        out_dir=releaser.out,
        progress=phases,
    )
    assert phases.backends and set(phases.backends) == {_jemalloc()}
    assert pa.default_memory_pool().backend_name == before


def test_the_previous_pool_is_restored_after_a_failure() -> None:
    before = pa.default_memory_pool().backend_name
    inside: list[str] = []

    def fail() -> None:
        with release_pool():
            inside.append(pa.default_memory_pool().backend_name)
            raise RuntimeError("the release failed")

    with pytest.raises(RuntimeError):
        fail()
    assert inside == [_jemalloc()]
    assert pa.default_memory_pool().backend_name == before


def test_giving_memory_back_keeps_live_buffers() -> None:
    with release_pool():
        values = pa.array([f"value-{i}" for i in range(10_000)])
        give_back()
        assert values.to_pylist()[-1] == "value-9999"
