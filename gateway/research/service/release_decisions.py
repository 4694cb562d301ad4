"""Who may ask for a release, and what the policy allows into it.

Checked before any row is read: the requester (one of the agreement's researchers or a
privacy officer of a RIEC it names; the host's CLI is not checked), the signing key the
agreement pins, the science partners in the registry, and the policy's decision for
every receiving science partner and (provider, instrument) pair, with ``consent: given``
only for providers whose privacy officer consented to the agreement's current version.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlmodel import Session

from gateway.context import AppContext
from gateway.errors import ConflictError
from gateway.identity.service import Caller
from gateway.models.partners import Partner
from gateway.policy.decision import NONE, Action, Consent, Decision, DecisionRequest, Relation
from gateway.research.agreements import Agreement
from gateway.research.errors import (
    AgreementPolicyConflictError,
    NotEntitledError,
    SigningKeyNotPinnedError,
)
from gateway.research.obligations import unmet_obligations
from gateway.research.service.agreement_access import is_researcher, named_partners
from gateway.vocabulary import Role


def require_may_request(caller: Caller, agreement: Agreement) -> None:
    """Pass a researcher of the agreement or a RIEC privacy officer it names; else 403."""
    riec_officer = (
        caller.role is Role.PRIVACY_OFFICER
        and caller.partner_kind == "riec"
        and caller.partner_id in named_partners(agreement)
    )
    if not (riec_officer or is_researcher(caller, agreement)):
        raise NotEntitledError(
            "a release is requested by one of the agreement's researchers or by a privacy "
            "officer of a RIEC the agreement names",
            agreement=agreement.id,
        )


def require_pinned_signer(ctx: AppContext, agreement: Agreement) -> None:
    """Refuse (SigningKeyNotPinnedError) when the agreement pins another signing key."""
    pin = agreement.signing_pin
    if pin is not None and ctx.signer.fingerprint != pin:
        raise SigningKeyNotPinnedError(
            f"agreement {agreement.id} pins signing key sha256:{pin}, but this gateway "
            f"signs with sha256:{ctx.signer.fingerprint}; nothing is released until "
            "the agreement pins the gateway's key",
            agreement=agreement.id,
        )


def science_partners(session: Session, agreement: Agreement) -> list[Partner]:
    """Return the agreement's science partners; ConflictError unless each is active science."""
    found = []
    for ref in agreement.science_partners:
        partner = session.get(Partner, ref.partner)
        if partner is None or not partner.active or partner.kind != "science":
            raise ConflictError(
                f"science partner {ref.partner} is not an active science partner in the "
                "registry; its researchers cannot receive a release"
            )
        found.append(partner)
    return found


def decide_release(
    ctx: AppContext,
    agreement: Agreement,
    science: Sequence[Partner],
    kinds: Mapping[str, str],
    consented: set[str],
) -> tuple[list[tuple[DecisionRequest, Decision]], set[tuple[str, str]]]:
    """Ask the policy for every receiving partner and (provider, instrument) pair.

    Returns every (request, decision) and the allowed (provider, instrument) pairs.
    Raises AgreementPolicyConflictError when an allowing rule's obligations are finer
    than the agreement.
    """
    pairs: list[tuple[DecisionRequest, Decision]] = []
    allowed: set[tuple[str, str]] = set()
    for instrument in agreement.instruments:
        for provider in instrument.providers:
            ok = True
            for partner in science:
                request = DecisionRequest(
                    partner_id=partner.id,
                    partner_kind=partner.kind,
                    role=Role.RESEARCHER.value,
                    action=Action.EXTRACT_RELEASE,
                    purpose=agreement.purpose,
                    category=instrument.category,
                    legal_basis=instrument.legal_basis,
                    provider_kind=kinds.get(provider, NONE),
                    relation=Relation.OTHER,
                    consent=Consent.GIVEN if provider in consented else Consent.ABSENT,
                )
                decision = ctx.policy.decide(request)
                pairs.append((request, decision))
                ok = ok and decision.allowed
                if decision.allowed:
                    problems = unmet_obligations(agreement, decision.obligations)
                    if problems:
                        raise AgreementPolicyConflictError(
                            f"agreement {agreement.id} conflicts with policy rule "
                            f"{decision.rule_id}: " + "; ".join(problems)
                        )
            if ok:
                allowed.add((provider, instrument.id))
    return pairs, allowed
