"""The policy vocabulary, read from ``policies/vocabulary.yaml`` with file and line.

Every name a rule, a test table or a request uses must be a term here. Terms live in
domains (partner kinds, roles, processes, steps, actions, categories, legal bases,
purposes); a domain may group terms (``*_groups`` with ``members``) or nest them
(``parent``). Casbin's role managers get the same links, so a rule naming a group or a
parent covers every term under it without code in the matchers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.errors import InvalidInputError
from gateway.obligations.types import OBLIGATION_KINDS
from gateway.policy.decision import NONE, Action, Consent, Relation
from gateway.policy.schema import CategorySchema, FieldType, parse_field_type
from gateway.vocabulary import Role
from gateway.yamlsource import LineDict, SourceError, SourceProblem, load

ANY = "*"
"""The wildcard of every domain in compiled rows: a rule that leaves a dimension open."""

VOCABULARY_FILE = "vocabulary.yaml"

# domain -> (terms section, groups section, has a `none` term)
DOMAIN_SECTIONS: dict[str, tuple[str, str | None, bool]] = {
    "partner_kind": ("partner_kinds", "partner_kind_groups", True),
    "role": ("roles", "role_groups", False),
    "action": ("actions", None, False),
    "process": ("processes", "process_groups", True),
    "step": ("steps", "step_groups", True),
    "purpose": ("purposes", "purpose_groups", True),
    "category": ("categories", "category_groups", True),
    "legal_basis": ("legal_bases", "legal_basis_groups", True),
}
FIXED_DOMAINS: dict[str, tuple[str, ...]] = {
    "relation": tuple(r.value for r in Relation),
    "consent": tuple(c.value for c in Consent),
}

DIMENSION_DOMAIN: dict[str, str] = {
    "partner_kind": "partner_kind",
    "role": "role",
    "action": "action",
    "process": "process",
    "step": "step",
    "purpose": "purpose",
    "category": "category",
    "legal_basis": "legal_basis",
    "provider_kind": "partner_kind",
    "relation": "relation",
    "consent": "consent",
}
"""Request attribute -> the vocabulary domain its values come from (``partner_id`` is free)."""

INVOKED_BY = "invoked_by"
"""The key of a legal basis naming the partner kinds (or kind groups) that invoke it."""

FOREIGN_BASES_PREFIX = "niet-van-"
"""Derived legal-basis groups: ``niet-van-<kind>`` holds the bases ``<kind>`` does not invoke."""


@dataclass(frozen=True, slots=True)
class Term:
    """One name of a domain, with its label, parents and where it is defined."""

    name: str
    label: str
    line: int
    parents: tuple[str, ...] = ()
    group: bool = False
    info: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Domain:
    """The terms of one dimension and their hierarchy."""

    name: str
    terms: dict[str, Term] = field(default_factory=dict)
    _leaves: dict[str, frozenset[str]] = field(default_factory=dict)
    _ancestors: dict[str, frozenset[str]] = field(default_factory=dict)

    def finish(self) -> None:
        """Compute the leaf and ancestor sets once every term is known."""
        children: dict[str, set[str]] = {n: set() for n in self.terms}
        for term in self.terms.values():
            for parent in term.parents:
                children.setdefault(parent, set()).add(term.name)

        def leaves(name: str, seen: frozenset[str]) -> frozenset[str]:
            if name in seen:
                return frozenset()
            own = frozenset() if self.terms[name].group else frozenset({name})
            below = [leaves(c, seen | {name}) for c in children.get(name, ())]
            return own.union(*below)

        def ancestors(name: str, seen: frozenset[str]) -> frozenset[str]:
            if name in seen:
                return frozenset()
            up = [ancestors(p, seen | {name}) for p in self.terms[name].parents if p in self.terms]
            return frozenset({name}).union(*up)

        self._leaves = {n: leaves(n, frozenset()) for n in self.terms}
        self._ancestors = {n: ancestors(n, frozenset()) for n in self.terms}

    @property
    def concrete(self) -> frozenset[str]:
        """Every term a request may use (groups excluded)."""
        return frozenset(n for n, t in self.terms.items() if not t.group)

    def leaves(self, name: str) -> frozenset[str]:
        """Return the concrete terms ``name`` covers (``*`` covers all)."""
        if name == ANY:
            return self.concrete
        return self._leaves.get(name, frozenset())

    def ancestors(self, name: str) -> frozenset[str]:
        """Return ``name``, every term above it, and ``*``."""
        return self._ancestors.get(name, frozenset({name})) | {ANY}

    def links(self) -> list[tuple[str, str]]:
        """Return (child, parent) links for a Casbin role manager, top terms under ``*``."""
        result = []
        for term in self.terms.values():
            for parent in term.parents:
                result.append((term.name, parent))
            if not term.parents:
                result.append((term.name, ANY))
        return result


@dataclass
class Vocabulary:
    """Every domain, the category schemas, and the obligation requirements per action."""

    path: Path
    domains: dict[str, Domain]
    schemas: dict[str, CategorySchema]
    requires: dict[str, tuple[str, ...]]
    invoked_by: dict[str, frozenset[str]] = field(default_factory=dict)

    def domain_of(self, dimension: str) -> Domain:
        """Return the domain a request attribute's values come from."""
        return self.domains[DIMENSION_DOMAIN[dimension]]

    def term(self, domain: str, name: str) -> Term | None:
        """Return one term, or None."""
        return self.domains[domain].terms.get(name)

    @property
    def partner_kinds(self) -> frozenset[str]:
        """Return the partner kinds a partner can be registered with (not ``none``)."""
        return self.domains["partner_kind"].concrete - {NONE}

    def invokers(self, legal_basis: str) -> frozenset[str]:
        """Return the partner kinds that may invoke ``legal_basis`` (empty if none or unknown)."""
        return self.invoked_by.get(legal_basis, frozenset())

    def may_invoke(self, partner_kind: str, legal_basis: str) -> bool:
        """True when ``partner_kind`` may invoke ``legal_basis``; ``none`` needs no invoker."""
        return legal_basis == NONE or partner_kind in self.invokers(legal_basis)

    def own_bases(self, partner_kind: str) -> frozenset[str]:
        """Return the legal bases ``partner_kind`` invokes."""
        return frozenset(b for b, kinds in self.invoked_by.items() if partner_kind in kinds)

    @staticmethod
    def foreign_bases_group(partner_kind: str) -> str:
        """Return the name of the derived group of bases ``partner_kind`` does not invoke."""
        return FOREIGN_BASES_PREFIX + partner_kind

    def schema(self, category: str) -> CategorySchema:
        """Return a category's field schema (empty for structural categories).

        Raises KeyError for an unknown category.
        """
        if category not in self.domains["category"].terms:
            raise KeyError(category)
        return self.schemas.get(category, CategorySchema(category, {}))

    def unknown(self, dimension: str, value: str) -> str | None:
        """Return why ``value`` is not a usable request value of ``dimension``, or None."""
        if dimension == "partner_id":
            return None if value and value != ANY else "partner_id must name one partner"
        domain = self.domain_of(dimension)
        term = domain.terms.get(value)
        if term is None:
            known = ", ".join(sorted(domain.concrete))
            return f"unknown {dimension.replace('_', ' ')}; known: {known}"
        if term.group:
            return f"the {dimension.replace('_', ' ')} is a group; name one term"
        return None


