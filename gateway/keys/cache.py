"""The key ring's per-process cache of unwrapped keys, re-checked against their files.

An entry is re-used until ``recheck_seconds`` have passed since its file was last
checked; then the file's identity (inode, mtime, size) is compared and the key re-read
only if it changed, so a key shredded or rotated by another process stops working (or
writes with its new version) here within that time. Entries never appear in a ``repr``
with their material.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.errors import GatewayError
from gateway.keys import files
from gateway.keys.documents import KeyDoc, KeyKind
from gateway.keys.errors import IntegrityCheckFailedError

CACHE_LIMIT = 4096


@dataclass(slots=True)
class LoadedKey:
    """A key file as this process last read it, with its unwrapped versions."""

    doc: KeyDoc
    signature: tuple[int, int, int]
    checked_at: float
    material: dict[int, bytes] = field(default_factory=dict, repr=False)
    aead: dict[int, AESGCM] = field(default_factory=dict, repr=False)
    derived: dict[Any, Any] = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        return f"LoadedKey({self.doc.kind}:{self.doc.key_id}, state={self.doc.state})"

    def aead_of(self, version: int) -> AESGCM:
        """Return the AES-GCM cipher of ``version`` (built once); IntegrityCheckFailedError
        if this key has no such version (a blob naming a version that never existed)."""
        aead = self.aead.get(version)
        if aead is None:
            material = self.material.get(version)
            if material is None:
                raise IntegrityCheckFailedError()
            aead = self.aead.setdefault(version, AESGCM(material))
        return aead


class KeyCache:
    """Loaded keys by ``(kind, id)``, at most ``CACHE_LIMIT`` (the oldest quarter goes first)."""

    def __init__(self, recheck_seconds: float, monotonic: Callable[[], float]) -> None:
        self._recheck = recheck_seconds
        self.monotonic = monotonic
        self._entries: dict[tuple[KeyKind, str], LoadedKey] = {}
        self._lock = threading.RLock()

    def fresh(self, kind: KeyKind, key_id: str) -> LoadedKey | None:
        """Return the cached key if its file was checked within ``recheck_seconds``, else None."""
        entry = self._entries.get((kind, key_id))
        if entry is None or self.monotonic() - entry.checked_at >= self._recheck:
            return None
        return entry

    def refresh(
        self, kind: KeyKind, key_id: str, path: Path, load: Callable[[], LoadedKey]
    ) -> LoadedKey:
        """Return the key after re-checking ``path``, calling ``load`` if the file changed.

        An error from ``load`` drops the entry and goes on to the caller.
        """
        cache_key = (kind, key_id)
        with self._lock:
            entry = self._entries.get(cache_key)
            return self._refresh(cache_key, entry, self.monotonic(), path, load)

    def _refresh(
        self,
        cache_key: tuple[KeyKind, str],
        entry: LoadedKey | None,
        now: float,
        path: Path,
        load: Callable[[], LoadedKey],
    ) -> LoadedKey:
        if entry is not None:
            try:
                current = files.file_signature(os.stat(path))
            except FileNotFoundError:
                current = None
            if current == entry.signature:
                entry.checked_at = now
                return entry
        try:
            entry = load()
        except GatewayError:
            self._entries.pop(cache_key, None)
            raise
        if len(self._entries) >= CACHE_LIMIT:
            for stale in list(self._entries)[: CACHE_LIMIT // 4]:
                del self._entries[stale]
        self._entries[cache_key] = entry
        return entry

    def forget(self, kind: KeyKind, key_id: str) -> None:
        """Drop key ``(kind, key_id)`` (it changed on disk)."""
        with self._lock:
            self._entries.pop((kind, key_id), None)

    def clear(self) -> None:
        """Drop every key (the ring was rewrapped)."""
        with self._lock:
            self._entries.clear()
