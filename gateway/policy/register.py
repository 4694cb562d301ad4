"""The register of processing activities (AVG art. 30), read from ``policies/register.yaml``.

The register lives in the policy pack and is compiled, versioned, proposed and approved
with it: a change to ``register.yaml`` is a proposal like a rule change and lands in the
same policy version (its content is part of the compiled version hash). Each activity
has a stable ``id`` and a ``version`` its authors raise on every change, the art. 30
fields (controller and joint controllers, purposes, legal bases, categories of data
subjects and of personal data, recipients, transfers, retention, security measures) and
what it covers: event kinds x purposes x legal bases (vocabulary terms or groups).

Every (event kind, purpose, legal basis) the gateway can log about a data subject
resolves to exactly one activity: two activities covering one combination, or a
combination no activity covers, is a compile error with file and line.

The legal bases' AVG art. 6 grounds are checked here too: every legal basis of the
vocabulary names its ``art6`` ground (``avg-6-1-a`` .. ``avg-6-1-f``, or ``niet-avg``
for the Wpg and the Wjsg, which implement Directive (EU) 2016/680). AVG art. 89 and
UAVG art. 24 are safeguards for research (``safeguards``), never an art. 6 basis.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.audit.events import AuditEventType
from gateway.policy.decision import NONE
from gateway.policy.errors import ActivityNotFoundError
from gateway.policy.vocabulary import ANY, Vocabulary
from gateway.yamlsource import LineDict, LineList, SourceError, SourceProblem, load

REGISTER_FILE = "register.yaml"
ACTIVITY_PREFIX = "urn:riec-gateway:verwerkingsactiviteit:"

ART6_GROUNDS: dict[str, tuple[str, str | None]] = {
    "avg-6-1-a": ("AVG art. 6 lid 1 sub a: toestemming", "https://w3id.org/dpv#Consent"),
    "avg-6-1-b": ("AVG art. 6 lid 1 sub b: overeenkomst", "https://w3id.org/dpv#Contract"),
    "avg-6-1-c": (
        "AVG art. 6 lid 1 sub c: wettelijke verplichting",
        "https://w3id.org/dpv#LegalObligation",
    ),
    "avg-6-1-d": ("AVG art. 6 lid 1 sub d: vitaal belang", "https://w3id.org/dpv#VitalInterest"),
    "avg-6-1-e": (
        "AVG art. 6 lid 1 sub e: taak van algemeen belang / openbaar gezag",
        "https://w3id.org/dpv#PublicTask",
    ),
    "avg-6-1-f": (
        "AVG art. 6 lid 1 sub f: gerechtvaardigd belang",
        "https://w3id.org/dpv#LegitimateInterest",
    ),
    "niet-avg": ("Buiten de AVG: Wpg / Wjsg (Richtlijn (EU) 2016/680)", None),
}
"""The AVG art. 6(1) grounds with their DPV legal-basis concept, and the police/justice
regime outside the AVG (no art. 6 ground, so no DPV art. 6 concept)."""

SAFEGUARDS = {"avg-89", "uavg-24", "avg-10", "uavg-33", "avg-8", "uavg-5"}
"""Provisions that add conditions or safeguards to an art. 6 basis, never replace it."""

_RESEARCH_EXEMPTION = re.compile(r"(^|[^0-9])89([^0-9]|$)|uavg[- ]?(art\.? ?)?24")

SUBJECT_EVENTS: tuple[AuditEventType, ...] = (
    AuditEventType.SIGNAL_SUBMIT,
    AuditEventType.HIT_QUERY,
    AuditEventType.HOLDINGS_REGISTER,
    AuditEventType.RECORD_SHARE,
    AuditEventType.RECORD_READ,
    AuditEventType.RECORD_DELETE,
    AuditEventType.SUBJECT_LOG_READ,
    AuditEventType.RESEARCH_ROWS_SUBMIT,
    AuditEventType.RESEARCH_RESPONDENT_WITHDRAW,
    AuditEventType.RESEARCH_EXTRACT_RELEASE,
)
"""Every event kind whose audit entry can name data subjects: each must resolve, for
every purpose and legal basis, to an activity of the register."""

ACTIVITY_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,78}[a-z0-9]$")
REQUIRED_TEXT = ("name", "retention", "security")
REQUIRED_LISTS = ("data_subjects", "personal_data", "recipients", "purposes", "legal_bases")
KNOWN_KEYS = frozenset(
    {
        "id",
        "version",
        "name",
        "description",
        "events",
        "controller",
        "joint_controllers",
        *REQUIRED_TEXT,
        *REQUIRED_LISTS,
        "transfers",
    }
)


@dataclass(frozen=True)
class Activity:
    """One processing activity of the register, with its art. 30 fields."""

    id: str
    version: int
    name: str
    description: str
    events: tuple[str, ...]
    purposes: tuple[str, ...]
    legal_bases: tuple[str, ...]
    art6: tuple[str, ...]
    safeguards: tuple[str, ...]
    controller: str
    joint_controllers: tuple[str, ...]
    data_subjects: tuple[str, ...]
    personal_data: tuple[str, ...]
    recipients: tuple[str, ...]
    transfers: str
    retention: str
    security: str
    line: int
    covers: frozenset[tuple[str, str, str]] = field(repr=False, compare=False)

    @property
    def uri(self) -> str:
        """Return the activity's stable URI (the same for every version)."""
        return ACTIVITY_PREFIX + self.id

    def public(self) -> dict[str, Any]:
        """Return the activity as JSON-ready data (what the API and the workbench show)."""
        return {
            "id": self.id,
            "uri": self.uri,
            "version": self.version,
            "name": self.name,
            "description": self.description,
            "events": list(self.events),
            "purposes": list(self.purposes),
            "legal_bases": list(self.legal_bases),
            "art6": [{"ground": g, "dpv": ART6_GROUNDS[g][1]} for g in self.art6],
            "safeguards": list(self.safeguards),
            "controller": self.controller,
            "joint_controllers": list(self.joint_controllers),
            "data_subjects": list(self.data_subjects),
            "personal_data": list(self.personal_data),
            "recipients": list(self.recipients),
            "transfers": self.transfers,
            "retention": self.retention,
            "security": self.security,
        }


