"""The privacy officers' web workbench: server-rendered pages (Jinja2 and htmx) at /workbench.

Adding a page (for example the audit log browser or consents):

1. Write ``gateway/web/pages/<area>.py`` with
   ``router = APIRouter(prefix=PREFIX, route_class=WebRoute, include_in_schema=False)``
   and ``add_nav("<area>", "Label · label", f"{PREFIX}/<area>", order=N)`` (its place).
2. Give each GET route a ``user: Officer`` parameter (POST routes: ``user: CsrfOfficer``
   and ``form: Form``), call the same service the API route calls with ``user.caller``,
   and return ``render(request, "<area>.html", user, nav="<area>", **values)`` or
   ``redirect(...)`` after a change. Domain errors need no handling: ``WebRoute`` shows
   them as an error page with the API's status.
3. Write ``templates/<area>.html`` as ``{% extends "base.html" %}`` with a
   ``{% block content %}``; forms that change state include ``{% include "_csrf.html" %}``;
   htmx requests send the token in a header on their own.
4. Add the router to ``PAGE_ROUTERS`` below.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from gateway.web.framework import STATIC_DIR, STATIC_PATH
from gateway.web.pages import (
    audit,
    auth,
    consents,
    oidc,
    policy,
    proposals,
    recipients,
    versions,
)

PAGE_ROUTERS = (
    auth.router,
    oidc.router,
    policy.router,
    proposals.router,
    versions.router,
    consents.router,
    recipients.router,
    audit.router,
)


def install(app: FastAPI) -> None:
    """Add the workbench's pages and its static files (htmx, CSS) to ``app``."""
    for router in PAGE_ROUTERS:
        app.include_router(router)
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC_DIR), name="workbench-static")
