"""Page models: turn policy data into what the templates show, so templates hold no logic.

Labels come from the pack's vocabulary (Dutch where the partners use Dutch terms), with
the term itself beside them, so a privacy officer can read a rule without the YAML.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import yaml

from gateway.clock import as_utc
from gateway.errors import InvalidInputError
from gateway.policy.decision import NONE
from gateway.policy.pack import Pack, PackAnalysis
from gateway.policy.simulate import Simulation
from gateway.policy.vocabulary import DIMENSION_DOMAIN, Vocabulary
from gateway.schemas.base import EARLIEST, LATEST

ATTRIBUTE_LABELS: dict[str, str] = {
    "partner_id": "Partner",
    "partner_kind": "Soort partner · partner kind",
    "role": "Rol · role",
    "action": "Handeling · action",
    "process": "Werkproces · process",
    "step": "Stap · step",
    "purpose": "Doel · purpose",
    "category": "Gegevenscategorie · data category",
    "legal_basis": "Grondslag · legal basis",
    "provider_kind": "Verstrekker · provider",
    "relation": "Eigen of andermans gegevens · relation",
    "consent": "Toestemming verstrekker · consent",
}
EFFECT_LABELS = {"allow": "Toestaan · allow", "deny": "Weigeren · deny"}
RELATION_LABELS = {"own": "eigen gegevens", "other": "gegevens van een ander", NONE: "n.v.t."}
CONSENT_LABELS = {"given": "gegeven", "absent": "ontbreekt", "not-needed": "niet nodig"}
FLIP_LABELS = {
    "allow->deny": "toegestaan → geweigerd · allow → deny",
    "deny->allow": "geweigerd → toegestaan · deny → allow",
    "obligations-changed": "andere verplichtingen · obligations changed",
}
CHANGE_LABELS = {
    "added": "nieuw · added",
    "removed": "verwijderd · removed",
    "changed": "gewijzigd · changed",
}


@dataclass(frozen=True, slots=True)
class TermView:
    """A vocabulary term with its label."""

    name: str
    label: str


@dataclass(frozen=True, slots=True)
class ConditionView:
    """One condition of a rule: the attribute and the terms it admits (or excludes)."""

    attribute: str
    label: str
    negated: bool
    terms: tuple[TermView, ...]


@dataclass(frozen=True, slots=True)
class RuleView:
    """A rule as the workbench shows it."""

    id: str
    effect: str
    effect_label: str
    conditions: tuple[ConditionView, ...]
    obligations: tuple[str, ...]
    reason: str
    source: str
    where: str
    overrides: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FileView:
    """The rules of one file, with the comment at the top of the file as its introduction."""

    path: str
    intro: str
    rules: tuple[RuleView, ...]


def term_label(vocabulary: Vocabulary, attribute: str, name: str) -> str:
    """Return the label of a term of ``attribute`` (the name itself if it has none)."""
    if attribute == "relation":
        return RELATION_LABELS.get(name, name)
    if attribute == "consent":
        return CONSENT_LABELS.get(name, name)
    domain = DIMENSION_DOMAIN.get(attribute)
    term = vocabulary.term(domain, name) if domain else None
    return term.label if term is not None and term.label else name


def _terms(vocabulary: Vocabulary, attribute: str, value: Any) -> tuple[TermView, ...]:
    names = value if isinstance(value, list) else [value]
    return tuple(TermView(str(n), term_label(vocabulary, attribute, str(n))) for n in names)


def condition_views(vocabulary: Vocabulary, when: dict[str, Any]) -> tuple[ConditionView, ...]:
    """Return the conditions of a rule in the order of the request attributes."""
    result = []
    for attribute, label in ATTRIBUTE_LABELS.items():
        if attribute not in when:
            continue
        value = when[attribute]
        negated = isinstance(value, dict) and "not" in value
        inner = value["not"] if negated else value
        result.append(
            ConditionView(attribute, label, negated, _terms(vocabulary, attribute, inner))
        )
    return tuple(result)


def obligation_labels(pack: Pack) -> dict[str, str]:
    """Return obligation kind -> label from the pack's vocabulary."""
    doc = yaml.safe_load(pack.files.get("vocabulary.yaml", "")) or {}
    catalogue = doc.get("obligations") or {}
    return {str(k): str((v or {}).get("label", k)) for k, v in catalogue.items()}