@dataclass(frozen=True)
class Register:
    """Every activity of a pack's register, and which activity covers which processing."""

    activities: tuple[Activity, ...] = ()
    by_key: Mapping[tuple[str, str, str], Activity] = field(default_factory=dict)

    def get(self, activity_id: str) -> Activity:
        """Return the activity with this id (or its URI); raise ActivityNotFoundError."""
        wanted = activity_id.removeprefix(ACTIVITY_PREFIX)
        for activity in self.activities:
            if activity.id == wanted:
                return activity
        raise ActivityNotFoundError("the register in force has no such processing activity")

    def digest(self) -> str:
        """Return the SHA-256 of the register's content (part of the policy version)."""
        body = [a.public() for a in self.activities]
        encoded = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(encoded.encode()).hexdigest()


EMPTY = Register()


def resolve_activity(
    register: Register, event_type: str, purpose: str | None, legal_basis: str | None
) -> Activity:
    """Return the activity covering this processing (``None`` purpose or basis is ``none``).

    Raises ActivityNotFoundError when no activity covers it.
    """
    key = (event_type, purpose or NONE, legal_basis or NONE)
    activity = register.by_key.get(key)
    if activity is None:
        raise ActivityNotFoundError(
            "no processing activity of the register covers this event, purpose and legal basis",
            event_type=event_type,
        )
    return activity


def _is_research_exemption(value: str) -> bool:
    return bool(_RESEARCH_EXEMPTION.search(value.lower()))


def check_legal_bases(vocabulary: Vocabulary, *, required: bool = True) -> list[SourceProblem]:
    """Return the problems of the vocabulary's legal bases' ``art6`` and ``safeguards``.

    An art. 89 / UAVG art. 24 ground is always refused; a missing ``art6`` only when
    ``required`` (a pack with a register: packs stored before registers existed, which
    name no grounds, still compile, so a gateway upgraded over them still starts).
    """
    problems: list[SourceProblem] = []
    path = vocabulary.path
    for term in vocabulary.domains["legal_basis"].terms.values():
        if term.group or term.name == NONE:
            continue
        ground = term.info.get("art6")
        where = f"legal basis {term.name!r}"
        if isinstance(ground, str) and _is_research_exemption(ground):
            problems.append(
                SourceProblem(
                    path,
                    term.line,
                    f"{where}: AVG art. 89 / UAVG art. 24 is not an art. 6 basis but a "
                    "safeguard for research; name the art. 6 ground (e.g. avg-6-1-e) in art6 "
                    "and put avg-89 and uavg-24 under safeguards",
                )
            )
        elif ground is None and not required:
            pass
        elif ground not in ART6_GROUNDS:
            problems.append(
                SourceProblem(
                    path,
                    term.line,
                    f"{where}: art6 must be one of {', '.join(ART6_GROUNDS)} (the AVG art. 6 "
                    "ground it rests on, or niet-avg for the Wpg/Wjsg)",
                )
            )
        safeguards = term.info.get("safeguards") or []
        if not isinstance(safeguards, list) or any(s not in SAFEGUARDS for s in safeguards):
            problems.append(
                SourceProblem(
                    path,
                    term.line,
                    f"{where}: safeguards is a list of {', '.join(sorted(SAFEGUARDS))}",
                )
            )
    return problems


