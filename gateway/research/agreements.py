"""Research agreements: the conditions agreed with science partners, as validated models.

An agreement file in ``policies/agreements/`` is read with ``gateway.yamlsource`` and
checked in two steps: its shape (types, required keys, transformations, k, period)
and then its cross-references (partner kinds, researchers' partners, instruments,
columns, quasi-identifiers, DUO terms). Every mistake is reported as
``file:line: message`` in one ``SourceError`` listing all of them.

Names (partner kinds, categories and their fields, purposes, legal bases) are checked
against the policy vocabulary in ``policies/vocabulary.yaml``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from gateway.clock import as_utc
from gateway.identifiers import IdType
from gateway.keys import age
from gateway.policy.decision import NONE
from gateway.policy.vocabulary import Vocabulary, load_vocabulary
from gateway.research.duo import DUO_TERMS, PUBLICATION_MORATORIUM, TIME_LIMIT
from gateway.research.errors import AgreementNotInEffectError
from gateway.research.fields import FieldKind, field_kind
from gateway.research.transforms import Generalisable, Transform, TransformKind
from gateway.yamlsource import LineDict, LineList, SourceError, SourceProblem, load

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,79}$")]
FieldName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
Text = Annotated[str, StringConstraints(min_length=1, max_length=500, strip_whitespace=True)]

PROVENANCE_FIELDS = ("provider", "category")


def _one_or_more(value: Any) -> Any:
    return (value,) if isinstance(value, str) else value


def _parse_transform(value: Any) -> Any:
    return Transform.parse(value) if isinstance(value, str) else value


def _recipient(value: str) -> str:
    if not age.is_recipient(value):
        raise ValueError("not an age X25519 recipient (age1... public key)")
    return value


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)


class PartnerRef(_Model):
    """A partner organisation named in an agreement, with its kind."""

    partner: Slug
    kind: Slug
    name: Text | None = None


class Researcher(_Model):
    """A named researcher and the age recipient (public key) extracts are encrypted to."""

    name: Text
    partner: Slug
    recipient: str
    principal: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    """With ``researchers_are: named``: the principal id that may enrol this person's key."""

    @field_validator("recipient")
    @classmethod
    def _is_age_recipient(cls, value: str) -> str:
        return _recipient(value)


class ResearcherEntitlement(StrEnum):
    """Who may enrol an age key: the named persons only, or any researcher of the partner."""

    NAMED = "named"
    """Only a principal listed as ``principal`` of a researcher; a new person needs a new
    agreement version (and so fresh provider consent)."""
    ROLE = "role"
    """Any principal with the researcher role at a science partner; the partner's privacy
    officer confirms each key, no fresh provider consent needed."""


_FINGERPRINT = re.compile(r"^(sha256:)?[0-9a-f]{64}$")


class Period(_Model):
    """The days (inclusive) on which releases may be made."""

    start: date
    end: date

    @field_validator("end")
    @classmethod
    def _not_before_start(cls, value: date, info: ValidationInfo) -> date:
        start = info.data.get("start")
        if isinstance(start, date) and value < start:
            raise ValueError(f"end {value.isoformat()} is before start {start.isoformat()}")
        return value


class InstrumentKind(StrEnum):
    """How data is collected: a query to a partner or a questionnaire."""

    QUERY = "query"
    QUESTIONNAIRE = "questionnaire"


class Instrument(_Model):
    """Which fields of which category the named providers deliver, and on what basis."""

    id: Slug
    kind: InstrumentKind
    providers: Annotated[tuple[Slug, ...], BeforeValidator(_one_or_more), Field(min_length=1)]
    category: Slug
    legal_basis: Slug
    fields: Annotated[tuple[FieldName, ...], Field(min_length=1)]
    consent_text_version: Text | None = None
    parental_consent_below: Annotated[int, Field(ge=0, le=18)] = 16


class ValueRange(_Model):
    """The whole numbers a kept column may hold (inclusive)."""

    min: int
    max: int

    @field_validator("max")
    @classmethod
    def _not_below_min(cls, value: int, info: ValidationInfo) -> int:
        low = info.data.get("min")
        if isinstance(low, int) and value < low:
            raise ValueError(f"max {value} is below min {low}")
        return value

    def holds(self, value: Any) -> bool:
        """Whether ``value`` (a whole number, or its text) lies in the range."""
        if isinstance(value, bool):
            return False
        if isinstance(value, str):
            text = value.strip()
            if not text.lstrip("-").isdigit() or len(text) > 19:
                return False
            value = int(text)
        return isinstance(value, int) and self.min <= value <= self.max