def obligation_text(item: Any, labels: dict[str, str]) -> str:
    """Return one obligation as ``label (parameters)``."""
    if isinstance(item, dict) and len(item) == 1:
        kind, params = next(iter(item.items()))
        label = labels.get(str(kind), str(kind))
        if params:
            rendered = ", ".join(f"{k}: {_plain(v)}" for k, v in dict(params).items())
            return f"{label} ({kind}; {rendered})"
        return f"{label} ({kind})"
    return f"{labels.get(str(item), str(item))} ({item})"


def _plain(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _intro(text: str) -> str:
    lines = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    return " ".join(part for part in lines if part)


def rule_files(analysis: PackAnalysis) -> list[FileView]:
    """Return the pack's rules grouped by file (in file and line order) for reading."""
    vocabulary = analysis.compiled.vocabulary
    labels = obligation_labels(analysis.pack)
    files: dict[str, list[RuleView]] = {}
    for rule in sorted(analysis.rules, key=lambda r: (r.file, r.line)):
        files.setdefault(rule.file, []).append(
            RuleView(
                id=rule.id,
                effect=rule.effect,
                effect_label=EFFECT_LABELS.get(rule.effect, rule.effect),
                conditions=condition_views(vocabulary, dict(rule.when)),
                obligations=tuple(obligation_text(o, labels) for o in rule.obligations),
                reason=rule.reason,
                source=rule.source,
                where=f"{rule.file}:{rule.line}",
                overrides=rule.overrides,
            )
        )
    return [
        FileView(path, _intro(analysis.pack.files.get(path, "")), tuple(rules))
        for path, rules in files.items()
    ]


def value_text(value: Any) -> str:
    """Return a field value of a rule diff as short readable text (``—`` when unset)."""
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class DiffLine:
    """One line of a unified diff with its CSS class (add, del, hunk, meta, ctx)."""

    css: str
    text: str


def diff_lines(unified: str) -> list[DiffLine]:
    """Return the lines of a unified diff, classified for colouring."""
    result = []
    for line in unified.splitlines():
        if line.startswith(("+++", "---")):
            css = "meta"
        elif line.startswith("@@"):
            css = "hunk"
        elif line.startswith("+"):
            css = "add"
        elif line.startswith("-"):
            css = "del"
        else:
            css = "ctx"
        result.append(DiffLine(css, line))
    return result


def step_label(vocabulary: Vocabulary, step: str) -> str:
    """Return ``3 · Informatie delen & analyseren`` for a step (``none`` as n.v.t.)."""
    if step == NONE:
        return "geen stap · none"
    return f"{step} · {term_label(vocabulary, 'step', step)}"


@dataclass(frozen=True)
class Period:
    """A simulation period: whole UTC days from ``first`` to ``last`` inclusive."""

    first: date
    last: date

    @property
    def since(self) -> datetime:
        """Return the start (00:00 UTC of the first day)."""
        return as_utc(datetime.combine(self.first, time()))

    @property
    def until(self) -> datetime:
        """Return the end (00:00 UTC of the day after the last day, exclusive)."""
        return as_utc(datetime.combine(self.last + timedelta(days=1), time()))


def parse_period(first: str | None, last: str | None, today: date, days: int = 30) -> Period:
    """Return the period of two ``YYYY-MM-DD`` fields (default: the last ``days`` days).

    Raises InvalidInputError for a malformed date.
    """
    try:
        end = date.fromisoformat(last) if last else today
        start = date.fromisoformat(first) if first else end - timedelta(days=days - 1)
        if not all(EARLIEST.date() <= day <= LATEST.date() for day in (start, end)):
            raise ValueError("out of range")
    except (ValueError, OverflowError) as exc:
        raise InvalidInputError("dates look like 2026-11-23", field="since") from exc
    return Period(start, end)


@dataclass(frozen=True)
class EditorFile:
    """One editable file in the proposal editor, with the lint problems found in it."""

    path: str
    text: str
    changed: bool
    deleted: bool = False
    problems: list[dict[str, Any]] = field(default_factory=list)

    @property
    def open(self) -> bool:
        """True when the editor should show this file unfolded."""
        return self.changed or bool(self.problems)


def problem_context(text: str, line: int) -> str:
    """Return the line a problem points at (empty when the line does not exist)."""
    lines = text.splitlines()
    return lines[line - 1] if 0 < line <= len(lines) else ""


@dataclass(frozen=True, slots=True)
class GroupRow:
    """One row of a flip grouping: the group's label and its counts per kind."""

    label: str
    counts: tuple[int, ...]
    total: int


@dataclass(frozen=True, slots=True)
class FlipRow:
    """One flip as a table row."""

    decided_at: str
    partner: str
    role: str
    action: str
    step: str
    category: str
    kind: str
    before: str
    after: str


@dataclass(frozen=True)
class SimulationView:
    """A simulation ready to show: totals, groups by partner, step and rule, the flips."""

    period: Period
    replayed: int
    distinct_requests: int
    unreplayable: int
    flip_count: int
    truncated: bool
    kinds: tuple[str, ...]
    counts: tuple[int, ...]
    by_partner: tuple[GroupRow, ...]
    by_step: tuple[GroupRow, ...]
    by_rule: tuple[GroupRow, ...]
    flips: tuple[FlipRow, ...]


def _outcome(allowed: bool, rule_id: str, obligations: tuple[dict[str, Any], ...]) -> str:
    text = f"{'allow' if allowed else 'deny'} ({rule_id})"
    if obligations:
        text += " + " + ", ".join(str(o.get("kind", o)) for o in obligations)
    return text


def simulation_view(sim: Simulation, period: Period, vocabulary: Vocabulary) -> SimulationView:
    """Return a ``Simulation`` laid out for the page, with vocabulary labels."""
    kinds = tuple(FLIP_LABELS)

    def rows(
        groups: dict[str, dict[str, int]], label: Callable[[str], str]
    ) -> tuple[GroupRow, ...]:
        return tuple(
            GroupRow(label(name), tuple(c.get(k, 0) for k in kinds), sum(c.values()))
            for name, c in groups.items()
        )

    return SimulationView(
        period=period,
        replayed=sim.replayed,
        distinct_requests=sim.distinct_requests,
        unreplayable=sim.unreplayable,
        flip_count=sim.flip_count,
        truncated=sim.truncated,
        kinds=tuple(FLIP_LABELS[k] for k in kinds),
        counts=tuple(sim.counts.get(k, 0) for k in kinds),
        by_partner=rows(sim.by_partner, lambda n: n),
        by_step=rows(sim.by_step, lambda n: step_label(vocabulary, n)),
        by_rule=rows(sim.by_rule, lambda n: n),
        flips=tuple(
            FlipRow(
                decided_at=f.decided_at.strftime("%Y-%m-%d %H:%M"),
                partner=f.partner_id,
                role=f.role,
                action=term_label(vocabulary, "action", f.action),
                step=step_label(vocabulary, NONE if f.step is None else str(f.step)),
                category=term_label(vocabulary, "category", f.category),
                kind=FLIP_LABELS[f.kind.value],
                before=_outcome(f.before.allowed, f.before.rule_id, f.before.obligations),
                after=_outcome(f.after.allowed, f.after.rule_id, f.after.obligations),
            )
            for f in sim.flips
        ),
    )
