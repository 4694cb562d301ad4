"""Provider consent to an agreement: a privacy officer records it; officers and researchers read it.

A decision is recorded only for a provider the agreement names, by a role the policy
allows (``consent:record``), and in one transaction with its decision record and audit
entry. Decisions on one agreement are serialised on the audit log's head, so a
revocation always sees the consent it revokes.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from gateway import usecase
from gateway.audit import log as audit_log
from gateway.audit.events import AuditEventType
from gateway.context import AppContext
from gateway.errors import InvalidInputError
from gateway.identity.service import Actor, Caller
from gateway.models.research import ResearchConsent
from gateway.policy.decision import Action, DecisionRequest
from gateway.research.agreements import Agreement
from gateway.research.consent_states import (
    ConsentDecision,
    ConsentEntry,
    ConsentState,
    current_states,
)
from gateway.research.errors import ConsentNotGivenError
from gateway.research.service.agreement_access import (
    agreement_refs,
    find_agreement,
    provider_ref,
    require_may_see,
)
from gateway.research.service.results import (
    ConsentsView,
    ConsentView,
    consent_entry_of,
    consent_view_of,
)

MAX_NOTE_LENGTH = 500


def consent_history(session: Session, agreement: Agreement) -> list[ConsentEntry]:
    """Return every consent decision on the agreement (all versions), in recorded order."""
    rows = session.exec(
        select(ResearchConsent)
        .where(ResearchConsent.agreement_id == agreement.id)
        .order_by(col(ResearchConsent.id))
    ).all()
    return [consent_entry_of(r) for r in rows]


def record_consent(
    ctx: AppContext,
    caller: Caller,
    agreement_id: str,
    decision: ConsentDecision,
    note: str | None,
) -> ConsentView:
    """A provider's privacy officer records consent, refusal or revocation; return the state.

    Raises NotFoundError, NotAProviderError, PolicyDeniedError (e.g. not a privacy
    officer), ConsentNotGivenError (revoking without a consent) or InvalidInputError.
    """
    agreement = find_agreement(ctx, agreement_id)
    provider_ref(caller, agreement)
    if note is not None and len(note) > MAX_NOTE_LENGTH:
        raise InvalidInputError(f"a note has at most {MAX_NOTE_LENGTH} characters", field="note")
    request = DecisionRequest(
        partner_id=caller.partner_id,
        partner_kind=caller.partner_kind,
        role=caller.role.value,
        action=Action.CONSENT_RECORD,
        purpose=agreement.purpose,
    )
    actor = Actor.of(caller)
    (allowed,) = usecase.allow_or_refuse(ctx, actor, [request], "recording consent")
    now = ctx.clock.now()
    with ctx.db.write() as session:
        audit_log.lock_head(session)  # serialises decisions on one agreement
        state = current_states(
            consent_history(session, agreement), [caller.partner_id], agreement.version
        )[caller.partner_id]
        if decision is ConsentDecision.REVOKE and (
            state is None or state.state is not ConsentState.CONSENTED
        ):
            raise ConsentNotGivenError(
                f"{caller.partner_id} has no consent to version {agreement.version} of "
                "this agreement to revoke"
            )
        leaf = usecase.record(
            session,
            ctx.clock,
            actor,
            AuditEventType.RESEARCH_CONSENT_RECORD,
            decisions=[(request, allowed)],
            purpose=agreement.purpose,
            legal_basis=agreement.legal_basis,
            parties=[p.partner for p in agreement.science_partners],
            refs=agreement_refs(agreement, consent=decision.value, provider=caller.partner_id),
            details={"note": note} if note else None,
            sequenced=True,
        )
        session.add(
            ResearchConsent(
                agreement_id=agreement.id,
                agreement_version=agreement.version,
                provider_id=caller.partner_id,
                decision=decision.value,
                note=note,
                recorded_by=caller.principal_id,
                recorded_at=now,
                policy_version=allowed.policy_version,
                audit_leaf_index=leaf,
            )
        )
    entry = ConsentEntry(
        caller.partner_id, decision, agreement.version, caller.principal_id, now, note
    )
    return consent_view_of(caller.partner_id, agreement, entry)


def consents(ctx: AppContext, caller: Caller, agreement_id: str) -> ConsentsView:
    """Return each provider's current state and the history.

    Raises NotFoundError, or NotEntitledError for anyone but the agreement's researchers
    and the privacy officers of the partners it names.
    """
    agreement = find_agreement(ctx, agreement_id)
    require_may_see(caller, agreement)
    with ctx.db.read() as session:
        history = consent_history(session, agreement)
    providers = [p.partner for p in agreement.providers]
    current = current_states(history, providers, agreement.version)
    return ConsentsView(
        agreement_id=agreement.id,
        agreement_version=agreement.version,
        providers=[consent_view_of(p, agreement, current[p]) for p in providers],
        history=history,
    )