CodeValue = Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]


class Column(_Model):
    """One output column: where it comes from and how it is transformed.

    A kept column (other than the provenance ``provider`` and ``category``, whose values
    the agreement lists already) names its ``values`` (a code list) or its ``range``:
    anything else is refused on intake and never released.
    """

    model_config = ConfigDict(populate_by_name=True)

    name: FieldName
    source: Annotated[tuple[FieldName, ...], BeforeValidator(_one_or_more), Field(min_length=1)]
    transform: Annotated[Transform, BeforeValidator(_parse_transform)]
    values: Annotated[tuple[CodeValue, ...], Field(min_length=1)] | None = None
    value_range: ValueRange | None = Field(default=None, alias="range")

    @property
    def released(self) -> bool:
        """Whether the column appears in the extract (everything but ``drop``)."""
        return self.transform.kind is not TransformKind.DROP


class EventCheck(StrEnum):
    """Whether the m-event attacker is held to k (``enforce``) or only measured (``report``)."""

    ENFORCE = "enforce"
    REPORT = "report"


class Disclosure(_Model):
    """The disclosure check: quasi-identifiers, threshold k, allowed suppression.

    People are counted through every pseudonym (``count_distinct`` is kept for older
    files and must name a pseudonymised column). ``sensitive`` attributes get an
    l-diversity figure in the manifest; ``event_quasi_identifiers`` are what an attacker
    may know of ``known_events`` (m) of a person's events. Rows of one person are
    linked (they share pseudonyms), so with ``event_check: enforce`` those attributes
    join the quasi-identifiers and are generalised (or their people suppressed) until
    every person meets k against that attacker: (k, k^m)-anonymity, m = 1. With
    ``report`` the risk is only measured and written into the manifest.
    """

    quasi_identifiers: Annotated[tuple[FieldName, ...], Field(min_length=1)]
    k: int
    count_distinct: FieldName | None = None
    max_suppressed_share: Decimal
    sensitive: tuple[FieldName, ...] = ()
    event_quasi_identifiers: tuple[FieldName, ...] = ()
    known_events: Annotated[int, Field(ge=1, le=1)] = 1
    event_check: EventCheck = EventCheck.ENFORCE

    @property
    def checked_attributes(self) -> tuple[str, ...]:
        """The columns the k check runs over: the QIs, and the event QIs when enforced."""
        if self.event_check is EventCheck.ENFORCE:
            qi = self.quasi_identifiers
            extra = tuple(e for e in self.event_quasi_identifiers if e not in qi)
            return (*self.quasi_identifiers, *extra)
        return self.quasi_identifiers

    @field_validator("k")
    @classmethod
    def _k_at_least_two(cls, value: int) -> int:
        if value < 2:
            raise ValueError(f"k must be at least 2 (k={value} would allow unique rows)")
        return value

    @field_validator("max_suppressed_share")
    @classmethod
    def _share(cls, value: Decimal) -> Decimal:
        if not Decimal(0) <= value < Decimal(1):
            raise ValueError("max_suppressed_share must be at least 0 and below 1")
        return value


class Retention(_Model):
    """How long researchers may keep an extract."""

    extract_days: Annotated[int, Field(ge=1, le=3650)]


class Prohibition(StrEnum):
    """What researchers promise not to do; every agreement carries all of them."""

    NO_REIDENTIFICATION = "no-reidentification"
    NO_LINKING = "no-linking-to-other-data"
    NO_CONTACT = "no-contact-with-subjects"


class PublicationReview(_Model):
    """Review of results by partners before publication."""

    required: bool
    reviewers: tuple[Slug, ...] = ()
    days: Annotated[int, Field(ge=1, le=365)] | None = None


class Dpia(_Model):
    """The data protection impact assessment the agreement relies on."""

    reference: Text
    completed: date


