"""Public shapes of research agreements, consents, intake, withdrawals and releases."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from gateway.research.agreements import Agreement
from gateway.research.duo import ATTESTED, ENFORCED, DeclaredUse
from gateway.research.intake import MAX_BATCH_ROWS
from gateway.schemas.base import StrictIn


class _In(StrictIn):
    """A request body of the research routes."""


class PartnerOut(BaseModel):
    """A partner named in an agreement."""

    partner: str
    kind: str
    name: str | None


class ResearcherOut(BaseModel):
    """A researcher and the age public key releases are encrypted to."""

    name: str
    partner: str
    recipient: str = Field(
        description="age X25519 recipient in the agreement file; releases through the gateway "
        "use the keys researchers enrolled (/recipients) instead"
    )
    principal: str | None = Field(
        default=None, description="with researchers_are: named, the principal that enrols"
    )


class InstrumentOut(BaseModel):
    """How data is collected: which providers deliver which fields of which category."""

    id: str
    kind: str
    providers: list[str]
    category: str
    legal_basis: str
    fields: list[str]
    consent_text_version: str | None
    parental_consent_below: int | None


class ColumnOut(BaseModel):
    """One column of an extract and its transformation."""

    name: str
    source: list[str]
    transform: str


class ConditionOut(BaseModel):
    """A condition of use as a GA4GH DUO term."""

    term: str
    shorthand: str
    label: str
    detail: str | None = None
    months: int | None = None
    until: date | None = None
    reference: str | None = None
    project: str | None = None
    enforcement: str = Field(description='"enforced" or "attested, not enforced"')


class AgreementSummaryOut(BaseModel):
    """An agreement in a list."""

    id: str
    version: int
    title: str
    project: str
    period_start: date
    period_end: date
    science_partners: list[str]
    providers: list[str]

    @classmethod
    def of(cls, a: Agreement) -> AgreementSummaryOut:
        """Return the summary of an agreement."""
        return AgreementSummaryOut(**_summary_fields(a))


def _summary_fields(a: Agreement) -> dict[str, Any]:
    return {
        "id": a.id,
        "version": a.version,
        "title": a.title,
        "project": a.project,
        "period_start": a.period.start,
        "period_end": a.period.end,
        "science_partners": [p.partner for p in a.science_partners],
        "providers": [p.partner for p in a.providers],
    }


class AgreementOut(AgreementSummaryOut):
    """The agreed conditions of a research agreement."""

    sha256: str = Field(description="SHA-256 of the agreement file")
    purpose: str
    legal_basis: str
    researchers: list[ResearcherOut]
    provider_partners: list[PartnerOut]
    categories: list[str]
    instruments: list[InstrumentOut]
    columns: list[ColumnOut]
    quasi_identifiers: list[str]
    k: int
    count_distinct: str | None
    max_suppressed_share: str
    retention_days: int
    prohibitions: list[str]
    publication_review: dict[str, Any]
    dpia: dict[str, Any]
    conditions: list[ConditionOut]
    researchers_are: Literal["named", "role"] = Field(
        description="named: only the listed persons enrol keys; role: any researcher of a "
        "science partner, confirmed by its privacy officer"
    )
    signing_key_fingerprint: str | None = Field(
        description="the pinned SHA-256 of the key that signs this agreement's manifests"
    )

    @classmethod
    def of(cls, a: Agreement) -> AgreementOut:
        """Return the public form of an agreement (public keys only, never secrets)."""
        return AgreementOut(
            **_summary_fields(a),
            sha256=a.sha256,
            purpose=a.purpose,
            legal_basis=a.legal_basis,
            researchers=[
                ResearcherOut(
                    name=r.name, partner=r.partner, recipient=r.recipient, principal=r.principal
                )
                for r in a.researchers
            ],
            provider_partners=[
                PartnerOut(partner=p.partner, kind=p.kind, name=p.name) for p in a.providers
            ],
            categories=list(a.categories),
            instruments=[
                InstrumentOut(
                    id=i.id,
                    kind=i.kind.value,
                    providers=list(i.providers),
                    category=i.category,
                    legal_basis=i.legal_basis,
                    fields=list(i.fields),
                    consent_text_version=i.consent_text_version,
                    parental_consent_below=(
                        i.parental_consent_below if i.consent_text_version else None
                    ),
                )
                for i in a.instruments
            ],
            columns=[
                ColumnOut(name=c.name, source=list(c.source), transform=str(c.transform))
                for c in a.columns
            ],
            quasi_identifiers=list(a.disclosure.quasi_identifiers),
            k=a.disclosure.k,
            count_distinct=a.disclosure.count_distinct,
            max_suppressed_share=str(a.disclosure.max_suppressed_share),
            retention_days=a.retention.extract_days,
            prohibitions=[p.value for p in a.prohibitions],
            publication_review=a.publication_review.model_dump(),
            dpia={"reference": a.dpia.reference, "completed": a.dpia.completed},
            conditions=[
                ConditionOut(
                    term=c.term,
                    shorthand=c.shorthand,
                    label=c.label,
                    detail=c.detail,
                    months=c.months,
                    until=c.until,
                    reference=c.reference,
                    project=c.project,
                    enforcement="enforced" if c.term in ENFORCED else ATTESTED,
                )
                for c in a.conditions
            ],
            researchers_are=a.researchers_are.value,
            signing_key_fingerprint=a.signing_key_fingerprint,
        )


class ConsentIn(_In):
    """A provider's decision on an agreement."""

    decision: Literal["consent", "refuse", "revoke"]
    note: str | None = Field(default=None, max_length=500)