def _label(entry: Any) -> str:
    if isinstance(entry, dict):
        return str(entry.get("label", ""))
    return ""


def _names(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


def load_vocabulary(policies_dir: Path) -> Vocabulary:
    """Return the vocabulary of a policy pack.

    Raises SourceError listing every mistake as ``file:line: message``: unknown
    sections' members, duplicate names across a domain and its groups, parents or
    members that do not exist, unknown field types and obligation names.
    """
    path = policies_dir / VOCABULARY_FILE
    doc = load(path)
    problems: list[SourceProblem] = []
    if not isinstance(doc, LineDict):
        raise SourceError([SourceProblem(path, 1, "the vocabulary must be a mapping")])

    def problem(line: int, message: str) -> None:
        problems.append(SourceProblem(path, line, message))

    known_sections = (
        {s for s, _, _ in DOMAIN_SECTIONS.values()}
        | {g for _, g, _ in DOMAIN_SECTIONS.values() if g}
        | {"obligations"}
    )
    for key in doc:
        if key not in known_sections:
            problem(doc.line_of(key), f"unknown section {key!r}")

    domains: dict[str, Domain] = {}
    schemas: dict[str, CategorySchema] = {}
    requires: dict[str, tuple[str, ...]] = {}
    for dname, (section, groups, has_none) in DOMAIN_SECTIONS.items():
        domain = Domain(dname)
        entries = doc.get(section)
        if not isinstance(entries, LineDict) or not entries:
            problem(doc.line_of(section), f"section {section!r} must define at least one term")
            entries = LineDict()
            entries.line, entries.key_lines = doc.line_of(section), {}
        for name, entry in entries.items():
            line = entries.line_of(name)
            if entry is not None and not isinstance(entry, dict):
                problem(line, f"{section}.{name} must be a mapping (label, ...)")
                entry = {}
            info = dict(entry or {})
            parents = tuple(_names(info.pop("parent", None)))
            # A category without fields only structures others: rules may name it, records not.
            structural = dname == "category" and "fields" not in info
            domain.terms[str(name)] = Term(
                str(name), _label(entry), line, parents, structural, info
            )
            if dname == "category" and "fields" in info:
                fields = info["fields"]
                parsed: dict[str, FieldType] = {}
                if not isinstance(fields, LineDict):
                    problem(line, f"categories.{name}.fields must be a mapping of field: type")
                else:
                    for fname, ftype in fields.items():
                        try:
                            parsed[str(fname)] = parse_field_type(str(ftype))
                        except ValueError as exc:
                            problem(fields.line_of(fname), f"categories.{name}.{fname}: {exc}")
                schemas[str(name)] = CategorySchema(str(name), parsed)
            if dname == "action":
                if str(name) not in {a.value for a in Action}:
                    problem(line, f"action {name!r} is not one the gateway knows")
                wanted = _names(info.get("requires"))
                for ob in wanted:
                    if ob not in OBLIGATION_KINDS:
                        problem(line, f"actions.{name}.requires: unknown obligation {ob!r}")
                requires[str(name)] = tuple(wanted)
        if has_none and NONE not in domain.terms:
            domain.terms[NONE] = Term(NONE, "not applicable", 0)
        if groups is not None:
            gentries = doc.get(groups) or {}
            if not isinstance(gentries, LineDict):
                problem(doc.line_of(groups), f"section {groups!r} must be a mapping")
                gentries = LineDict()
                gentries.line, gentries.key_lines = 0, {}
            for gname, gentry in gentries.items():
                line = gentries.line_of(gname)
                if str(gname) in domain.terms:
                    problem(line, f"group {gname!r} has the name of a term of {section}")
                    continue
                info = dict(gentry or {}) if isinstance(gentry, dict) else {}
                members = _names(info.pop("members", None))
                if not members:
                    problem(line, f"group {gname!r} needs members")
                domain.terms[str(gname)] = Term(str(gname), _label(gentry), line, (), True, info)
                mline = gentry.line_of("members") if isinstance(gentry, LineDict) else line
                for member in members:
                    term = domain.terms.get(member)
                    if term is None or term.group:
                        problem(mline, f"group {gname!r}: unknown {section} term {member!r}")
                        continue
                    domain.terms[member] = Term(
                        term.name,
                        term.label,
                        term.line,
                        (*term.parents, str(gname)),
                        term.group,
                        term.info,
                    )
        domains[dname] = domain

    for domain in domains.values():
        for term in domain.terms.values():
            for parent in term.parents:
                if parent not in domain.terms:
                    problem(term.line, f"{term.name}: unknown parent {parent!r}")
        domain.finish()
    invoked_by = _invoked_by(doc, path, domains, problems)
    for dname, values in FIXED_DOMAINS.items():
        fixed = Domain(dname)
        for value in values:
            fixed.terms[value] = Term(value, value, 0)
        fixed.finish()
        domains[dname] = fixed

    for action in Action:
        if action.value not in domains["action"].terms:
            problem(doc.line_of("actions"), f"actions must define {action.value!r}")
    roles = domains["role"].concrete
    for role in Role:
        if role.value not in roles:
            problem(doc.line_of("roles"), f"roles must define {role.value!r}")
    for extra in roles - {r.value for r in Role}:
        problem(domains["role"].terms[extra].line, f"role {extra!r} is not one the gateway knows")

    obligations = doc.get("obligations")
    if isinstance(obligations, LineDict):
        for name in obligations:
            if name not in OBLIGATION_KINDS:
                problem(obligations.line_of(name), f"unknown obligation {name!r}")
        for kind in OBLIGATION_KINDS:
            if kind not in obligations:
                problem(obligations.line, f"the obligation catalogue misses {kind!r}")
    else:
        problem(doc.line_of("obligations"), "section 'obligations' (the catalogue) is missing")

    if problems:
        raise SourceError(problems)
    return Vocabulary(
        path=path, domains=domains, schemas=schemas, requires=requires, invoked_by=invoked_by
    )


def partner_kinds(policies_dir: Path) -> frozenset[str]:
    """Return the partner kinds defined in ``policies_dir/vocabulary.yaml``.

    Raises InvalidInputError (with every ``file:line: message``) if the vocabulary is broken.
    """
    try:
        return load_vocabulary(policies_dir).partner_kinds
    except SourceError as exc:
        raise InvalidInputError(f"the vocabulary is not valid:\n{exc}") from exc


def _invoked_by(
    doc: LineDict, path: Path, domains: dict[str, Domain], problems: list[SourceProblem]
) -> dict[str, frozenset[str]]:
    """Return legal basis -> the partner kinds that invoke it, and derive the foreign groups.

    Every legal basis must name its invokers (partner kinds or kind groups, never
    ``none``); a group of legal bases names none itself. For each partner kind the legal
    basis domain gets the group ``niet-van-<kind>`` of the bases that kind does not
    invoke, which the compiler's guard rules use. Mistakes are added to ``problems``.
    """
    kinds, bases = domains["partner_kind"], domains["legal_basis"]
    section = doc.get("legal_bases")
    entries = section if isinstance(section, LineDict) else LineDict()
    result: dict[str, frozenset[str]] = {}
    for name, term in bases.terms.items():
        line = term.line
        entry = entries.get(name)
        key_line = entry.line_of(INVOKED_BY) if isinstance(entry, LineDict) else line
        if term.group:
            if INVOKED_BY in term.info:
                problems.append(
                    SourceProblem(
                        path, key_line, f"{name}: invoked_by belongs on a legal basis, not a group"
                    )
                )
            continue
        if name == NONE:
            continue
        named = _names(term.info.get(INVOKED_BY))
        if not named:
            problems.append(
                SourceProblem(
                    path,
                    line,
                    f"legal basis {name!r} must name the partner kinds that invoke it "
                    "(invoked_by: [...])",
                )
            )
            continue
        covered: set[str] = set()
        for kind in named:
            if kind not in kinds.terms or kind == NONE:
                problems.append(
                    SourceProblem(
                        path,
                        key_line,
                        f"legal basis {name!r}: invoked_by names unknown partner kind {kind!r}; "
                        f"known: {describe(kinds.concrete - {NONE})}",
                    )
                )
                continue
            covered |= kinds.leaves(kind)
        result[name] = frozenset(covered)
    if problems:
        return result
    every_basis = bases.concrete - {NONE}
    for kind in sorted(kinds.concrete - {NONE}):
        group = Vocabulary.foreign_bases_group(kind)
        if group in bases.terms:
            problems.append(
                SourceProblem(
                    path,
                    bases.terms[group].line,
                    f"{group!r} is the derived group of the legal bases {kind!r} does not "
                    "invoke; choose another name",
                )
            )
            continue
        foreign = sorted(b for b in every_basis if kind not in result.get(b, frozenset()))
        if not foreign:
            continue
        label = kinds.terms[kind].label or kind
        bases.terms[group] = Term(
            group, f"Grondslagen die {label} niet inroept (afgeleid van invoked_by)", 0, (), True
        )
        for basis in foreign:
            term = bases.terms[basis]
            bases.terms[basis] = Term(
                term.name, term.label, term.line, (*term.parents, group), term.group, term.info
            )
    bases.finish()
    return result


def describe(values: Iterable[str]) -> str:
    """Return values as a short, readable list for messages."""
    items = sorted(values)
    if len(items) > 6:
        return ", ".join(items[:6]) + f", ... ({len(items)} in all)"
    return ", ".join(items)
