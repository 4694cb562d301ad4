"""The sections of a research agreement as validated models (partners, columns, disclosure).

``gateway.research.agreements`` assembles them into an ``Agreement`` and re-exports them.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from gateway.keys import age
from gateway.research.duo import DUO_TERMS, DuoKind
from gateway.research.transforms import Transform, TransformKind

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,79}$")]
FieldName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
Text = Annotated[str, StringConstraints(min_length=1, max_length=500, strip_whitespace=True)]

PROVENANCE_FIELDS = ("provider", "category")


def _one_or_more(value: Any) -> Any:
    return (value,) if isinstance(value, str) else value


def _parse_transform(value: Any) -> Any:
    return Transform.parse(value) if isinstance(value, str) else value


def age_recipient(value: str) -> str:
    if not age.is_recipient(value):
        raise ValueError("not an age X25519 recipient (age1... public key)")
    return value


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)


class PartnerRef(Model):
    """A partner organisation named in an agreement, with its kind."""

    partner: Slug
    kind: Slug
    name: Text | None = None


class Researcher(Model):
    """A named researcher and the age recipient (public key) extracts are encrypted to."""

    name: Text
    partner: Slug
    recipient: str
    principal: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    """With ``researchers_are: named``: the principal id that may enrol this person's key."""

    @field_validator("recipient")
    @classmethod
    def _is_age_recipient(cls, value: str) -> str:
        return age_recipient(value)


class ResearcherEntitlement(StrEnum):
    """Who may enrol an age key: the named persons only, or any researcher of the partner."""

    NAMED = "named"
    """Only a principal listed as ``principal`` of a researcher; a new person needs a new
    agreement version (and so fresh provider consent)."""
    ROLE = "role"
    """Any principal with the researcher role at a science partner; the partner's privacy
    officer confirms each key, no fresh provider consent needed."""


FINGERPRINT = re.compile(r"^(sha256:)?[0-9a-f]{64}$")


class Period(Model):
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


class Instrument(Model):
    """Which fields of which category the named providers deliver, and on what basis."""

    id: Slug
    kind: InstrumentKind
    providers: Annotated[tuple[Slug, ...], BeforeValidator(_one_or_more), Field(min_length=1)]
    category: Slug
    legal_basis: Slug
    fields: Annotated[tuple[FieldName, ...], Field(min_length=1)]
    consent_text_version: Text | None = None
    parental_consent_below: Annotated[int, Field(ge=0, le=18)] = 16


class ValueRange(Model):
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


class Column(Model):
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


class Linkage(StrEnum):
    """How the rows of one person may be linked in a release."""

    LINKED = "linked"
    """One pseudonym per person across rows and releases: histories are quasi-identifiers,
    checked against an attacker who knows ``known_events`` of them."""
    UNLINKED = "unlinked"
    """Every row gets a fresh pseudonym of its own, new in each release; rows are checked
    one by one and no history can be followed."""


MAX_KNOWN_EVENTS = 4
"""The most events of a person an agreement may declare an attacker to know (m)."""


class Disclosure(Model):
    """The disclosure check: quasi-identifiers, threshold k, allowed suppression.

    People are counted through every pseudonym (``count_distinct`` is kept for older
    files and must name a pseudonymised column). ``sensitive`` attributes get an
    l-diversity figure in the manifest; ``event_quasi_identifiers`` are what an attacker
    may know of ``known_events`` (m) of a person's events. Rows of one person are
    linked (they share pseudonyms), so with ``event_check: enforce`` those attributes
    join the quasi-identifiers and are generalised (or their people suppressed) until
    every person meets k against that attacker: (k, k^m)-anonymity, any set of up to m
    events of a person (with the quasi-identifiers) is shared by k people or none. With
    ``report`` the risk is only measured and written into the manifest. ``linkage``
    says whether a person's rows stay linked (the default) or each row gets a fresh
    per-release pseudonym and is checked on its own (``unlinked``).
    """

    quasi_identifiers: Annotated[tuple[FieldName, ...], Field(min_length=1)]
    k: int
    count_distinct: FieldName | None = None
    max_suppressed_share: Decimal
    sensitive: tuple[FieldName, ...] = ()
    event_quasi_identifiers: tuple[FieldName, ...] = ()
    known_events: Annotated[int, Field(ge=1, le=MAX_KNOWN_EVENTS)] = 1
    event_check: EventCheck = EventCheck.ENFORCE
    linkage: Linkage = Linkage.LINKED

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


class WithdrawalScope(StrEnum):
    """What a questionnaire respondent's withdrawal removes from later releases."""

    PERSON = "person"
    """The person entirely: every row linked to the respondent, whichever provider sent it."""
    QUESTIONNAIRE_ROWS = "questionnaire-rows"
    """Only the respondent's questionnaire rows; rows other providers hold stay."""


class Withdrawal(Model):
    """What a withdrawal removes (the person by default)."""

    removes: WithdrawalScope = WithdrawalScope.PERSON


class Retention(Model):
    """How long researchers may keep an extract."""

    extract_days: Annotated[int, Field(ge=1, le=3650)]


class Prohibition(StrEnum):
    """What researchers promise not to do; every agreement carries all of them."""

    NO_REIDENTIFICATION = "no-reidentification"
    NO_LINKING = "no-linking-to-other-data"
    NO_CONTACT = "no-contact-with-subjects"


class PublicationReview(Model):
    """Review of results by partners before publication."""

    required: bool
    reviewers: tuple[Slug, ...] = ()
    days: Annotated[int, Field(ge=1, le=365)] | None = None


class Dpia(Model):
    """The data protection impact assessment the agreement relies on."""

    reference: Text
    completed: date


class DuoCondition(Model):
    """A condition of use as a GA4GH DUO term, with its parameters."""

    term: str
    detail: Text | None = None
    months: Annotated[int, Field(ge=1, le=240)] | None = None
    """TS: the months of use, counted from the first day of the agreement's period."""
    until: date | None = None
    """TS: the last day of use; MOR: the end of the moratorium."""
    reference: Text | None = None
    """IRB: the reference of the ethics committee's approval."""
    project: Slug | None = None
    """PS: the project the data is restricted to (the agreement's own)."""

    @field_validator("term")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in DUO_TERMS:
            raise ValueError(
                f"{value!r} is not a DUO term this gateway knows ({', '.join(sorted(DUO_TERMS))})"
            )
        return value

    @property
    def is_permission(self) -> bool:
        """Whether the term is a permission (what the data may be used for)."""
        return DUO_TERMS[self.term].kind is DuoKind.PERMISSION

    @property
    def shorthand(self) -> str:
        """The DUO shorthand, e.g. ``PS``."""
        return DUO_TERMS[self.term].shorthand

    @property
    def label(self) -> str:
        """The DUO label, e.g. ``project specific restriction``."""
        return DUO_TERMS[self.term].label
