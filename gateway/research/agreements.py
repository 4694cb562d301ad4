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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    Field,
    ValidationError,
    field_validator,
)

from gateway.clock import as_utc
from gateway.policy.decision import NONE
from gateway.policy.vocabulary import Vocabulary, load_vocabulary
from gateway.research.agreement_checks import Checker, line_of
from gateway.research.agreement_parts import (
    FINGERPRINT,
    MAX_KNOWN_EVENTS,
    PROVENANCE_FIELDS,
    CodeValue,
    Column,
    Disclosure,
    Dpia,
    DuoCondition,
    EventCheck,
    FieldName,
    Instrument,
    InstrumentKind,
    Linkage,
    Model,
    PartnerRef,
    Period,
    Prohibition,
    PublicationReview,
    Researcher,
    ResearcherEntitlement,
    Retention,
    Slug,
    Text,
    ValueRange,
    Withdrawal,
    WithdrawalScope,
    age_recipient,
)
from gateway.research.errors import AgreementNotInEffectError
from gateway.yamlsource import LineDict, SourceError, SourceProblem, load

__all__ = [
    "MAX_KNOWN_EVENTS",
    "PROVENANCE_FIELDS",
    "Agreement",
    "AgreementVocabulary",
    "CodeValue",
    "Column",
    "Disclosure",
    "Dpia",
    "DuoCondition",
    "EventCheck",
    "FieldName",
    "Instrument",
    "InstrumentKind",
    "Linkage",
    "PartnerRef",
    "Period",
    "Prohibition",
    "PublicationReview",
    "Researcher",
    "ResearcherEntitlement",
    "Retention",
    "Slug",
    "Text",
    "ValueRange",
    "Withdrawal",
    "WithdrawalScope",
    "load_agreement",
    "load_agreements",
]


class Agreement(Model):
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
    withdrawal: Withdrawal = Withdrawal()
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
        if value is not None and not FINGERPRINT.fullmatch(value):
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
            r.model_copy(update={"recipient": age_recipient(rec)})
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
        problems.append(SourceProblem(path, line_of(doc, *loc), message))
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
    problems = Checker(path, doc, agreement, vocabulary).run()
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