class _Reader:
    """Reads one activity mapping, collecting problems with their lines."""

    def __init__(self, path: Path, vocabulary: Vocabulary, problems: list[SourceProblem]):
        self.path = path
        self.vocabulary = vocabulary
        self.problems = problems

    def add(self, line: int, message: str) -> None:
        self.problems.append(SourceProblem(self.path, line, message))

    def text(self, item: LineDict, key: str, label: str, *, required: bool = True) -> str:
        value = item.get(key)
        if value is None and not required:
            return ""
        if not isinstance(value, str) or not value.strip():
            self.add(item.line_of(key), f"{label}: {key} (AVG art. 30) is missing or empty")
            return ""
        return " ".join(value.split())

    def strings(self, item: LineDict, key: str, label: str, *, empty: bool = False) -> list[str]:
        value = item.get(key)
        if value is None and empty:
            return []
        if not isinstance(value, list) or (not value and not empty):
            self.add(item.line_of(key), f"{label}: {key} (AVG art. 30) must be a non-empty list")
            return []
        if not all(isinstance(v, str) and v.strip() for v in value):
            self.add(item.line_of(key), f"{label}: every item of {key} is text")
            return []
        return [str(v) for v in value]

    def terms(self, item: LineDict, key: str, domain: str, label: str) -> set[str]:
        """Return the concrete terms the names of ``key`` cover (groups and ``*`` expanded)."""
        names = self.strings(item, key, label)
        covered: set[str] = set()
        terms = self.vocabulary.domains[domain]
        for name in names:
            if domain == "legal_basis" and _is_research_exemption(name):
                self.add(
                    item.line_of(key),
                    f"{label}: {name!r}: AVG art. 89 / UAVG art. 24 is not an art. 6 basis; name "
                    "the legal basis the processing rests on (e.g. avg-6-1-e-onderzoek)",
                )
            elif name != ANY and name not in terms.terms:
                self.add(item.line_of(key), f"{label}: unknown {domain.replace('_', ' ')} {name!r}")
            else:
                covered |= terms.leaves(name)
        return covered


def _activity(
    reader: _Reader, item: Any, line: int, seen: dict[str, int]
) -> tuple[Activity | None, set[tuple[str, str, str]]]:
    if not isinstance(item, LineDict):
        reader.add(line, "an activity is a mapping")
        return None, set()
    raw_id = item.get("id")
    label = f"activity {raw_id!r}"
    before = len(reader.problems)
    if not isinstance(raw_id, str) or not ACTIVITY_ID.fullmatch(raw_id):
        reader.add(item.line_of("id"), f"{label}: id must be a lowercase slug (a-z, 0-9, -)")
    elif raw_id in seen:
        reader.add(item.line_of("id"), f"{label}: id is also used at line {seen[raw_id]}")
    else:
        seen[raw_id] = line
    version = item.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        reader.add(item.line_of("version"), f"{label}: version must be a whole number >= 1")
    for key in sorted(set(item) - KNOWN_KEYS):
        reader.add(item.line_of(key), f"{label}: unknown key {key!r}")
    texts = {k: reader.text(item, k, label) for k in REQUIRED_TEXT}
    description = reader.text(item, "description", label, required=False)
    controller = reader.text(item, "controller", label)
    events = reader.strings(item, "events", label)
    known_events = {e.value for e in AuditEventType}
    for event in events:
        if event not in known_events:
            reader.add(item.line_of("events"), f"{label}: unknown event kind {event!r}")
    purposes = reader.terms(item, "purposes", "purpose", label)
    bases = reader.terms(item, "legal_bases", "legal_basis", label)
    joint = reader.strings(item, "joint_controllers", label, empty=True)
    subjects = reader.strings(item, "data_subjects", label)
    personal = reader.strings(item, "personal_data", label)
    for name in personal:
        if name not in reader.vocabulary.domains["category"].terms:
            reader.add(item.line_of("personal_data"), f"{label}: unknown category {name!r}")
    recipients = reader.strings(item, "recipients", label)
    kinds = reader.vocabulary.domains["partner_kind"].terms
    for key, names in (("recipients", recipients), ("joint_controllers", joint)):
        for name in names:
            if name not in kinds:
                reader.add(item.line_of(key), f"{label}: unknown partner kind {name!r}")
    if item.get("transfers") != "none":
        reader.add(
            item.line_of("transfers"),
            f"{label}: transfers (AVG art. 30 lid 1 sub e) must be 'none': the gateway "
            "transfers nothing to a third country or international organisation",
        )
    if len(reader.problems) > before:
        return None, set()
    legal = reader.vocabulary.domains["legal_basis"].terms
    art6 = sorted({str(legal[b].info.get("art6")) for b in bases if b != NONE})
    safeguards = sorted(
        {str(s) for b in bases if b != NONE for s in legal[b].info.get("safeguards") or []}
    )
    covers = {(e, p, b) for e in events for p in purposes for b in bases}
    assert isinstance(raw_id, str) and isinstance(version, int)
    activity = Activity(
        id=raw_id,
        version=version,
        name=texts["name"],
        description=description,
        events=tuple(events),
        purposes=tuple(reader.strings(item, "purposes", label)),
        legal_bases=tuple(reader.strings(item, "legal_bases", label)),
        art6=tuple(art6),
        safeguards=tuple(safeguards),
        controller=controller,
        joint_controllers=tuple(joint),
        data_subjects=tuple(subjects),
        personal_data=tuple(personal),
        recipients=tuple(recipients),
        transfers="none",
        retention=texts["retention"],
        security=texts["security"],
        line=line,
        covers=frozenset(covers),
    )
    return activity, covers


