"""The research use cases, one module each, behind the thin ``Research`` facade.

Every use case goes through ``gateway.usecase``: what the policy governs is asked first,
a refusal is on the record (decision and audit entry) in a transaction of its own, and
an allowed change commits together with its decisions and its audit entry, or not at
all. Research rows are pseudonymised on intake and sealed with the project's row key
(``research.<project>`` in the key ring), so raw identifiers are never stored and
shredding the project makes its rows unreadable.

- ``agreement_access``: the agreement, and where the caller stands in it;
- ``consent``: a provider's privacy officer records consent, refusal or revocation;
- ``rows``: a system or analyst of a provider the instrument names delivers rows;
- ``withdrawal``: a questionnaire's intake partner records a respondent's withdrawal;
- ``release``: a researcher, a RIEC privacy officer the agreement names, or
  ``gateway extract run`` releases the rows the policy and the providers allow;
- ``duo``: the agreement's DUO conditions checked on releases and downloads (audited);
- ``reading``: release records, bundles (the agreement's researchers only) and proofs;
- ``shredding``: the project's keys destroyed at the end of its retention or on request;
- ``results``: the values these return.

Routes, pages and the CLI call the facade; new code may call the modules directly.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from gateway.context import AppContext
from gateway.identity.service import Actor, Caller
from gateway.research.agreements import Agreement
from gateway.research.consent_states import ConsentDecision
from gateway.research.duo import DeclaredUse
from gateway.research.extract import ProgressSink
from gateway.research.service import (
    agreement_access,
    consent,
    reading,
    release,
    shredding,
    withdrawal,
)
from gateway.research.service import rows as row_intake
from gateway.research.service.agreement_access import rows_key_id
from gateway.research.service.results import (
    ConsentsView,
    ConsentView,
    IntakeResult,
    ReleaseView,
    WithdrawalResult,
)
from gateway.research.service.shredding import require_project, shred_project_on_request

__all__ = [
    "ConsentView",
    "ConsentsView",
    "IntakeResult",
    "ReleaseView",
    "Research",
    "WithdrawalResult",
    "require_project",
    "rows_key_id",
    "shred_project_on_request",
]


class Research:
    """The research use cases bound to one gateway context; each call is one use case."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def agreements(self) -> list[Agreement]:
        """Return every loaded agreement, by id."""
        return agreement_access.all_agreements(self.ctx)

    def agreement(self, agreement_id: str) -> Agreement:
        """Return one agreement; raise NotFoundError if none has that id."""
        return agreement_access.find_agreement(self.ctx, agreement_id)

    def record_consent(
        self, caller: Caller, agreement_id: str, decision: ConsentDecision, note: str | None
    ) -> ConsentView:
        """Record a provider's consent decision; see ``consent.record_consent``."""
        return consent.record_consent(self.ctx, caller, agreement_id, decision, note)

    def consents(self, caller: Caller, agreement_id: str) -> ConsentsView:
        """Return the providers' states and the history; see ``consent.consents``."""
        return consent.consents(self.ctx, caller, agreement_id)

    def submit_rows(
        self,
        caller: Caller,
        agreement_id: str,
        idempotency_key: str,
        instrument_id: str,
        rows: Sequence[Mapping[str, Any]],
    ) -> IntakeResult:
        """Store a provider's rows, pseudonymised and sealed; see ``rows.submit_rows``."""
        return row_intake.submit_rows(
            self.ctx, caller, agreement_id, idempotency_key, instrument_id, rows
        )

    def withdraw(self, caller: Caller, agreement_id: str, respondent_id: str) -> WithdrawalResult:
        """Record a respondent's withdrawal; see ``withdrawal.withdraw``."""
        return withdrawal.withdraw(self.ctx, caller, agreement_id, respondent_id)

    def release(
        self,
        actor: Actor,
        agreement_id: str,
        *,
        caller: Caller | None = None,
        progress: ProgressSink | None = None,
        declared_use: Collection[DeclaredUse] = (),
    ) -> ReleaseView:
        """Release the agreement's stored rows; see ``release.release``."""
        return release.release(
            self.ctx,
            actor,
            agreement_id,
            caller=caller,
            progress=progress,
            declared_use=declared_use,
        )

    def recover(self) -> dict[str, list[str]]:
        """Complete or discard bundles that interrupted releases left; return what was done."""
        return release.recover(self.ctx)

    def releases(self, caller: Caller, agreement_id: str) -> list[ReleaseView]:
        """Return an agreement's releases, newest first; see ``reading.releases``."""
        return reading.releases(self.ctx, caller, agreement_id)

    def release_view(self, caller: Caller, release_id: str) -> ReleaseView:
        """Return one release's record; see ``reading.release_record``."""
        return reading.release_record(self.ctx, caller, release_id)

    def bundle(self, caller: Caller, release_id: str) -> Path:
        """Return a release's bundle for a researcher (audited); see ``reading.bundle``."""
        return reading.bundle(self.ctx, caller, release_id)

    def proof(self, caller: Caller, release_id: str) -> str:
        """Return the release's audit proof for those who may see it; see ``reading.proof``."""
        return reading.proof(self.ctx, caller, release_id)

    def proof_text(self, release_id: str) -> str:
        """Return the release's tlog-proof (no caller check: the host's CLI)."""
        return reading.proof_text(self.ctx, release_id)

    def shred_project(self, actor: Actor, agreement_id: str, *, by: str | None = None) -> bool:
        """Destroy the project's secret and row key; see ``shredding.shred_project``."""
        return shredding.shred_project(self.ctx, actor, agreement_id, by=by)
