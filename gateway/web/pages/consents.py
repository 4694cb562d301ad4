"""Consents per research agreement: every provider's state, and the officer's own decision."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from gateway.api.deps import Ctx
from gateway.errors import InvalidInputError, PermissionDeniedError
from gateway.research.agreements import Agreement
from gateway.research.consent_states import ConsentDecision
from gateway.research.service import Research
from gateway.research.service.results import ConsentsView
from gateway.web.framework import (
    PREFIX,
    CsrfOfficer,
    Form,
    Officer,
    WebRoute,
    add_nav,
    redirect,
    render,
)

router = APIRouter(prefix=PREFIX, route_class=WebRoute, include_in_schema=False)
add_nav("consents", "Toestemmingen · consents", f"{PREFIX}/consents", order=40)


@router.get("/consents")
def consents(request: Request, user: Officer, ctx: Ctx) -> Response:
    """List the agreements with each provider's consent state (where the officer may see it)."""
    research = Research(ctx)
    rows: list[tuple[Agreement, ConsentsView | None]] = []
    for agreement in research.agreements():
        try:
            view: ConsentsView | None = research.consents(user.caller, agreement.id)
        except PermissionDeniedError:
            view = None  # the officer's partner is not named in this agreement
        rows.append((agreement, view))
    return render(
        request,
        "consents.html",
        user,
        nav="consents",
        rows=rows,
        own=user.caller.partner_id,
    )


@router.post("/consents/{agreement_id}")
def decide(agreement_id: str, user: CsrfOfficer, ctx: Ctx, form: Form) -> Response:
    """Record the officer's partner's consent, refusal or revocation; back to the list."""
    try:
        decision = ConsentDecision(str(form.get("decision") or ""))
    except ValueError as exc:
        raise InvalidInputError("choose consent, refuse or revoke", field="decision") from exc
    note = str(form.get("note") or "").strip() or None
    Research(ctx).record_consent(user.caller, agreement_id, decision, note)
    return redirect(f"{PREFIX}/consents#agreement-{agreement_id}")
