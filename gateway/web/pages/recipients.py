"""Researchers' keys per agreement: a science partner's privacy officer confirms pending ones."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from gateway.api.deps import Ctx
from gateway.errors import PermissionDeniedError
from gateway.research.agreements import Agreement
from gateway.research.recipients import Recipients, RecipientView
from gateway.research.service import Research
from gateway.web.framework import (
    PREFIX,
    CsrfOfficer,
    Officer,
    WebRoute,
    add_nav,
    redirect,
    render,
)

router = APIRouter(prefix=PREFIX, route_class=WebRoute, include_in_schema=False)
add_nav("recipients", "Sleutels onderzoekers · researchers' keys", f"{PREFIX}/recipients", order=45)


@router.get("/recipients")
def recipients(request: Request, user: Officer, ctx: Ctx) -> Response:
    """List each agreement's researchers' keys where the officer's partner is a science partner."""
    keys = Recipients(ctx)
    rows: list[tuple[Agreement, list[RecipientView] | None]] = []
    for agreement in Research(ctx).agreements():
        try:
            views: list[RecipientView] | None = keys.list(user.caller, agreement)
        except PermissionDeniedError:
            views = None  # not a science partner of this agreement
        rows.append((agreement, views))
    return render(
        request,
        "recipients.html",
        user,
        nav="recipients",
        rows=rows,
        own=user.caller.partner_id,
    )


@router.post("/recipients/{agreement_id}/{recipient_id}/confirm")
def confirm(agreement_id: str, recipient_id: str, user: CsrfOfficer, ctx: Ctx) -> Response:
    """Confirm a pending key of a researcher of the officer's partner; back to the list."""
    agreement = Research(ctx).agreement(agreement_id)
    Recipients(ctx).confirm(user.caller, agreement, recipient_id)
    return redirect(f"{PREFIX}/recipients#recipient-{recipient_id}")