class ConsentOut(BaseModel):
    """A provider's current state on an agreement (``none``: nothing recorded for this version)."""

    provider: str
    state: Literal["consented", "refused", "revoked", "none"]
    agreement_version: int
    decided_by: str | None
    decided_at: datetime | None
    note: str | None


class ConsentHistoryOut(BaseModel):
    """One recorded decision."""

    provider: str
    decision: Literal["consent", "refuse", "revoke"]
    agreement_version: int
    recorded_by: str
    recorded_at: datetime
    note: str | None


class ConsentsOut(BaseModel):
    """Every provider's current state, and every decision recorded, oldest first."""

    agreement_id: str
    agreement_version: int
    providers: list[ConsentOut]
    history: list[ConsentHistoryOut]


class RowsIn(_In):
    """Rows of one instrument: each an object of the instrument's fields (no others)."""

    instrument: str = Field(min_length=1, max_length=80)
    rows: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_BATCH_ROWS)


class RowsOut(BaseModel):
    """What was stored: identifiers were pseudonymised, the rest sealed."""

    batch_id: str
    created: bool
    rows: int
    invalid_identifiers: dict[str, int] = Field(
        description="identifiers that failed their check (not stored), by field"
    )
    policy_version: str
    rule_id: str


class WithdrawalIn(_In):
    """A questionnaire respondent withdraws consent (the id goes in the body, never a URL)."""

    respondent_id: str = Field(min_length=1, max_length=64)


class ReleaseIn(_In):
    """What the requester of a release declares (the agreement's NCU/NPU conditions)."""

    declared_use: list[Annotated[DeclaredUse, Field(strict=False)]] = Field(
        default_factory=list,
        max_length=2,
        description="uses the requester declares, e.g. non-commercial (DUO NCU)",
    )


class WithdrawalOut(BaseModel):
    """A recorded withdrawal: the respondent is in no later release."""

    agreement_id: str
    created: bool
    rows_excluded: int
    recorded_at: datetime


class ReleaseOut(BaseModel):
    """A recorded release."""

    id: str
    agreement_id: str
    agreement_version: int
    agreement_sha256: str
    project: str
    policy_version: str
    manifest_sha256: str
    generalisation_sha256: str
    bundle_name: str
    bundle_sha256: str
    bundle_bytes: int
    rows_in: int
    rows_out: int
    rows_suppressed: int
    consenting_providers: list[str]
    recipients: list[str] = Field(description="the science partners whose researchers receive it")
    expires_on: date
    created_at: datetime
    requested_by: str
    audit_index: int = Field(description="index of the release's entry in the audit log")


class RecipientIn(_In):
    """A researcher's own age public key, made on their own machine."""

    recipient: str = Field(
        min_length=1, max_length=100, description="age X25519 recipient (age1...)"
    )


class RecipientOut(BaseModel):
    """One version of a researcher's age recipient under an agreement."""

    id: str
    agreement_id: str
    version: int
    partner_id: str
    principal_id: str
    recipient: str
    status: Literal["pending", "confirmed", "revoked"]
    added_by: str
    added_at: datetime
    confirmed_by: str | None
    confirmed_at: datetime | None
    revoked_by: str | None
    revoked_at: datetime | None
    replaced_by: str | None = Field(description="the recipient that replaced this one")
