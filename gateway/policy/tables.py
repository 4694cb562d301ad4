"""Tables of expected decisions (``policies/tests/*.yaml``) and running them.

A table file has optional ``defaults`` (request attributes shared by its cases) and a
list of ``cases``. Each case has a ``name``, a ``request`` (attributes over the
defaults), optionally ``each`` (an attribute and a list of values: one expected decision
per value), and ``expect`` (``allow`` or ``deny``), optionally ``rule`` and
``obligations`` (compared exactly when given).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.errors import InvalidInputError
from gateway.obligations.types import build, to_json_list
from gateway.policy.decision import DIMENSIONS, Decision, DecisionRequest
from gateway.policy.engine import PolicyEngine
from gateway.yamlsource import LineDict, LineList, SourceError, SourceProblem, load

TESTS_DIR = "tests"
CASE_KEYS = frozenset({"name", "request", "each", "expect", "rule", "obligations"})


@dataclass(frozen=True)
class ExpectedDecision:
    """One row of a table: a request and what the policy must answer."""

    path: Path
    line: int
    name: str
    request: DecisionRequest
    allowed: bool
    rule_id: str | None
    obligations: list[dict[str, Any]] | None


@dataclass(frozen=True)
class Outcome:
    """An expected decision with the actual decision and, on a mismatch, what differs."""

    expected: ExpectedDecision
    actual: Decision
    differences: tuple[str, ...]

    @property
    def passed(self) -> bool:
        """True when the decision is what the table expects."""
        return not self.differences

    def describe(self) -> str:
        """Return a readable diff: where, which case, expected against actual."""
        e = self.expected
        lines = [f"{e.path}:{e.line}: {e.name}"]
        lines += [f"    {d}" for d in self.differences]
        lines.append(f"    request: {json.dumps(e.request.to_dict(), ensure_ascii=False)}")
        return "\n".join(lines)


def _effect(allowed: bool) -> str:
    return "allow" if allowed else "deny"


def _obligations_json(raw: Any, path: Path, line: int) -> list[dict[str, Any]]:
    result = []
    for item in raw if isinstance(raw, list) else [raw]:
        kind, params = (item, {}) if isinstance(item, str) else next(iter(dict(item).items()))
        try:
            result.append(build(str(kind), dict(params or {})).to_json())
        except InvalidInputError as exc:
            raise SourceError([SourceProblem(path, line, exc.detail)]) from exc
    return result


def load_tables(policies_dir: Path) -> list[ExpectedDecision]:
    """Return every expected decision of the pack's tables; raise SourceError on mistakes."""
    expected: list[ExpectedDecision] = []
    problems: list[SourceProblem] = []
    files = sorted((policies_dir / TESTS_DIR).glob("*.yaml"))
    for path in files:
        try:
            doc = load(path)
        except SourceError as exc:
            problems.extend(exc.problems)
            continue
        if not isinstance(doc, LineDict) or not isinstance(doc.get("cases"), LineList):
            problems.append(SourceProblem(path, 1, "a table is a mapping with a cases: list"))
            continue
        defaults = doc.get("defaults") or {}
        for case, line in zip(doc["cases"], doc["cases"].item_lines, strict=True):
            try:
                expected.extend(_expand(path, line, case, defaults))
            except SourceError as exc:
                problems.extend(exc.problems)
    if problems:
        raise SourceError(problems)
    return expected


def _expand(
    path: Path, line: int, case: Any, defaults: dict[str, Any]
) -> Iterator[ExpectedDecision]:
    if not isinstance(case, LineDict):
        raise SourceError([SourceProblem(path, line, "a case is a mapping")])
    for key in case:
        if key not in CASE_KEYS:
            raise SourceError([SourceProblem(path, case.line_of(key), f"unknown key {key!r}")])
    name = str(case.get("name") or f"case at line {line}")
    if case.get("expect") not in ("allow", "deny"):
        raise SourceError([SourceProblem(path, case.line_of("expect"), "expect allow or deny")])
    allowed = case["expect"] == "allow"
    obligations = None
    if "obligations" in case:
        obligations = _obligations_json(
            case["obligations"] or [], path, case.line_of("obligations")
        )
    each = case.get("each") or {}
    if not isinstance(each, dict):
        raise SourceError(
            [SourceProblem(path, case.line_of("each"), "each maps attributes to lists")]
        )
    keys = list(each)
    for key in keys:
        if key not in DIMENSIONS:
            raise SourceError(
                [SourceProblem(path, case.line_of("each"), f"unknown attribute {key!r}")]
            )
    value_lists = [each[k] if isinstance(each[k], list) else [each[k]] for k in keys]
    for combo in itertools.product(*value_lists) if keys else [()]:
        data = {
            **dict(defaults),
            **dict(case.get("request") or {}),
            **dict(zip(keys, combo, strict=True)),
        }
        try:
            request = DecisionRequest.from_dict(data)
        except InvalidInputError as exc:
            raise SourceError([SourceProblem(path, case.line_of("request"), exc.detail)]) from exc
        suffix = (
            f" [{', '.join(f'{k}={v}' for k, v in zip(keys, combo, strict=True))}]" if keys else ""
        )
        yield ExpectedDecision(
            path, line, name + suffix, request, allowed, case.get("rule"), obligations
        )


def run(engine: PolicyEngine, expected: list[ExpectedDecision]) -> list[Outcome]:
    """Return the outcome of every expected decision against ``engine``.

    A request naming an unknown term is a failed outcome, not an exception.
    """
    outcomes = []
    for e in expected:
        try:
            actual = engine.decide(e.request)
        except InvalidInputError as exc:
            actual = Decision(False, exc.detail, "", "<invalid request>", engine.version)
            outcomes.append(Outcome(e, actual, (f"invalid request: {exc.detail}",)))
            continue
        diffs = []
        if actual.allowed != e.allowed:
            diffs.append(
                f"expected {_effect(e.allowed)}, got {_effect(actual.allowed)} "
                f"by rule {actual.rule_id} ({actual.reason})"
            )
        if e.rule_id is not None and actual.rule_id != e.rule_id:
            diffs.append(f"expected rule {e.rule_id}, got {actual.rule_id}")
        if e.obligations is not None:
            got = to_json_list(actual.obligations)
            if got != e.obligations:
                diffs.append(
                    f"expected obligations {json.dumps(e.obligations)}, got {json.dumps(got)}"
                )
        outcomes.append(Outcome(e, actual, tuple(diffs)))
    return outcomes
