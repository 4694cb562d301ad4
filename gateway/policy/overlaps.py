"""Checks on a policy's rules as a set: no allow overlaps a deny, no two allows are ambiguous.

Overlapping allow and deny rules, and allow rules that overlap with different
obligations where neither is more specific, are errors: the reader of the pack must be
able to see which rule decides. A deny may name the allows it ``overrides``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from gateway.policy.decision import DIMENSIONS
from gateway.policy.rules import CompiledRule
from gateway.yamlsource import SourceProblem


def _overlap(a: CompiledRule, b: CompiledRule) -> bool:
    for dim in DIMENSIONS:
        ca, cb = a.covered[dim], b.covered[dim]
        if ca is not None and cb is not None and not (ca & cb):
            return False
    return True


def _subset(a: CompiledRule, b: CompiledRule) -> bool:
    """True when every request ``a`` covers is covered by ``b``."""
    for dim in DIMENSIONS:
        ca, cb = a.covered[dim], b.covered[dim]
        if cb is None:
            continue
        if ca is None or not ca <= cb:
            return False
    return True


def check_overlaps(rules: Sequence[CompiledRule]) -> list[SourceProblem]:
    """Return problems for overlapping allow/deny rules and ambiguous allow rules."""
    problems: list[SourceProblem] = []
    by_action: dict[str, list[CompiledRule]] = {}
    for rule in rules:
        for action in rule.covered["action"] or ():
            by_action.setdefault(action, []).append(rule)
    seen: set[tuple[str, str]] = set()
    for group in by_action.values():
        for a, b in itertools.combinations(group, 2):
            key = (a.id, b.id) if a.id < b.id else (b.id, a.id)
            if key in seen or not _overlap(a, b):
                continue
            seen.add(key)
            if a.effect != b.effect:
                deny, allow = (a, b) if a.effect == "deny" else (b, a)
                if allow.id in deny.overrides:
                    continue
                problems.append(
                    SourceProblem(
                        allow.path,
                        allow.key_lines.get("id", allow.line),
                        f"allow rule {allow.id!r} overlaps deny rule {deny.id!r} ({deny.where}); "
                        "narrow one of them, or list the allow under the deny's overrides",
                    )
                )
            elif a.allows and a.obligations_id != b.obligations_id:
                if _subset(a, b) or _subset(b, a):
                    continue
                later = b if (str(b.path), b.line) > (str(a.path), a.line) else a
                other = a if later is b else b
                problems.append(
                    SourceProblem(
                        later.path,
                        later.key_lines.get("id", later.line),
                        f"allow rules {other.id!r} ({other.where}) and {later.id!r} overlap with "
                        "different obligations and neither is narrower; split them",
                    )
                )
    return problems
