"""The compiler: policy YAML -> checked rules -> ordered Casbin rows, with a content hash.

Every name is checked against the vocabulary; every mistake is reported as
``file:line: message`` (a typo never becomes a rule that silently never matches).
Rows are ordered deny before allow and specific before general, and each allow row
carries the id of its complete obligation set. Overlapping allow and deny rules, and
allow rules that overlap with different obligations where neither is more specific,
are errors: the reader of the pack must be able to see which rule decides.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.errors import InvalidInputError
from gateway.obligations.types import Obligation, build, to_json_list
from gateway.policy.decision import (
    BASIS_INVOKING_ACTIONS,
    DIMENSIONS,
    NONE,
    OWN_BASIS_RULE_PREFIX,
    PROVIDER_BASIS_RULE_PREFIX,
    Action,
    DecisionRequest,
)
from gateway.policy.vocabulary import (
    ANY,
    DIMENSION_DOMAIN,
    INVOKED_BY,
    Vocabulary,
    describe,
    load_vocabulary,
)
from gateway.yamlsource import LineDict, LineList, SourceError, SourceProblem, load

MODEL_FILE = "model.conf"
RULES_DIR = "rules"
EFFECTS = ("deny", "allow")
RULE_KEYS = frozenset({"id", "effect", "when", "obligations", "reason", "source", "overrides"})

# Casbin role manager -> vocabulary domain. Must agree with policies/model.conf.
ROLE_MANAGERS: dict[str, str] = {
    "g": "partner_kind",
    "g2": "role",
    "g3": "process",
    "g4": "step",
    "g5": "purpose",
    "g6": "category",
    "g7": "legal_basis",
    "g8": "relation",
    "g9": "consent",
}
REQUEST_TOKENS = (
    "pid",
    "kind",
    "role",
    "act",
    "proc",
    "step",
    "purp",
    "cat",
    "basis",
    "prov",
    "rel",
    "cons",
)
POLICY_TOKENS = (*REQUEST_TOKENS, "eft", "rule", "obl")
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


@dataclass(frozen=True)
class CompiledPolicy:
    """A checked, ordered policy: rules, Casbin rows and links, obligations and its version."""

    version: str
    vocabulary: Vocabulary
    model_text: str
    rules: tuple[CompiledRule, ...]
    rows: tuple[tuple[str, ...], ...]
    links: Mapping[str, tuple[tuple[str, str], ...]]
    obligations: Mapping[str, tuple[Obligation, ...]]
    sources: Mapping[str, str]

    def rule(self, rule_id: str) -> CompiledRule:
        """Return a rule by id; raise KeyError if there is none."""
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)


def _obligations_id(obligations: tuple[Obligation, ...]) -> str:
    if not obligations:
        return "none"
    body = json.dumps(to_json_list(obligations), sort_keys=True, separators=(",", ":"))
    return "ob-" + hashlib.sha256(body.encode()).hexdigest()[:12]


class _Problems:
    def __init__(self) -> None:
        self.items: list[SourceProblem] = []

    def add(self, path: Path, line: int, message: str) -> None:
        self.items.append(SourceProblem(path, line, message))


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _parse_condition(
    dim: str, value: Any, vocabulary: Vocabulary, path: Path, line: int, problems: _Problems
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
    problems: _Problems,
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


def _parse_rule(
    doc: Any, vocabulary: Vocabulary, path: Path, line: int, problems: _Problems
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
        obligations_id=_obligations_id(obligations) if effect == "allow" else "none",
        patterns=patterns,
        covered=covered,
        path=path,
        line=doc.line,
        key_lines=key_lines,
        overrides=overrides,
    )


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


_BASIS_SOURCE = (
    "policies/vocabulary.yaml, legal_bases.*.invoked_by; AVG art. 5 en 6 (rechtmatigheid): "
    "elke verstrekking rust op een grondslag van de verstrekkende partner"
)


def _guard_rule(
    vocabulary: Vocabulary,
    rule_id: str,
    reason: str,
    kind_dimension: str,
    kind: str,
    actions: Iterable[str],
) -> CompiledRule:
    """Return a deny rule for ``kind`` (as asker or as provider) with a foreign legal basis."""
    group = vocabulary.foreign_bases_group(kind)
    chosen = {
        "action": tuple(sorted(actions)),
        kind_dimension: (kind,),
        "legal_basis": (group,),
    }
    patterns: dict[str, tuple[str, ...]] = {}
    covered: dict[str, frozenset[str] | None] = {}
    for dim in DIMENSIONS:
        patterns[dim] = chosen.get(dim, (ANY,))
        if dim == "partner_id":
            covered[dim] = None
        elif dim == "legal_basis":
            covered[dim] = vocabulary.domains["legal_basis"].leaves(group)
        elif dim in chosen:
            covered[dim] = frozenset(chosen[dim])
        else:
            covered[dim] = vocabulary.domain_of(dim).concrete
    line = vocabulary.domains["partner_kind"].terms[kind].line
    return CompiledRule(
        id=rule_id,
        effect="deny",
        reason=reason,
        source=_BASIS_SOURCE,
        obligations=(),
        obligations_id="none",
        patterns=patterns,
        covered=covered,
        path=vocabulary.path,
        line=line,
        key_lines={"id": line},
        generated=True,
    )


def basis_guard_rules(vocabulary: Vocabulary) -> list[CompiledRule]:
    """Return the deny rules that keep every legal basis with the kinds that invoke it.

    Per partner kind: ``eigen-grondslag-<kind>`` refuses the kind submitting, recording
    or providing (``BASIS_INVOKING_ACTIONS``) under a basis it does not invoke, and
    ``grondslag-van-verstrekker-<kind>`` refuses any action on data that kind provided
    under a basis it does not invoke. Both follow from ``invoked_by`` in the vocabulary.
    """
    rules: list[CompiledRule] = []
    kinds = vocabulary.domains["partner_kind"]
    for kind in sorted(vocabulary.partner_kinds):
        if vocabulary.foreign_bases_group(kind) not in vocabulary.domains["legal_basis"].terms:
            continue  # the kind invokes every basis: nothing to refuse
        label = kinds.terms[kind].label or kind
        own = ", ".join(sorted(vocabulary.own_bases(kind))) or "none at all"
        rules.append(
            _guard_rule(
                vocabulary,
                OWN_BASIS_RULE_PREFIX + kind,
                f"A partner of kind {kind} ({label}) submits, records and provides only under "
                f"a legal basis of its own ({own}); a legal basis of another kind of partner "
                "is not its to invoke.",
                "partner_kind",
                kind,
                (a.value for a in BASIS_INVOKING_ACTIONS),
            )
        )
        rules.append(
            _guard_rule(
                vocabulary,
                PROVIDER_BASIS_RULE_PREFIX + kind,
                f"Data provided by a partner of kind {kind} ({label}) rests only on a legal "
                f"basis of its own ({own}); a legal basis of another kind of partner cannot "
                "cover it.",
                "provider_kind",
                kind,
                (a.value for a in Action),
            )
        )
    return rules


def check_invoked_bases(
    rules: Sequence[CompiledRule], vocabulary: Vocabulary
) -> list[SourceProblem]:
    """Return a problem for every allow rule that lets a kind invoke a basis not its own.

    For the actions in ``BASIS_INVOKING_ACTIONS`` every partner kind the rule covers must
    invoke every legal basis it covers (leaving ``legal_basis`` out covers them all); a
    rule naming both ``provider_kind`` and ``legal_basis`` must pair them rightly too.
    """
    problems: list[SourceProblem] = []
    invoking = {a.value for a in BASIS_INVOKING_ACTIONS}
    for rule in rules:
        if not rule.allows or rule.generated:
            continue
        bases = (rule.covered["legal_basis"] or frozenset()) - {NONE}
        kinds: set[str] = set()
        if invoking & (rule.covered["action"] or frozenset()):
            kinds |= rule.covered["partner_kind"] or frozenset()
        if "provider_kind" in rule.key_lines and "legal_basis" in rule.key_lines:
            kinds |= rule.covered["provider_kind"] or frozenset()
        wrong: dict[str, list[str]] = {}
        for basis in sorted(bases):
            foreign = sorted(k for k in kinds - {NONE} if not vocabulary.may_invoke(k, basis))
            if foreign:
                wrong[basis] = foreign
        if not wrong:
            continue
        shown = "; ".join(
            f"{basis} is invoked by {describe(vocabulary.invokers(basis))}, not by "
            f"{describe(foreign)}"
            for basis, foreign in wrong.items()
        )
        open_basis = "legal_basis" not in rule.key_lines
        line = rule.key_lines.get("legal_basis", rule.key_lines.get("id", rule.line))
        problems.append(
            SourceProblem(
                rule.path,
                line,
                f"allow rule {rule.id!r} lets a partner kind invoke a legal basis that is not "
                f"its own{' (it leaves legal_basis open)' if open_basis else ''}: {shown}. "
                f"A legal basis belongs to the kinds its {INVOKED_BY} names in the "
                "vocabulary; narrow partner_kind or legal_basis",
            )
        )
    return problems


def _model_problems(path: Path, text: str) -> list[SourceProblem]:
    problems = []
    for section, expected in (("r", REQUEST_TOKENS), ("p", POLICY_TOKENS)):
        found = None
        for number, line in enumerate(text.splitlines(), start=1):
            stripped = line.strip()
            if stripped.startswith(f"{section} ") or stripped.startswith(f"{section}="):
                tokens = tuple(t.strip() for t in stripped.split("=", 1)[1].split(","))
                found = (number, tokens)
        if found is None:
            problems.append(SourceProblem(path, 1, f"the model defines no {section} = ..."))
        elif found[1] != expected:
            problems.append(
                SourceProblem(
                    path,
                    found[0],
                    f"{section} must be {', '.join(expected)} (the gateway's attributes)",
                )
            )
    for number, line in enumerate(text.splitlines(), start=1):
        if "eval(" in line and not line.lstrip().startswith("#"):
            problems.append(SourceProblem(path, number, "the model must not use eval()"))
    return problems


def compile_policy(policies_dir: Path, *, overlaps: bool = True) -> CompiledPolicy:
    """Return the compiled policy pack in ``policies_dir``.

    Raises SourceError with every problem found (``file:line: message``).
    ``overlaps=False`` skips the quadratic overlap checks (benchmarks only).
    """
    vocabulary = load_vocabulary(policies_dir)
    problems = _Problems()
    model_path = policies_dir / MODEL_FILE
    try:
        model_text = model_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SourceError([SourceProblem(model_path, 0, f"cannot read: {exc.strerror}")]) from exc
    problems.items.extend(_model_problems(model_path, model_text))
    sources = {MODEL_FILE: model_text, vocabulary.path.name: vocabulary.path.read_text("utf-8")}
    rule_files = sorted((policies_dir / RULES_DIR).glob("*.yaml"))
    if not rule_files:
        problems.add(policies_dir / RULES_DIR, 0, "the pack has no rule files")
    docs: list[tuple[Path, Any]] = []
    for path in rule_files:
        try:
            docs.append((path, load(path)))
        except SourceError as exc:
            problems.items.extend(exc.problems)
        sources[f"{RULES_DIR}/{path.name}"] = path.read_text("utf-8")
    return compile_documents(vocabulary, model_text, docs, sources, problems.items, overlaps)


def compile_documents(
    vocabulary: Vocabulary,
    model_text: str,
    docs: Iterable[tuple[Path, Any]],
    sources: Mapping[str, str],
    earlier: Sequence[SourceProblem] = (),
    overlaps: bool = True,
) -> CompiledPolicy:
    """Return the policy compiled from parsed rule documents; raise SourceError on problems."""
    problems = _Problems()
    problems.items.extend(earlier)
    rules: list[CompiledRule] = []
    seen: dict[str, CompiledRule] = {}
    for path, doc in docs:
        if not isinstance(doc, LineDict) or not isinstance(doc.get("rules"), LineList):
            problems.add(
                path, getattr(doc, "line", 1), "a rule file is a mapping with a rules: list"
            )
            continue
        unknown = [k for k in doc if k != "rules"]
        for key in unknown:
            problems.add(path, doc.line_of(key), f"unknown top-level key {key!r}")
        for item, line in zip(doc["rules"], doc["rules"].item_lines, strict=True):
            rule = _parse_rule(item, vocabulary, path, line, problems)
            if rule is None:
                continue
            if rule.id in seen:
                problems.add(
                    path, line, f"rule id {rule.id!r} is also used at {seen[rule.id].where}"
                )
                continue
            seen[rule.id] = rule
            rules.append(rule)
    for rule in rules:
        for target in rule.overrides:
            if target not in seen:
                problems.add(rule.path, rule.line, f"{rule.id}: overrides unknown rule {target!r}")
    guards = basis_guard_rules(vocabulary)
    for rule in rules:
        if rule.id.startswith((OWN_BASIS_RULE_PREFIX, PROVIDER_BASIS_RULE_PREFIX)):
            problems.add(
                rule.path,
                rule.key_lines.get("id", rule.line),
                f"rule id {rule.id!r}: ids starting with {OWN_BASIS_RULE_PREFIX!r} or "
                f"{PROVIDER_BASIS_RULE_PREFIX!r} are reserved for the legal-basis guards the "
                "vocabulary derives; choose another id",
            )
    if not problems.items:
        problems.items.extend(check_invoked_bases(rules, vocabulary))
    if overlaps and not problems.items:
        problems.items.extend(check_overlaps(rules))
    if problems.items:
        raise SourceError(sorted(problems.items, key=lambda p: (str(p.path), p.line)))

    rules = [*rules, *guards]
    order = {id(r): i for i, r in enumerate(rules)}
    ordered = sorted(
        rules, key=lambda r: (r.effect != "deny", round(r.specificity(), 9), order[id(r)])
    )
    rows = tuple(tuple(row) for rule in ordered for row in rule.rows())
    links = {
        name: tuple(sorted(vocabulary.domains[domain].links()))
        for name, domain in ROLE_MANAGERS.items()
    }
    obligations = {r.obligations_id: r.obligations for r in ordered if r.allows}
    obligations["none"] = ()
    body = {
        "model": model_text,
        "rows": rows,
        "links": links,
        "obligations": {k: to_json_list(v) for k, v in sorted(obligations.items())},
        "rules": [[r.id, r.effect, r.reason, r.source] for r in ordered],
    }
    digest = hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    ).hexdigest()
    return CompiledPolicy(
        version=digest,
        vocabulary=vocabulary,
        model_text=model_text,
        rules=tuple(ordered),
        rows=rows,
        links=links,
        obligations=obligations,
        sources=dict(sources),
    )
