"""How long the audit log keeps personal data, per data category (``policies/retention.yaml``).

An audit entry's details and its data-subject index rows are kept for the retention of
the data categories the entry concerns (the longest, when it concerns several), or the
default when it names none; the entry itself (its leaf: hashes and ids) stays forever,
so the tree stays verifiable after a purge. A category without its own line takes the
longest retention among the vocabulary terms above it (``criminal-law`` covers
``police`` and ``om-case``). The file is part of the policy pack: checked with it (every
category against the vocabulary), versioned with it, and changed through a proposal that
the pack's approvers approve.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from gateway.policy.vocabulary import Vocabulary, load_vocabulary
from gateway.yamlsource import LineDict, SourceError, SourceProblem, load

RETENTION_FILE = "retention.yaml"
DEFAULT_DAYS = 4 * 365 + 1
"""Four years (and a leap day): Wjsg art. 39j keeps every provision of judicial data
logged at least that long; the default for entries of any category the file leaves out."""
MAX_DAYS = 100 * 366


@dataclass(frozen=True)
class Retention:
    """The retention of audit details and subject index rows, per data category."""

    default: timedelta = timedelta(days=DEFAULT_DAYS)
    categories: Mapping[str, timedelta] = field(default_factory=dict)
    """Every category the file covers (its own line or a term above it), resolved."""

    def period(self, categories: Iterable[str] = ()) -> timedelta:
        """Return how long an entry about ``categories`` is kept: the longest, or the default."""
        periods = [self.categories.get(c, self.default) for c in categories]
        return max(periods, default=self.default)


def _days(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DAYS:
        return None
    return value


def parse_retention(folder: Path, vocabulary: Vocabulary) -> Retention:
    """Return the retention of the pack in ``folder`` (the default without the file).

    Raises SourceError (``file:line: message``) for a malformed file, an unknown data
    category, or a period that is not a whole number of days from 1 to 36,600.
    """
    path = folder / RETENTION_FILE
    if not path.exists():
        return Retention()
    doc = load(path)
    if not isinstance(doc, LineDict):
        raise SourceError([SourceProblem(path, 1, "retention.yaml is a YAML mapping")])
    problems: list[SourceProblem] = []
    bad = f"must be a whole number of days from 1 to {MAX_DAYS}"
    for key in sorted(set(doc) - {"default_days", "categories"}):
        problems.append(SourceProblem(path, doc.line_of(key), f"unknown key {key!r}"))
    default = _days(doc.get("default_days", DEFAULT_DAYS))
    if default is None:
        problems.append(SourceProblem(path, doc.line_of("default_days"), f"default_days {bad}"))
    own: dict[str, int] = {}
    section = doc.get("categories")
    domain = vocabulary.domains["category"]
    entries: list[tuple[str, object, int]] = []
    if isinstance(section, LineDict):
        entries = [(str(k), v, section.line_of(k)) for k, v in section.items()]
    elif section is not None:
        problems.append(SourceProblem(path, doc.line_of("categories"), "categories is a mapping"))
    for name, value, line in entries:
        days = _days(value)
        if name not in domain.terms:
            problems.append(SourceProblem(path, line, f"unknown data category {name!r}"))
        elif days is None:
            problems.append(SourceProblem(path, line, f"{name}: {bad}"))
        else:
            own[name] = days
    if problems:
        raise SourceError(problems)
    resolved: dict[str, timedelta] = {}
    for name in domain.terms:
        if name in own:
            resolved[name] = timedelta(days=own[name])
            continue
        above = [own[a] for a in domain.ancestors(name) if a in own]
        if above:
            resolved[name] = timedelta(days=max(above))
    assert default is not None
    return Retention(timedelta(days=default), resolved)


def check_retention_file(folder: Path) -> None:
    """Raise SourceError unless the pack's ``retention.yaml``, where present, is valid."""
    if (folder / RETENTION_FILE).exists():
        parse_retention(folder, load_vocabulary(folder))