class DuoCondition(_Model):
    """A condition of use as a GA4GH DUO term, with its parameters."""

    term: str
    detail: Text | None = None
    months: Annotated[int, Field(ge=1, le=240)] | None = None
    until: date | None = None

    @field_validator("term")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in DUO_TERMS:
            raise ValueError(
                f"{value!r} is not a DUO term this gateway knows ({', '.join(sorted(DUO_TERMS))})"
            )
        return value

    @property
    def shorthand(self) -> str:
        """The DUO shorthand, e.g. ``PS``."""
        return DUO_TERMS[self.term].shorthand

    @property
    def label(self) -> str:
        """The DUO label, e.g. ``project specific restriction``."""
        return DUO_TERMS[self.term].label


class Agreement(_Model):
    """A validated research agreement. ``sha256`` and ``source`` are set by the loader."""

    id: Slug
    version: Annotated[int, Field(ge=1)]
    title: Text
    project: Slug
    science_partners: Annotated[tuple[PartnerRef, ...], Field(min_length=1)]
    researchers: Annotated[tuple[Researcher, ...], Field(min_length=1)]
    purpose: Slug
    legal_basis: Slug
    period: Period
    providers: Annotated[tuple[PartnerRef, ...], Field(min_length=1)]
    categories: Annotated[tuple[Slug, ...], Field(min_length=1)]
    instruments: Annotated[tuple[Instrument, ...], Field(min_length=1)]
    columns: Annotated[tuple[Column, ...], Field(min_length=1)]
    disclosure: Disclosure
    retention: Retention
    prohibitions: tuple[Prohibition, ...]
    publication_review: PublicationReview
    dpia: Dpia
    conditions: tuple[DuoCondition, ...] = ()
    sha256: str = ""
    source: str = ""
    researchers_are: ResearcherEntitlement = ResearcherEntitlement.NAMED
    signing_key_fingerprint: str | None = None
    """The pinned SHA-256 of the gateway's manifest signing key (``sha256:<hex>``)."""

    @field_validator("signing_key_fingerprint")
    @classmethod
    def _is_fingerprint(cls, value: str | None) -> str | None:
        if value is not None and not _FINGERPRINT.fullmatch(value):
            raise ValueError("not a signing key fingerprint (sha256: and 64 lowercase hex)")
        return value

    @property
    def signing_pin(self) -> str | None:
        """The pinned signing key fingerprint as bare hex, or None when nothing is pinned."""
        pin = self.signing_key_fingerprint
        return None if pin is None else pin.removeprefix("sha256:")

    def may_enrol(self, principal_id: str, partner_id: str) -> bool:
        """Return True if a researcher principal of ``partner_id`` may enrol an age key."""
        if partner_id not in {p.partner for p in self.science_partners}:
            return False
        if self.researchers_are is ResearcherEntitlement.ROLE:
            return True
        return any(
            r.principal == principal_id and r.partner == partner_id for r in self.researchers
        )

    @property
    def recipients(self) -> tuple[str, ...]:
        """Every researcher's age recipient, in file order."""
        return tuple(r.recipient for r in self.researchers)

    @property
    def released_columns(self) -> tuple[Column, ...]:
        """The columns that appear in an extract, in file order."""
        return tuple(c for c in self.columns if c.released)

    @property
    def provider_ids(self) -> frozenset[str]:
        """The ids of the providing partners in scope."""
        return frozenset(p.partner for p in self.providers)

    def column(self, name: str) -> Column:
        """Return the column called ``name``; raise KeyError if there is none."""
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    def allowed_values(self, column: Column) -> tuple[str, ...] | None:
        """Return the values a kept ``column`` may hold; None when a range (or nothing) bounds it.

        The provenance columns may hold the agreement's providers and categories.
        """
        if column.values is not None:
            return column.values
        if column.source == ("provider",):
            return tuple(sorted(self.provider_ids))
        if column.source == ("category",):
            return self.categories
        return None

    def instrument_for(self, provider: str, category: str) -> Instrument | None:
        """Return the instrument through which ``provider`` delivers ``category``, if any."""
        for instrument in self.instruments:
            if instrument.category == category and provider in instrument.providers:
                return instrument
        return None

    def require_in_effect(self, at: datetime) -> None:
        """Return if ``at`` (UTC day) lies in the period; else raise AgreementNotInEffectError."""
        day = as_utc(at).date()
        if not self.period.start <= day <= self.period.end:
            raise AgreementNotInEffectError(
                f"agreement {self.id} is in effect from {self.period.start.isoformat()} to "
                f"{self.period.end.isoformat()}; nothing is released on {day.isoformat()}",
                agreement=self.id,
                start=self.period.start.isoformat(),
                end=self.period.end.isoformat(),
            )

    def expiry(self, at: datetime) -> date:
        """Return the last day researchers may keep an extract released at ``at``."""
        return as_utc(at).date() + timedelta(days=self.retention.extract_days)

    def with_recipients(self, recipients: Sequence[str]) -> Agreement:
        """Return a copy whose researchers (in order) use ``recipients``; for demos and tests.

        Raises ValueError if the count differs or a recipient is not an age public key.
        """
        if len(recipients) != len(self.researchers):
            raise ValueError(f"give {len(self.researchers)} recipients, one per researcher")
        researchers = tuple(
            r.model_copy(update={"recipient": _recipient(rec)})
            for r, rec in zip(self.researchers, recipients, strict=True)
        )
        return self.model_copy(update={"researchers": researchers})


