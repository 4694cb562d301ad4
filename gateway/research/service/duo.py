"""Enforcing an agreement's DUO conditions on releases and downloads, with audited refusals.

The checks are ``gateway.research.duo_checks``; here an unmet condition is recorded (an
``access refuse`` entry naming the agreement and the DUO term, in a transaction of its
own, so the refusal is on the record although nothing changed) and raised:
``DuoUseRestrictedError`` (403) when the condition excludes the caller,
``DuoConditionNotMetError`` (409) otherwise.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlmodel import col, select

from gateway import usecase
from gateway.audit.events import AuditEventType, RefValue
from gateway.clock import as_utc
from gateway.context import AppContext
from gateway.identity.service import Actor, Caller
from gateway.models.research import ResearchRecipient
from gateway.research.agreements import Agreement, ResearcherEntitlement
from gateway.research.duo import DeclaredUse
from gateway.research.duo_checks import Unmet, download_unmet, release_unmet
from gateway.research.errors import DuoConditionNotMetError, DuoUseRestrictedError
from gateway.research.recipients import RecipientStatus
from gateway.research.service.agreement_access import agreement_refs


def require_release_conditions(
    ctx: AppContext,
    actor: Actor,
    agreement: Agreement,
    at: datetime,
    declared_use: Collection[DeclaredUse],
) -> None:
    """Pass a release the agreement's DUO conditions allow; else audit and raise.

    Raises DuoConditionNotMetError (time limit passed, no ethics approval reference,
    a declared use missing).
    """
    unmet = release_unmet(agreement, as_utc(at).date(), declared_use)
    if unmet is not None:
        refuse(ctx, actor, agreement, unmet, action="release")


def require_download_conditions(
    ctx: AppContext, caller: Caller, agreement: Agreement, release_id: str
) -> None:
    """Pass a download the agreement's DUO conditions allow; else audit and raise.

    Raises DuoConditionNotMetError (time limit passed) or DuoUseRestrictedError (the
    caller is not a researcher of the project, a named one or one of the institutions
    the conditions require).
    """
    unmet = download_unmet(
        agreement,
        ctx.clock.now().date(),
        caller.principal_id,
        caller.partner_id,
        project_researchers(ctx, agreement.project),
    )
    if unmet is not None:
        refuse(ctx, Actor.of(caller), agreement, unmet, action="download", release=release_id)


def project_researchers(ctx: AppContext, project: str) -> frozenset[str]:
    """Return the principals the agreements of ``project`` name (``researchers_are:
    named``) and those holding a confirmed key under any of them."""
    agreements = [a for a in ctx.agreements.values() if a.project == project]
    named = {
        r.principal
        for a in agreements
        if a.researchers_are is ResearcherEntitlement.NAMED
        for r in a.researchers
        if r.principal is not None
    }
    with ctx.db.read() as session:
        found = session.exec(
            select(ResearchRecipient.principal_id).where(
                col(ResearchRecipient.agreement_id).in_(sorted(a.id for a in agreements)),
                ResearchRecipient.status == RecipientStatus.CONFIRMED.value,
            )
        ).all()
    return frozenset({*named, *found})


def refuse(
    ctx: AppContext, actor: Actor, agreement: Agreement, unmet: Unmet, **refs: RefValue
) -> None:
    """Record the refusal of an unmet DUO condition in its own transaction, then raise it."""
    error = (DuoUseRestrictedError if unmet.restricts else DuoConditionNotMetError)(
        unmet.message, agreement=agreement.id, duo=unmet.term, shorthand=unmet.shorthand
    )
    with ctx.db.write() as session:
        usecase.record(
            session,
            ctx.clock,
            actor,
            AuditEventType.ACCESS_REFUSE,
            purpose=agreement.purpose,
            legal_basis=agreement.legal_basis,
            parties=[p.partner for p in agreement.science_partners],
            refs=agreement_refs(
                agreement, refusal=error.code, duo=unmet.term, shorthand=unmet.shorthand, **refs
            ),
            decided=False,
            policy_version=ctx.policy.version,
        )
    raise error
