"""YAML that remembers where each value came from, for errors with file and line.

Policy rules, the vocabulary and research agreements are written by people; every
mistake in them must be reported as ``file:line: message``, never as a rule that
silently never matches. ``load`` returns plain dicts and lists (subclasses) that carry
the 1-based line of themselves and of each key or item.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode


class LineDict(dict[str, Any]):
    """A mapping with ``line`` (where it starts) and ``key_lines`` (where each key is)."""

    line: int
    key_lines: dict[str, int]

    def line_of(self, key: str) -> int:
        """Return the line of ``key``, or of the mapping itself if the key is absent."""
        return self.key_lines.get(key, self.line)


class LineList(list[Any]):
    """A sequence with ``line`` (where it starts) and ``item_lines`` (one per item)."""

    line: int
    item_lines: list[int]


@dataclass(frozen=True, slots=True)
class SourceProblem:
    """One mistake in a source file."""

    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class SourceError(Exception):
    """One or more mistakes in source files; ``str`` lists them as ``file:line: message``."""

    def __init__(self, problems: list[SourceProblem]) -> None:
        if not problems:
            raise ValueError("SourceError needs at least one problem")
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


# libyaml's parser (PyYAML's wheels carry it) when present: the same nodes, line marks and
# errors as the pure-Python one, about ten times faster; a pack compiles on every start.
_Base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[misc,valid-type]
    pass


def _construct(loader: _Loader, node: Node) -> Any:
    if isinstance(node, MappingNode):
        result = LineDict()
        result.line = node.start_mark.line + 1
        result.key_lines = {}
        loader.flatten_mapping(node)
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | bool):
                raise yaml.constructor.ConstructorError(
                    None, None, "mapping keys must be plain scalars", key_node.start_mark
                )
            skey = str(key).lower() if isinstance(key, bool) else str(key)
            if skey in result:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {skey!r}", key_node.start_mark
                )
            result[skey] = _construct(loader, value_node)
            result.key_lines[skey] = key_node.start_mark.line + 1
        return result
    if isinstance(node, SequenceNode):
        items = LineList(_construct(loader, child) for child in node.value)
        items.line = node.start_mark.line + 1
        items.item_lines = [child.start_mark.line + 1 for child in node.value]
        return items
    assert isinstance(node, ScalarNode)
    return loader.construct_object(node, deep=True)


def load(path: Path) -> Any:
    """Parse one YAML file into LineDict/LineList/scalars.

    Raises SourceError (with the line) for unreadable files, syntax errors and
    duplicate keys.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SourceError([SourceProblem(path, 0, f"cannot read: {exc.strerror}")]) from exc
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        return None if node is None else _construct(loader, node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        raise SourceError([SourceProblem(path, line, exc.problem or str(exc))]) from exc
    except yaml.YAMLError as exc:
        raise SourceError([SourceProblem(path, 0, str(exc))]) from exc
    finally:
        loader.dispose()
