"""The workbench's pages and static files, installed on the API app (see ``gateway.web``).

Kept out of the package's ``__init__`` so that the pages, which import from
``gateway.web``'s modules, and the package do not import each other.
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
    register,
    versions,
)

PAGE_ROUTERS = (
    auth.router,
    oidc.router,
    policy.router,
    proposals.router,
    versions.router,
    register.router,
    consents.router,
    recipients.router,
    audit.router,
)


def install(app: FastAPI) -> None:
    """Add the workbench's pages and its static files (htmx, CSS) to ``app``."""
    for router in PAGE_ROUTERS:
        app.include_router(router)
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC_DIR), name="workbench-static")
