"""Giving freed memory back to the operating system during a long release.

A release allocates and frees a batch's worth of Arrow buffers and numpy arrays per
input batch. Arrow's allocator (mimalloc by default) and the C heap numpy allocates
from keep what was freed for reuse, so the process's resident memory grows with the
number of batches although what is alive stays bounded. ``give_back`` asks both to
return their free pages; the release calls it between batches and phases.
``release_pool`` lets the release allocate from jemalloc, which keeps less resident.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import pyarrow as pa


@cache
def _libc() -> Any:
    """Return the C library when it has glibc's ``malloc_trim``, else None."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        libc.malloc_trim.restype = ctypes.c_int
    except (OSError, AttributeError, TypeError):
        return None
    return libc


def give_back() -> None:
    """Return the free memory of Arrow's pool and of the C heap to the system (best effort).

    Changes nothing a caller sees; where ``malloc_trim`` is missing (not glibc), only
    Arrow's pool is asked. Never raises.
    """
    pa.default_memory_pool().release_unused()
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


def _release_pool() -> pa.MemoryPool | None:
    """Return jemalloc's pool when this pyarrow build has it, else None."""
    try:
        return pa.jemalloc_memory_pool()
    except NotImplementedError:
        return None


@contextmanager
def release_pool() -> Iterator[None]:
    """Let pyarrow allocate from jemalloc's pool for the duration, then restore the previous one.

    With mimalloc (pyarrow's default) a release's freed batches stayed resident and
    the release took more CPU: measured in the release process at 200k rows, 338 ->
    316 MB peak and 1.9 -> 1.7 s CPU. Buffers remember their pool, so restoring it is
    safe at any time; without jemalloc nothing changes. Never raises.
    """
    pool = _release_pool()
    if pool is None:
        yield
        return
    previous = pa.default_memory_pool()
    pa.set_memory_pool(pool)
    try:
        yield
    finally:
        pa.set_memory_pool(previous)
