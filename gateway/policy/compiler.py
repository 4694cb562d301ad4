"""The compiler: policy YAML -> checked rules -> ordered Casbin rows, with a content hash.

Every name is checked against the vocabulary; every mistake is reported as
``file:line: message`` (a typo never becomes a rule that silently never matches).
Rows are ordered deny before allow and specific before general, and each allow row
carries the id of its complete obligation set. One rule is parsed in
``gateway.policy.rules``; the rules are checked as a set in ``gateway.policy.overlaps``
and ``gateway.policy.guards`` (which also derives the legal-basis deny rules).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.obligations.types import Obligation, to_json_list
from gateway.policy.decision import OWN_BASIS_RULE_PREFIX, PROVIDER_BASIS_RULE_PREFIX
from gateway.policy.guards import basis_guard_rules, check_invoked_bases
from gateway.policy.overlaps import check_overlaps
from gateway.policy.register import (
    EMPTY,
    REGISTER_FILE,
    Register,
    check_legal_bases,
    parse_register,
)
from gateway.policy.rules import CompiledRule, Problems, parse_rule
from gateway.policy.vocabulary import Vocabulary, load_vocabulary
from gateway.yamlsource import LineDict, LineList, SourceError, SourceProblem, load

__all__ = [
    "MODEL_FILE",
    "ROLE_MANAGERS",
    "RULES_DIR",
    "CompiledPolicy",
    "CompiledRule",
    "compile_documents",
    "compile_policy",
]

MODEL_FILE = "model.conf"
RULES_DIR = "rules"

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
    register: Register = EMPTY

    def rule(self, rule_id: str) -> CompiledRule:
        """Return a rule by id; raise KeyError if there is none."""
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)


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
    problems = Problems()
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
    register_doc: tuple[Path, Any] | None = None
    register_path = policies_dir / REGISTER_FILE
    if register_path.exists():
        try:
            register_doc = (register_path, load(register_path))
        except SourceError as exc:
            problems.items.extend(exc.problems)
        sources[REGISTER_FILE] = register_path.read_text("utf-8")
    return compile_documents(
        vocabulary, model_text, docs, sources, problems.items, overlaps, register_doc
    )


def compile_documents(
    vocabulary: Vocabulary,
    model_text: str,
    docs: Iterable[tuple[Path, Any]],
    sources: Mapping[str, str],
    earlier: Sequence[SourceProblem] = (),
    overlaps: bool = True,
    register_doc: tuple[Path, Any] | None = None,
) -> CompiledPolicy:
    """Return the policy compiled from parsed rule documents; raise SourceError on problems.

    ``register_doc`` is the parsed register of processing activities (``register.yaml``),
    checked against the vocabulary; its content is part of the version hash.
    """
    problems = Problems()
    problems.items.extend(earlier)
    problems.items.extend(check_legal_bases(vocabulary, required=register_doc is not None))
    register = EMPTY
    if register_doc is not None:
        try:
            register = parse_register(*register_doc, vocabulary)
        except SourceError as exc:
            problems.items.extend(exc.problems)
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
            rule = parse_rule(item, vocabulary, path, line, problems)
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
    if register_doc is not None:
        body["register"] = register.digest()
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
        register=register,
    )