def _gaps(
    path: Path, vocabulary: Vocabulary, by_key: Mapping[Any, Activity]
) -> list[SourceProblem]:
    problems = []
    purposes = sorted(vocabulary.domains["purpose"].concrete)
    bases = sorted(vocabulary.domains["legal_basis"].concrete)
    for event in SUBJECT_EVENTS:
        missing = [(p, b) for p in purposes for b in bases if (event.value, p, b) not in by_key]
        if missing:
            shown = ", ".join(f"{p} x {b}" for p, b in missing[:3])
            more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            problems.append(
                SourceProblem(
                    path,
                    1,
                    f"event kind {event.value!r} can name data subjects but no activity covers "
                    f"purpose x legal basis {shown}{more}",
                )
            )
    return problems


def parse_register(path: Path, doc: Any, vocabulary: Vocabulary) -> Register:
    """Return the register of a parsed ``register.yaml``; raise SourceError on problems.

    Problems: a missing or empty art. 30 field, unknown terms, event kinds or partner
    kinds, an art. 89 / UAVG 24 "basis", a duplicate id, two activities covering one
    event x purpose x legal basis, and a subject event kind left uncovered.
    """
    problems: list[SourceProblem] = []
    reader = _Reader(path, vocabulary, problems)
    if not isinstance(doc, LineDict) or not isinstance(doc.get("activities"), LineList):
        raise SourceError(
            [SourceProblem(path, 1, "the register is a mapping with an activities: list")]
        )
    for key in doc:
        if key != "activities" and not key.startswith("_"):  # `_name`: YAML anchors only
            reader.add(doc.line_of(key), f"unknown top-level key {key!r}")
    seen: dict[str, int] = {}
    activities: list[Activity] = []
    by_key: dict[tuple[str, str, str], Activity] = {}
    items: LineList = doc["activities"]
    for item, line in zip(items, items.item_lines, strict=True):
        activity, covers = _activity(reader, item, line, seen)
        if activity is None:
            continue
        clashes = sorted(k for k in covers if k in by_key)
        if clashes:
            event, purpose, basis = clashes[0]
            reader.add(
                line,
                f"activity {activity.id!r} covers {event} x {purpose} x {basis}, which activity "
                f"{by_key[clashes[0]].id!r} (line {by_key[clashes[0]].line}) covers already: "
                "every processing belongs to exactly one activity",
            )
            continue
        activities.append(activity)
        by_key.update(dict.fromkeys(covers, activity))
    if not problems:
        problems.extend(_gaps(path, vocabulary, by_key))
    if problems:
        raise SourceError(sorted(problems, key=lambda p: p.line))
    return Register(activities=tuple(activities), by_key=by_key)


def load_register(policies_dir: Path, vocabulary: Vocabulary) -> Register | None:
    """Return the register of the pack in ``policies_dir``, or None if it has none.

    Raises SourceError (``file:line: message``) as ``parse_register`` does.
    """
    path = policies_dir / REGISTER_FILE
    if not path.exists():
        return None
    return parse_register(path, load(path), vocabulary)
