"""Public shapes of cases, signals, hit/no-hit, outputs, transitions and records."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from gateway.schemas.base import StrictIn
from gateway.workflow.steps import OutputKind


class _In(StrictIn):
    """A request body of the case routes."""


class IdentifierIn(_In):
    """An identifier of a data subject (sent in a body, never in a URL)."""

    type: Literal["bsn", "kvk", "iban", "phone", "name", "address", "plate"]
    value: str = Field(min_length=1, max_length=200)
    person: int | None = Field(
        default=None,
        ge=0,
        le=99,
        description="identifiers given with the same number name one person "
        "(one line per person in the processing log)",
    )


class SignalIn(_In):
    """A signal that opens a case (step 1)."""

    process: Literal["casusaanpak", "handhavingsknelpunt", "gebiedsscan"]
    riec: str = Field(min_length=3, max_length=64, description="the RIEC partner id")
    legal_basis: str = Field(min_length=2, max_length=64)
    description: str = Field(min_length=1, max_length=10_000)
    subjects: list[IdentifierIn] = Field(default_factory=list, max_length=50)


class ParticipantIn(_In):
    """A partner to add to a case."""

    partner_id: str = Field(min_length=3, max_length=64)


class HoldingsIn(_In):
    """Identifiers a partner holds information on, for hit/no-hit (only keyed hashes kept)."""

    category: str = Field(min_length=2, max_length=64)
    identifiers: list[IdentifierIn] = Field(min_length=1, max_length=10_000)


class HoldingsOut(BaseModel):
    """How many new index entries were registered."""

    added: int


class HitQueryIn(_In):
    """The subject the RIEC asks about at step 2."""

    identifier: IdentifierIn


class GoDecisionIn(_In):
    """The stuurploeg's decision at step 2: go with purpose and legal basis, or no-go."""

    decision: Literal["go", "no-go"]
    purpose: str = Field(min_length=2, max_length=64)
    legal_basis: str = Field(min_length=2, max_length=64)
    motivation: str = Field(min_length=1, max_length=10_000)


class InterventionIn(_In):
    """An intervention the advice assigns to one participating partner."""

    partner_id: str = Field(min_length=3, max_length=64)
    purpose: str = Field(min_length=2, max_length=64, examples=["interventie-bestuurlijk"])
    description: str = Field(min_length=1, max_length=2_000)


class OutputIn(_In):
    """A step output: analysis (3), advice with interventions (4), results (5), evaluation (6)."""

    kind: Literal[OutputKind.ANALYSIS, OutputKind.ADVICE, OutputKind.RESULTS, OutputKind.EVALUATION]
    text: str = Field(min_length=1, max_length=50_000)
    interventions: list[InterventionIn] = Field(default_factory=list, max_length=50)


class TransitionIn(_In):
    """Move the case to ``to_step``; going back to 3 needs a reason; 7 may carry the closure."""

    to_step: int = Field(ge=1, le=7)
    reason: str | None = Field(default=None, max_length=500)
    closure: str | None = Field(default=None, max_length=10_000)


class RecordIn(_In):
    """A record shared into a case, with its provenance."""

    category: str = Field(min_length=2, max_length=64, examples=["police-incident"])
    legal_basis: str = Field(min_length=2, max_length=64, examples=["wpg-20"])
    purposes: list[str] = Field(min_length=1, max_length=10)
    onward: Literal["never", "with-provider-consent", "per-policy"] = "with-provider-consent"
    retention_days: int = Field(ge=1, le=7300, description="kept this long after the case closes")
    fields: dict[str, Any]
    summary: str | None = Field(
        default=None,
        max_length=5_000,
        description="what partners that may see only a summary get instead of the fields",
    )


class ShareOut(BaseModel):
    """A stored (or, on a retry, earlier stored) record."""

    record_id: str
    created: bool
