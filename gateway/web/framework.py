"""The workbench's small web framework: pages, sessions, CSRF, rendering, navigation.

Every page route is declared on an ``APIRouter(route_class=WebRoute)`` and takes an
``Officer`` (a signed-in privacy officer; anyone else is sent to sign in) or, for any
state-changing request, a ``CsrfOfficer`` (also checks the synchronizer token from the
form field ``csrf_token`` or the ``X-CSRF-Token`` header that htmx sends). Routes call
the same services as the API with ``user.caller`` and render with ``render``; domain
errors become an HTML error page with the same status the API would give. ``WebRoute``
adds the Content-Security-Policy and the other security headers to every response.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import jinja2
from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData

from gateway.api.deps import Ctx, check_role
from gateway.api.problems import TYPE_PREFIX, status_for
from gateway.errors import GatewayError, PermissionDeniedError
from gateway.identity.service import Caller
from gateway.keys.hmacs import same
from gateway.vocabulary import Role
from gateway.web import sessions

PREFIX = "/workbench"
STATIC_PATH = f"{PREFIX}/static"
HERE = Path(__file__).resolve().parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=()",
}


@dataclass(frozen=True, slots=True)
class NavItem:
    """One entry of the navigation bar: its label, path, and the key pages mark active."""

    key: str
    label: str
    path: str
    order: int = 100


NAV: list[NavItem] = []
"""The navigation bar, in order. A new page appends its item with ``add_nav``."""


def add_nav(key: str, label: str, path: str, *, order: int = 100) -> None:
    """Add a navigation entry (once per key); entries are shown by ``order``, then added."""
    if all(item.key != key for item in NAV):
        NAV.append(NavItem(key, label, path, order))
        NAV.sort(key=lambda item: item.order)


templates = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
)


class SignInRequired(Exception):
    """No valid workbench session: the browser is sent to the sign-in page."""


@dataclass(frozen=True, slots=True)
class WebUser:
    """A signed-in principal: the caller the services see, and the page's CSRF token."""

    caller: Caller
    csrf_token: str


def is_htmx(request: Request) -> bool:
    """True for requests htmx made (they get fragments, not whole pages)."""
    return request.headers.get("hx-request") == "true"


def current_user(request: Request, ctx: Ctx) -> WebUser:
    """Return the signed-in user of this request; raise SignInRequired if there is none."""
    raw = request.cookies.get(sessions.COOKIE)
    if not raw:
        raise SignInRequired()
    resumed = sessions.resume(ctx.db, ctx.clock, ctx.settings, raw)
    if resumed is None:
        raise SignInRequired()
    request.state.principal_id = resumed.principal_id
    user = WebUser(resumed, sessions.csrf_token(ctx.settings, raw))
    request.state.web_user = user  # for error pages rendered after this point
    return user


def privacy_officer_only(caller: Caller) -> Caller:
    """The API's role check for privacy officers (raises PermissionDeniedError otherwise)."""
    return check_role(caller, Role.PRIVACY_OFFICER)


def officer(user: Annotated[WebUser, Depends(current_user)]) -> WebUser:
    """Return the user if a privacy officer (the API's own role check), else 403."""
    privacy_officer_only(user.caller)
    return user


Officer = Annotated[WebUser, Depends(officer)]


async def read_form(request: Request) -> FormData:
    """Return the request's form (urlencoded or multipart), parsed once."""
    return await request.form()


Form = Annotated[FormData, Depends(read_form)]


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is not None:
        return origin == f"{request.url.scheme}://{request.url.netloc}"
    site = request.headers.get("sec-fetch-site")
    return site in (None, "same-origin", "none")


def check_csrf(request: Request, form: FormData, expected: str) -> None:
    """Raise PermissionDeniedError unless the request is same-origin and carries ``expected``
    in the ``X-CSRF-Token`` header or the ``csrf_token`` form field."""
    given = request.headers.get("x-csrf-token") or str(form.get("csrf_token") or "")
    if not _same_origin(request) or not same(given, expected):
        raise PermissionDeniedError(
            "the form has expired or did not come from this workbench; reload the page and "
            "try again",
            reason="csrf",
        )


def csrf_officer(request: Request, user: Officer, form: Form) -> WebUser:
    """Return the privacy officer of a state-changing request whose CSRF token is valid."""
    check_csrf(request, form, user.csrf_token)
    return user


CsrfOfficer = Annotated[WebUser, Depends(csrf_officer)]


def render(
    request: Request,
    template: str,
    user: WebUser | None,
    *,
    status_code: int = 200,
    nav: str = "",
    **context: Any,
) -> HTMLResponse:
    """Return ``template`` rendered with the user, navigation and CSRF token filled in."""
    return templates.TemplateResponse(
        request,
        template,
        {
            "user": user,
            "csrf_token": user.csrf_token if user else "",
            "nav_items": NAV,
            "nav_active": nav,
            "prefix": PREFIX,
            "static": STATIC_PATH,
            **context,
        },
        status_code=status_code,
    )


def redirect(path: str, request: Request | None = None) -> Response:
    """Return a 303 redirect to ``path`` (for htmx: an ``HX-Redirect``)."""
    if request is not None and is_htmx(request):
        return Response(status_code=200, headers={"HX-Redirect": path})
    return RedirectResponse(path, status_code=303)


def _error_page(request: Request, status: int, code: str, title: str, detail: str) -> Response:
    user: WebUser | None = getattr(request.state, "web_user", None)
    template = "_error.html" if is_htmx(request) else "error.html"
    response = render(
        request,
        template,
        user,
        status_code=status,
        problem_type=TYPE_PREFIX + code,
        title=title,
        detail=detail,
        status=status,
    )
    if is_htmx(request):
        response.headers["HX-Retarget"] = "#flash"
        response.headers["HX-Reswap"] = "innerHTML"
    return response


class WebRoute(APIRoute):
    """A page route: HTML errors instead of problem+json, security headers on everything."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Return the handler wrapped with the workbench's error pages and headers."""
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                response = await handler(request)
            except SignInRequired:
                response = redirect(f"{PREFIX}/sign-in", request)
            except GatewayError as exc:
                response = _error_page(request, status_for(exc), exc.code, exc.title, exc.detail)
            except RequestValidationError:
                response = _error_page(
                    request,
                    422,
                    "validation-failed",
                    "Request validation failed",
                    "the form is incomplete or malformed",
                )
            response.headers.update(SECURITY_HEADERS)
            return response

        return page_handler
