"""Helpers for policy tests: a copy of the shipped pack that a test may break."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.conftest import POLICIES


def copy_pack(tmp_path: Path) -> Path:
    """Return a private copy of the shipped policy pack (rules, tables, vocabulary, model)."""
    target = tmp_path / "policies"
    shutil.copytree(POLICIES, target, ignore=shutil.ignore_patterns("agreements"))
    return target


def add_rule_file(pack: Path, name: str, text: str) -> Path:
    """Write one more rule file into ``pack`` and return its path."""
    path = pack / "rules" / name
    path.write_text(text, encoding="utf-8")
    return path


def line_of(path: Path, needle: str) -> int:
    """Return the 1-based line of the first line of ``path`` containing ``needle``."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")
