"""Stored policy versions, with a rollback proposal for any earlier one."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from gateway.api.deps import Ctx, VersionId
from gateway.models.policy_versions import VersionState
from gateway.policy import proposals, versions
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
add_nav("versions", "Versies · versions", f"{PREFIX}/versions", order=30)


@router.get("/versions")
def version_list(request: Request, user: Officer, ctx: Ctx) -> Response:
    """List every version, newest first; earlier ones can be proposed for rollback."""
    with ctx.db.read() as session:
        rows = versions.list_versions(session)
    return render(
        request, "versions.html", user, nav="versions", versions=rows, active=VersionState.ACTIVE
    )


@router.post("/versions/{version_id}/rollback")
def rollback(version_id: VersionId, user: CsrfOfficer, ctx: Ctx, form: Form) -> Response:
    """Propose to reactivate an earlier version; show the new proposal."""
    proposal = proposals.propose_rollback(
        ctx.db,
        ctx.clock,
        user.caller,
        version_id,
        description=str(form.get("description") or ""),
    )
    return redirect(f"{PREFIX}/proposals/{proposal.id}")
