"""YAML with line numbers: values keep their lines; mistakes name file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.yamlsource import LineDict, LineList, SourceError, load


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    return path


def test_lines_of_keys_and_items(tmp_path: Path) -> None:
    doc = load(write(tmp_path, "rules:\n  - id: a\n    effect: allow\n  - id: b\n"))
    assert isinstance(doc, LineDict)
    rules = doc["rules"]
    assert isinstance(rules, LineList)
    assert rules.item_lines == [2, 4]
    assert rules[0].line_of("effect") == 3
    assert rules[1].line_of("missing") == 4


def test_duplicate_key_is_an_error_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "id: a\neffect: allow\neffect: deny\n")
    with pytest.raises(SourceError) as info:
        load(path)
    assert str(info.value) == f"{path}:3: duplicate key 'effect'"


def test_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "a: 1\nb: [unclosed\nc: 2\n")
    with pytest.raises(SourceError) as info:
        load(path)
    assert info.value.problems[0].line >= 2


def test_missing_file_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="cannot read"):
        load(tmp_path / "nope.yaml")
