"""The active policy, as readable rules grouped by file, with reasons and sources."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from gateway.api.deps import Ctx
from gateway.policy import versions
from gateway.policy.pack import analyse_pack
from gateway.web.framework import PREFIX, Officer, WebRoute, add_nav, render
from gateway.web.views import rule_files

router = APIRouter(prefix=PREFIX, route_class=WebRoute, include_in_schema=False)
add_nav("policy", "Beleid · policy", f"{PREFIX}/", order=10)


@router.get("/")
def active_policy(request: Request, user: Officer, ctx: Ctx) -> Response:
    """Show the version in force: every rule with its conditions, reason and source."""
    with ctx.db.read() as session:
        version = versions.active_version(session)
    analysis = analyse_pack(versions.pack_of(version))
    return render(
        request,
        "policy.html",
        user,
        nav="policy",
        version=version,
        files=rule_files(analysis),
        rule_count=len(analysis.rules),
    )
