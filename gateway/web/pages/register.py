"""The register of processing activities (AVG art. 30) in force, one section per activity."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from gateway.api.deps import Ctx
from gateway.policy.register import ART6_GROUNDS
from gateway.policy.register_history import register_in_force
from gateway.web.framework import PREFIX, Officer, WebRoute, add_nav, render

router = APIRouter(prefix=PREFIX, route_class=WebRoute, include_in_schema=False)
add_nav("register", "Register · art. 30", f"{PREFIX}/register", order=25)


@router.get("/register")
def register_page(request: Request, user: Officer, ctx: Ctx) -> Response:
    """Show every activity of the active version's register with its art. 30 fields."""
    with ctx.db.read() as session:
        version, register = register_in_force(session)
    return render(
        request,
        "register.html",
        user,
        nav="register",
        version=version,
        activities=register.activities,
        grounds=ART6_GROUNDS,
    )
