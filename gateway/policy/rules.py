"""Policy rules: one rule file's rule, checked against the vocabulary, as a ``CompiledRule``.

``parse_rule`` reads one rule (id, effect, when, obligations, reason, source,
overrides) and reports every mistake as ``file:line: message`` in ``Problems``; a rule
that is wrong anywhere is left out. The compiler (``gateway.policy.compiler``) puts the
parsed rules together, checks them as a set (``gateway.policy.overlaps``,
``gateway.policy.guards``) and orders them.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.errors import InvalidInputError
from gateway.obligations.types import Obligation, build, to_json_list
from gateway.policy.decision import DIMENSIONS, DecisionRequest
from gateway.policy.vocabulary import ANY, DIMENSION_DOMAIN, Vocabulary, describe
from gateway.yamlsource import LineDict, LineList, SourceProblem

EFFECTS = ("deny", "allow")
RULE_KEYS = frozenset({"id", "effect", "when", "obligations", "reason", "source", "overrides"})
_UNBOUNDED = 1_000_000  # how many partners "any partner id" stands for, for specificity


@dataclass(frozen=True)
class CompiledRule:
    """One rule after checking: its conditions as patterns and as sets of covered terms."""

    id: str
    effect: str
    reason: str
    source: str
    obligations: tuple[Obligation, ...]
    obligations_id: str
    patterns: Mapping[str, tuple[str, ...]]
    covered: Mapping[str, frozenset[str] | None]  # None: any value (partner_id only)
    path: Path
    line: int
    key_lines: Mapping[str, int] = field(default_factory=dict)
    overrides: tuple[str, ...] = ()
    generated: bool = False  # derived from the vocabulary, not written in a rule file

    @property
    def allows(self) -> bool:
        """True for an allow rule."""
        return self.effect == "allow"

    @property
    def where(self) -> str:
        """Return ``file:line`` of the rule."""
        return f"{self.path}:{self.line}"

    def specificity(self) -> float:
        """Return the log of how many requests the rule covers (smaller: more specific)."""
        total = 0.0
        for dim in DIMENSIONS:
            covered = self.covered[dim]
            total += math.log(_UNBOUNDED if covered is None else max(len(covered), 1))
        return total

    def mismatches(self, request: DecisionRequest, vocabulary: Vocabulary) -> list[str]:
        """Return, per attribute, why ``request`` falls outside this rule (empty: it matches)."""
        values = dict(zip(DIMENSIONS, request.values(), strict=True))
        result = []
        for dim in DIMENSIONS:
            patterns = self.patterns[dim]
            if patterns == (ANY,):
                continue
            value = values[dim]
            if dim == "partner_id":
                ok = value in patterns
            else:
                ok = bool(vocabulary.domain_of(dim).ancestors(value) & set(patterns))
            if not ok:
                label = dim.replace("_", " ")
                result.append(f"{label} is {value!r}, the rule needs {describe(patterns)}")
        return result

    def rows(self) -> list[list[str]]:
        """Return the Casbin rows of this rule (the product of its condition patterns)."""
        tail = [self.effect, self.id, self.obligations_id]
        return [
            [*combo, *tail]
            for combo in itertools.product(*(self.patterns[dim] for dim in DIMENSIONS))
        ]


def obligations_id(obligations: tuple[Obligation, ...]) -> str:
    if not obligations:
        return "none"
    body = json.dumps(to_json_list(obligations), sort_keys=True, separators=(",", ":"))
    return "ob-" + hashlib.sha256(body.encode()).hexdigest()[:12]


class Problems:
    """The problems found so far, as ``file:line: message``."""

    def __init__(self) -> None:
        self.items: list[SourceProblem] = []

    def add(self, path: Path, line: int, message: str) -> None:
        """Add the problem ``message`` at ``path:line``."""
        self.items.append(SourceProblem(path, line, message))


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _parse_condition(
    dim: str, value: Any, vocabulary: Vocabulary, path: Path, line: int, problems: Problems
) -> tuple[tuple[str, ...], frozenset[str] | None] | None:
    """Return (patterns, covered terms) of one condition, or None after reporting problems."""
    if dim == "partner_id":
        ids = [str(v) for v in _as_list(value)]
        if not ids or any(not i or i == ANY for i in ids):
            problems.add(path, line, "partner_id must name one or more partner ids")
            return None
        return tuple(ids), frozenset(ids)
    domain = vocabulary.domains[DIMENSION_DOMAIN[dim]]
    negate = isinstance(value, dict)
    if negate:
        if set(value) != {"not"}:
            problems.add(path, line, f"{dim}: a mapping condition must be {{not: ...}}")
            return None
        value = value["not"]
    names = [str(v) for v in _as_list(value)]
    ok = True
    for name in names:
        if name not in domain.terms:
            problems.add(
                path,
                line,
                f"unknown {dim.replace('_', ' ')} {name!r}; known: {describe(domain.terms)}",
            )
            ok = False
    if not ok:
        return None
    covered = frozenset().union(*(domain.leaves(n) for n in names)) if names else frozenset()
    if negate:
        covered = domain.concrete - covered
        patterns = tuple(sorted(covered))
    else:
        patterns = tuple(dict.fromkeys(names))
    if not covered:
        problems.add(path, line, f"{dim}: the condition covers no {dim.replace('_', ' ')} at all")
        return None
    return patterns, covered


def _parse_obligations(
    raw: Any,
    vocabulary: Vocabulary,
    categories: frozenset[str],
    path: Path,
    line: int,
    problems: Problems,
) -> tuple[Obligation, ...] | None:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.add(path, line, "obligations must be a list")
        return None
    result: list[Obligation] = []
    lines = raw.item_lines if isinstance(raw, LineList) else [line] * len(raw)
    ok = True
    for item, item_line in zip(raw, lines, strict=True):
        params: Any
        if isinstance(item, str):
            kind, params = item, {}
        elif isinstance(item, dict) and len(item) == 1:
            kind, params = next(iter(item.items()))
            params = params or {}
            if not isinstance(params, dict):
                problems.add(path, item_line, f"obligation {kind}: parameters must be a mapping")
                ok = False
                continue
        else:
            problems.add(path, item_line, "an obligation is a name or {name: {parameters}}")
            ok = False
            continue
        try:
            obligation = build(str(kind), params)
        except InvalidInputError as exc:
            problems.add(path, item_line, exc.detail)
            ok = False
            continue
        fields_named = getattr(obligation, "fields", ())
        if fields_named:
            known = (
                set().union(*(vocabulary.schema(c).fields for c in categories))
                if categories
                else set()
            )
            for name in fields_named:
                if name not in known:
                    problems.add(
                        path,
                        item_line,
                        f"drop-fields: no category of this rule has a field {name!r}",
                    )
                    ok = False
        result.append(obligation)
    kinds = [type(o) for o in result]
    if len(kinds) != len(set(kinds)):
        problems.add(path, line, "an obligation is listed twice")
        ok = False
    return tuple(result) if ok else None


def parse_rule(
    doc: Any, vocabulary: Vocabulary, path: Path, line: int, problems: Problems
) -> CompiledRule | None:
    if not isinstance(doc, LineDict):
        problems.add(path, line, "a rule must be a mapping with id, effect, when, reason, source")
        return None
    before = len(problems.items)
    for key in doc:
        if key not in RULE_KEYS:
            problems.add(path, doc.line_of(key), f"unknown rule key {key!r}")
    rule_id = doc.get("id")
    if not isinstance(rule_id, str) or not rule_id.strip():
        problems.add(path, doc.line, "a rule needs an id")
        rule_id = f"<rule at line {doc.line}>"
    effect = doc.get("effect")
    if effect not in EFFECTS:
        problems.add(path, doc.line_of("effect"), f"{rule_id}: effect must be allow or deny")
    for key in ("reason", "source"):
        if not isinstance(doc.get(key), str) or not doc[key].strip():
            problems.add(path, doc.line_of(key), f"{rule_id}: a rule needs a {key}")
    when = doc.get("when")
    if not isinstance(when, LineDict):
        problems.add(path, doc.line_of("when"), f"{rule_id}: a rule needs its conditions in when")
        return None
    if "action" not in when:
        problems.add(path, when.line, f"{rule_id}: every rule names its action(s)")
    patterns: dict[str, tuple[str, ...]] = {}
    covered: dict[str, frozenset[str] | None] = {}
    key_lines: dict[str, int] = {"id": doc.line_of("id")}
    for key in when:
        if key not in DIMENSIONS:
            problems.add(
                path,
                when.line_of(key),
                f"{rule_id}: unknown condition {key!r}; conditions are {', '.join(DIMENSIONS)}",
            )
    for dim in DIMENSIONS:
        if dim not in when:
            patterns[dim] = (ANY,)
            covered[dim] = None if dim == "partner_id" else vocabulary.domain_of(dim).concrete
            continue
        key_lines[dim] = when.line_of(dim)
        parsed = _parse_condition(dim, when[dim], vocabulary, path, when.line_of(dim), problems)
        if parsed is not None:
            patterns[dim], covered[dim] = parsed
    overrides = tuple(str(o) for o in _as_list(doc.get("overrides") or []))
    if overrides and effect != "deny":
        problems.add(path, doc.line_of("overrides"), f"{rule_id}: only a deny rule overrides")
    categories = covered.get("category") or frozenset()
    obligations = _parse_obligations(
        doc.get("obligations"), vocabulary, categories, path, doc.line_of("obligations"), problems
    )
    if effect == "deny" and obligations:
        problems.add(path, doc.line_of("obligations"), f"{rule_id}: a deny has no obligations")
    if effect == "allow" and obligations is not None and "action" in covered:
        have = {o.kind for o in obligations}
        for action in sorted(covered["action"] or ()):
            missing = [r for r in vocabulary.requires.get(action, ()) if r not in have]
            if missing:
                problems.add(
                    path,
                    doc.line_of("obligations"),
                    f"{rule_id}: an allow of {action} must impose {', '.join(missing)}",
                )
    if len(problems.items) > before or obligations is None:
        return None
    assert isinstance(effect, str)
    return CompiledRule(
        id=rule_id,
        effect=effect,
        reason=str(doc["reason"]).strip(),
        source=str(doc["source"]).strip(),
        obligations=obligations,
        obligations_id=obligations_id(obligations) if effect == "allow" else "none",
        patterns=patterns,
        covered=covered,
        path=path,
        line=doc.line,
        key_lines=key_lines,
        overrides=overrides,
    )