@dataclass(frozen=True, slots=True)
class AgreementVocabulary:
    """The names agreements are checked against, taken from the policy vocabulary."""

    partner_kinds: frozenset[str]
    categories: frozenset[str]
    category_fields: Mapping[str, frozenset[str]]
    purposes: frozenset[str]
    legal_bases: frozenset[str]
    invoked_by: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Legal basis -> the partner kinds that may invoke it (the vocabulary's ``invoked_by``)."""

    @classmethod
    def from_vocabulary(cls, vocabulary: Vocabulary) -> AgreementVocabulary:
        """Return the names of a loaded policy vocabulary (groups and ``none`` excluded)."""

        def names(domain: str) -> frozenset[str]:
            return frozenset(vocabulary.domains[domain].concrete - {NONE})

        return cls(
            partner_kinds=vocabulary.partner_kinds,
            categories=names("category"),
            category_fields={
                name: frozenset(schema.fields) for name, schema in vocabulary.schemas.items()
            },
            purposes=names("purpose"),
            legal_bases=names("legal_basis"),
            invoked_by=dict(vocabulary.invoked_by),
        )

    @classmethod
    def from_policies(cls, policies_dir: Path) -> AgreementVocabulary:
        """Read the policy pack's vocabulary; raise SourceError (file:line) if it is broken."""
        return cls.from_vocabulary(load_vocabulary(policies_dir))


def _line(doc: Any, *path: str | int) -> int:
    """Return the line of the deepest existing node along ``path`` in a yamlsource document."""
    node, line = doc, getattr(doc, "line", 1)
    for part in path:
        if isinstance(node, LineDict) and isinstance(part, str):
            line = node.line_of(part)
            if part not in node:
                break
            node = node[part]
        elif isinstance(node, LineList) and isinstance(part, int) and 0 <= part < len(node):
            line = node.item_lines[part]
            node = node[part]
        else:
            break
    return line


def _where(loc: Sequence[str | int]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _shape_problems(path: Path, doc: Any, error: ValidationError) -> list[SourceProblem]:
    problems = []
    for err in error.errors():
        loc = tuple(p for p in err["loc"] if isinstance(p, str | int))
        where = _where(loc)
        if err["type"] == "missing":
            message = f"{where}: required but missing"
        elif err["type"] == "extra_forbidden":
            message = f"{where}: unknown key"
        else:
            message = f"{where}: " + str(err["msg"]).removeprefix("Value error, ")
        problems.append(SourceProblem(path, _line(doc, *loc), message))
    return problems


def load_agreement(path: Path, vocabulary: AgreementVocabulary) -> Agreement:
    """Return the validated agreement in ``path``; raise SourceError listing every mistake."""
    doc = load(path)
    if not isinstance(doc, LineDict):
        raise SourceError([SourceProblem(path, 1, "an agreement must be a mapping")])
    for reserved in ("sha256", "source"):
        if reserved in doc:
            raise SourceError(
                [SourceProblem(path, doc.line_of(reserved), f"{reserved}: set by the gateway")]
            )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    try:
        agreement = Agreement.model_validate({**doc, "sha256": digest, "source": str(path)})
    except ValidationError as exc:
        raise SourceError(_shape_problems(path, doc, exc)) from None
    problems = _Checker(path, doc, agreement, vocabulary).run()
    if problems:
        raise SourceError(problems)
    return agreement


def load_agreements(directory: Path, vocabulary: AgreementVocabulary) -> dict[str, Agreement]:
    """Return every ``*.yaml`` agreement in ``directory`` by id; raise SourceError on mistakes."""
    agreements: dict[str, Agreement] = {}
    problems: list[SourceProblem] = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            agreement = load_agreement(path, vocabulary)
        except SourceError as exc:
            problems.extend(exc.problems)
            continue
        if agreement.id in agreements:
            problems.append(SourceProblem(path, 1, f"agreement id {agreement.id!r} is used twice"))
        agreements[agreement.id] = agreement
    if problems:
        raise SourceError(problems)
    return agreements


class _Checker:
    """Cross-reference checks that need the whole agreement and the vocabulary."""

    def __init__(
        self, path: Path, doc: LineDict, agreement: Agreement, vocabulary: AgreementVocabulary
    ) -> None:
        self.path, self.doc, self.a, self.vocab = path, doc, agreement, vocabulary
        self.problems: list[SourceProblem] = []

    def add(self, message: str, *path: str | int) -> None:
        """Record a problem at the line of ``path`` in the document."""
        self.problems.append(SourceProblem(self.path, _line(self.doc, *path), message))

    def run(self) -> list[SourceProblem]:
        """Return every cross-reference problem of the agreement (empty if none)."""
        self._partners()
        self._names()
        self._instruments()
        self._columns()
        self._disclosure()
        self._conditions()
        return self.problems

    def _partners(self) -> None:
        seen: set[str] = set()
        for section in ("science_partners", "providers"):
            refs: tuple[PartnerRef, ...] = getattr(self.a, section)
            for i, ref in enumerate(refs):
                if ref.kind not in self.vocab.partner_kinds:
                    known = ", ".join(sorted(self.vocab.partner_kinds))
                    self.add(
                        f"unknown partner kind {ref.kind!r} (known: {known})", section, i, "kind"
                    )
                elif section == "science_partners" and ref.kind != "science":
                    self.add(
                        f"science partner {ref.partner!r} must be of kind science",
                        section,
                        i,
                        "kind",
                    )
                if ref.partner in seen:
                    self.add(f"partner {ref.partner!r} is listed twice", section, i, "partner")
                seen.add(ref.partner)
        science = {p.partner for p in self.a.science_partners}
        for i, researcher in enumerate(self.a.researchers):
            if researcher.partner not in science:
                self.add(
                    f"researcher {researcher.name!r} works for {researcher.partner!r}, "
                    "which is not a science partner of this agreement",
                    "researchers",
                    i,
                    "partner",
                )
        for i, reviewer in enumerate(self.a.publication_review.reviewers):
            if reviewer not in self.a.provider_ids:
                self.add(
                    f"reviewer {reviewer!r} is not a provider of this agreement",
                    "publication_review",
                    "reviewers",
                    i,
                )
        if self.a.publication_review.required and not self.a.publication_review.reviewers:
            self.add("a required publication review needs reviewers", "publication_review")
        missing = [p.value for p in Prohibition if p not in self.a.prohibitions]
        if missing:
            self.add(f"prohibitions must include {', '.join(missing)}", "prohibitions")

    def _names(self) -> None:
        if self.a.purpose not in self.vocab.purposes:
            self.add(f"unknown purpose {self.a.purpose!r}", "purpose")
        if self.a.legal_basis not in self.vocab.legal_bases:
            self.add(f"unknown legal basis {self.a.legal_basis!r}", "legal_basis")
        for i, category in enumerate(self.a.categories):
            if category not in self.vocab.categories:
                self.add(f"unknown data category {category!r}", "categories", i)

    def _instruments(self) -> None:
        ids: set[str] = set()
        delivered: set[tuple[str, str]] = set()
        for i, inst in enumerate(self.a.instruments):
            if inst.id in ids:
                self.add(f"instrument id {inst.id!r} is used twice", "instruments", i, "id")
            ids.add(inst.id)
            for j, provider in enumerate(inst.providers):
                if provider not in self.a.provider_ids:
                    self.add(
                        f"{provider!r} is not a provider of this agreement",
                        "instruments",
                        i,
                        "providers",
                        j,
                    )
                if (provider, inst.category) in delivered:
                    self.add(
                        f"{provider!r} delivers {inst.category!r} in two instruments",
                        "instruments",
                        i,
                        "providers",
                        j,
                    )
                delivered.add((provider, inst.category))
            if inst.category not in self.a.categories:
                self.add(
                    f"category {inst.category!r} is not in the agreement's categories",
                    "instruments",
                    i,
                    "category",
                )
            if inst.legal_basis not in self.vocab.legal_bases:
                self.add(
                    f"unknown legal basis {inst.legal_basis!r}", "instruments", i, "legal_basis"
                )
            else:
                self._own_basis(i, inst)
            if inst.kind is InstrumentKind.QUESTIONNAIRE and inst.consent_text_version is None:
                self.add("a questionnaire needs consent_text_version", "instruments", i)
            if (
                inst.kind is InstrumentKind.QUERY
                and "consent_text_version" in self.doc["instruments"][i]
            ):
                self.add(
                    "only questionnaires have a consent text",
                    "instruments",
                    i,
                    "consent_text_version",
                )
            schema = self.vocab.category_fields.get(inst.category, frozenset())
            for j, name in enumerate(inst.fields):
                if name not in schema:
                    self.add(
                        f"category {inst.category!r} has no field {name!r}",
                        "instruments",
                        i,
                        "fields",
                        j,
                    )
                if name in PROVENANCE_FIELDS:
                    self.add(
                        f"{name!r} is added by the gateway, not delivered",
                        "instruments",
                        i,
                        "fields",
                        j,
                    )

    def _own_basis(self, index: int, inst: Instrument) -> None:
        """Every provider of an instrument must invoke the instrument's legal basis itself."""
        invokers = self.vocab.invoked_by.get(inst.legal_basis)
        if invokers is None:
            return  # a vocabulary built without invoked_by (tests); the policy still decides
        kinds = {p.partner: p.kind for p in self.a.providers}
        for provider in inst.providers:
            kind = kinds.get(provider)
            # unknown providers and kinds are reported by _partners and the loop above
            if kind in self.vocab.partner_kinds and kind not in invokers:
                self.add(
                    f"{provider!r} is a {kind} and cannot deliver under legal basis "
                    f"{inst.legal_basis!r}: only {', '.join(sorted(invokers))} invoke it "
                    "(invoked_by in the vocabulary)",
                    "instruments",
                    index,
                    "legal_basis",
                )

    def _columns(self) -> None:
        delivered = {f for inst in self.a.instruments for f in inst.fields}
        names: set[str] = set()
        for i, col in enumerate(self.a.columns):
            where = ("columns", i)
            if col.name in names:
                self.add(f"column {col.name!r} is defined twice", *where, "name")
            names.add(col.name)
            for j, src in enumerate(col.source):
                if src not in delivered and src not in PROVENANCE_FIELDS:
                    self.add(
                        f"column {col.name!r}: no instrument delivers field {src!r}",
                        *where,
                        "source",
                        *(() if len(col.source) == 1 else (j,)),
                    )
            self._transform(i, col)

    def _transform(self, i: int, col: Column) -> None:
        t, kinds = col.transform, [field_kind(s) for s in col.source]
        where = ("columns", i, "transform")
        if t.kind is not TransformKind.KEEP and (
            col.values is not None or col.value_range is not None
        ):
            self.add(f"column {col.name!r}: only kept columns take values or a range", *where)
        if t.kind is TransformKind.DROP:
            return
        if t.kind is TransformKind.PSEUDONYMISE:
            if t.id_type is IdType.NAME_BIRTHDATE:
                if len(col.source) != 2 or kinds[1] is not FieldKind.QUASI_IDENTIFIER:
                    self.add(
                        f"column {col.name!r}: pseudonymise:name_birthdate takes two "
                        "sources, a name and a birth date",
                        "columns",
                        i,
                        "source",
                    )
            elif len(col.source) != 1:
                self.add(f"column {col.name!r}: {t} takes one source", "columns", i, "source")
            if FieldKind.FREE_TEXT in kinds or FieldKind.PROVENANCE in kinds:
                self.add(f"column {col.name!r}: {t} needs an identifier field", *where)
            return
        if len(col.source) != 1:
            self.add(f"column {col.name!r}: {t} takes one source", "columns", i, "source")
            return
        source, kind = col.source[0], kinds[0]
        bounded = col.values is not None or col.value_range is not None
        if t.kind is TransformKind.KEEP:
            if col.values is not None and col.value_range is not None:
                self.add(f"column {col.name!r}: give values or a range, not both", "columns", i)
            elif not bounded and kind is FieldKind.CODED:
                self.add(
                    f"column {col.name!r} keeps {source!r} without a code list: give its "
                    "values (or a range), so that free text and rare values cannot leave",
                    "columns",
                    i,
                )
            elif col.values is not None and len(set(col.values)) != len(col.values):
                self.add(f"column {col.name!r}: a value is listed twice", "columns", i, "values")
            if kind is FieldKind.DIRECT_IDENTIFIER:
                self.add(
                    f"column {col.name!r} keeps the direct identifier {source!r}; "
                    "pseudonymise or drop it",
                    *where,
                )
            elif kind in (FieldKind.QUASI_IDENTIFIER, FieldKind.TIMESTAMP):
                self.add(f"column {col.name!r} keeps {source!r} in full; generalise it", *where)
            elif kind is FieldKind.FREE_TEXT:
                self.add(
                    f"column {col.name!r}: free text ({source!r}) is never released; drop it",
                    *where,
                )
            return
        expected = {
            Generalisable.BIRTH_DATE: source == "birth_date",
            Generalisable.POSTCODE: source == "postcode",
            Generalisable.TIMESTAMP: kind is FieldKind.TIMESTAMP,
        }
        assert t.what is not None
        if not expected[t.what]:
            self.add(
                f"column {col.name!r}: generalise:{t.what.value} cannot apply to {source!r}", *where
            )
        if len(t.levels) > 1 and col.name not in self.a.disclosure.checked_attributes:
            self.add(f"column {col.name!r}: only quasi-identifiers may list several levels", *where)

    def _disclosure(self) -> None:
        columns = {c.name: c for c in self.a.columns}
        seen: set[str] = set()
        for i, name in enumerate(self.a.disclosure.quasi_identifiers):
            where = ("disclosure", "quasi_identifiers", i)
            col = columns.get(name)
            if name in seen:
                self.add(f"quasi-identifier {name!r} is listed twice", *where)
            seen.add(name)
            if col is None:
                self.add(f"quasi-identifier {name!r} is not a column", *where)
            elif col.transform.kind is not TransformKind.GENERALISE:
                self.add(
                    f"quasi-identifier {name!r} is not generalised "
                    f"(its transformation is {col.transform})",
                    *where,
                )
        for section in ("sensitive", "event_quasi_identifiers"):
            names: tuple[str, ...] = getattr(self.a.disclosure, section)
            for i, name in enumerate(names):
                col = columns.get(name)
                if col is None or not col.released:
                    self.add(
                        f"{section}: {name!r} is not a released column", "disclosure", section, i
                    )
                elif col.transform.kind is TransformKind.PSEUDONYMISE:
                    self.add(f"{section}: {name!r} is a pseudonym", "disclosure", section, i)
                elif section == "sensitive" and col.transform.kind is not TransformKind.KEEP:
                    self.add(
                        f"sensitive: {name!r} must be a kept (coded) column",
                        "disclosure",
                        section,
                        i,
                    )
        distinct = self.a.disclosure.count_distinct
        if distinct is not None:
            col = columns.get(distinct)
            if col is None or col.transform.kind is not TransformKind.PSEUDONYMISE:
                self.add(
                    f"count_distinct {distinct!r} must be a pseudonymised column",
                    "disclosure",
                    "count_distinct",
                )

    def _conditions(self) -> None:
        seen: set[str] = set()
        for i, cond in enumerate(self.a.conditions):
            if cond.term in seen:
                self.add(f"DUO term {cond.term} is listed twice", "conditions", i, "term")
            seen.add(cond.term)
            if cond.term == TIME_LIMIT and cond.months is None:
                self.add(f"{cond.term} (time limit on use) needs months", "conditions", i)
            if cond.term == PUBLICATION_MORATORIUM and cond.until is None and cond.detail is None:
                self.add(
                    f"{cond.term} (publication moratorium) needs until or detail", "conditions", i
                )
