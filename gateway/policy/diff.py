"""A readable difference between two policy packs: per rule and per file.

Per rule: added, removed, or changed with each changed field (effect, a condition,
obligations, reason, source, overrides, the file it lives in) before and after, as the
author wrote them. Per file: the unified text diff. Pure functions of two analyses.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from gateway.policy.pack import PackAnalysis, RuleText


class Change(StrEnum):
    """What happened to a rule or a file."""

    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field of a rule, before and after (None where the rule did not set it)."""

    field: str
    before: Any
    after: Any


@dataclass(frozen=True, slots=True)
class RuleChange:
    """A rule that was added, removed or changed; ``fields`` lists what changed."""

    rule_id: str
    change: Change
    file: str
    effect: str
    reason: str
    fields: tuple[FieldChange, ...] = ()


@dataclass(frozen=True, slots=True)
class FileDiff:
    """A file that was added, removed or changed, with its unified diff."""

    path: str
    change: Change
    unified: str
    added_lines: int
    removed_lines: int


@dataclass(frozen=True, slots=True)
class PolicyDiff:
    """The differences between two packs, rules first (in file order), then files."""

    rules: tuple[RuleChange, ...]
    files: tuple[FileDiff, ...]

    @property
    def empty(self) -> bool:
        """True when nothing differs."""
        return not self.rules and not self.files

    def count(self, change: Change) -> int:
        """Return how many rules were added, removed or changed."""
        return sum(1 for r in self.rules if r.change is change)


def _field_changes(before: RuleText, after: RuleText) -> tuple[FieldChange, ...]:
    old, new = before.fields(), after.fields()
    keys = list(dict.fromkeys([*old, *new]))
    return tuple(
        FieldChange(key, old.get(key), new.get(key)) for key in keys if old.get(key) != new.get(key)
    )


def diff_rules(before: tuple[RuleText, ...], after: tuple[RuleText, ...]) -> tuple[RuleChange, ...]:
    """Return the rule changes from ``before`` to ``after``, matched by rule id."""
    old = {r.id: r for r in before}
    new = {r.id: r for r in after}
    changes: list[tuple[tuple[str, int], RuleChange]] = []
    for rule in after:
        if rule.id not in old:
            changes.append(
                (
                    (rule.file, rule.line),
                    RuleChange(rule.id, Change.ADDED, rule.file, rule.effect, rule.reason),
                )
            )
            continue
        fields = _field_changes(old[rule.id], rule)
        if fields:
            changes.append(
                (
                    (rule.file, rule.line),
                    RuleChange(
                        rule.id, Change.CHANGED, rule.file, rule.effect, rule.reason, fields
                    ),
                )
            )
    for rule in before:
        if rule.id not in new:
            changes.append(
                (
                    (rule.file, rule.line),
                    RuleChange(rule.id, Change.REMOVED, rule.file, rule.effect, rule.reason),
                )
            )
    return tuple(change for _where, change in sorted(changes, key=lambda c: c[0]))


def diff_files(before: dict[str, str], after: dict[str, str]) -> tuple[FileDiff, ...]:
    """Return the unified diff of every file that differs (added, removed or changed)."""
    result = []
    for path in sorted(set(before) | set(after)):
        old, new = before.get(path), after.get(path)
        if old == new:
            continue
        change = Change.ADDED if old is None else Change.REMOVED if new is None else Change.CHANGED
        lines = list(
            difflib.unified_diff(
                (old or "").splitlines(keepends=True),
                (new or "").splitlines(keepends=True),
                fromfile=f"a/{path}" if old is not None else "/dev/null",
                tofile=f"b/{path}" if new is not None else "/dev/null",
            )
        )
        text = "".join(line if line.endswith("\n") else line + "\n" for line in lines)
        added = sum(1 for ln in lines if ln.startswith("+") and not ln.startswith("+++"))
        removed = sum(1 for ln in lines if ln.startswith("-") and not ln.startswith("---"))
        result.append(FileDiff(path, change, text, added, removed))
    return tuple(result)


def diff_packs(before: PackAnalysis, after: PackAnalysis) -> PolicyDiff:
    """Return the rule and file differences from ``before`` to ``after``."""
    return PolicyDiff(
        rules=diff_rules(before.rules, after.rules),
        files=diff_files(dict(before.pack.files), dict(after.pack.files)),
    )
