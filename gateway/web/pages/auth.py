"""Sign-in and sign-out. Only privacy officers may sign in to the workbench.

People sign in through their organisation's identity provider (``pages/oidc.py``).
In development mode the form also takes an officer's bearer token once; it is checked
exactly like an API token and never stored or shown again. Production mode refuses
token paste. The form is protected against login CSRF by a pre-session nonce cookie and
its MAC in the form. Signing out of a provider-backed session offers the provider's
RP-initiated logout.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from gateway.api.deps import Ctx
from gateway.config import Mode
from gateway.context import AppContext
from gateway.errors import AuthenticationError, PermissionDeniedError
from gateway.identity.oidc import sign_in_choices
from gateway.identity.service import authenticate
from gateway.keys.hmacs import same
from gateway.web import sessions
from gateway.web.framework import (
    PREFIX,
    Form,
    WebRoute,
    WebUser,
    check_csrf,
    current_user,
    privacy_officer_only,
    redirect,
    render,
)
from gateway.web.pages.oidc import logout_url

router = APIRouter(prefix=PREFIX, route_class=WebRoute, include_in_schema=False)


def set_cookie(response: Response, name: str, value: str, *, max_age: int | None = None) -> None:
    """Set a workbench cookie: ``HttpOnly; Secure; SameSite=Strict; Path=/`` (``__Host-``)."""
    response.set_cookie(
        name, value, max_age=max_age, httponly=True, secure=True, samesite="strict", path="/"
    )


def delete_cookie(response: Response, name: str) -> None:
    """Expire a workbench cookie (same attributes as when it was set)."""
    response.delete_cookie(name, httponly=True, secure=True, samesite="strict", path="/")


def paste_allowed(ctx: AppContext) -> bool:
    """Return whether the workbench takes a pasted bearer token: development mode only."""
    return ctx.settings.mode is Mode.DEVELOPMENT


def _sign_in_form(request: Request, ctx: Ctx, *, error: str = "", status: int = 200) -> Response:
    nonce = sessions.new_sign_in_nonce()
    with ctx.db.read() as session:
        providers = sign_in_choices(session)
    response = render(
        request,
        "sign_in.html",
        None,
        status_code=status,
        sign_in_token=sessions.sign_in_csrf(ctx.settings, nonce),
        error=error,
        providers=providers,
        paste_allowed=paste_allowed(ctx),
    )
    set_cookie(response, sessions.SIGN_IN_COOKIE, nonce, max_age=3600)
    return response


@router.get("/sign-in")
def sign_in_page(request: Request, ctx: Ctx) -> Response:
    """Show the sign-in form."""
    return _sign_in_form(request, ctx)


@router.post("/sign-in")
def sign_in(request: Request, ctx: Ctx, form: Form) -> Response:
    """Check the token, open a session for a privacy officer, and go to the policy page."""
    nonce = request.cookies.get(sessions.SIGN_IN_COOKIE, "")
    given = str(form.get("csrf_token") or "")
    expected = sessions.sign_in_csrf(ctx.settings, nonce) if nonce else ""
    try:
        check_csrf(request, form, expected or "-")
        if not nonce or not same(given, expected):
            raise PermissionDeniedError("the sign-in form expired; try again")
        if not paste_allowed(ctx):
            raise PermissionDeniedError(
                "signing in with a token is for development mode only; sign in with your "
                "organisation's account"
            )
        token = str(form.get("token") or "").strip()
        with ctx.db.read() as session:
            caller = authenticate(session, token, ctx.clock)
        try:
            privacy_officer_only(caller)  # the API's own role check
        except PermissionDeniedError as exc:
            raise PermissionDeniedError(
                "only privacy officers can sign in to the workbench"
            ) from exc
    except AuthenticationError:
        return _sign_in_form(request, ctx, error="This token is not valid.", status=401)
    except PermissionDeniedError as exc:
        return _sign_in_form(request, ctx, error=exc.detail, status=403)
    raw = sessions.open_session(ctx.db, ctx.clock, ctx.settings, caller)
    response = redirect(f"{PREFIX}/")
    set_cookie(response, sessions.COOKIE, raw)
    delete_cookie(response, sessions.SIGN_IN_COOKIE)
    return response


@router.post("/sign-out")
def sign_out(
    request: Request, ctx: Ctx, form: Form, user: Annotated[WebUser, Depends(current_user)]
) -> Response:
    """End the session (CSRF-checked) and go back to the sign-in form."""
    check_csrf(request, form, user.csrf_token)
    sessions.end_session(ctx.db, ctx.clock, request.cookies.get(sessions.COOKIE, ""))
    provider_logout = logout_url(request, ctx, user.caller.partner_id)
    if provider_logout is None:
        response = redirect(f"{PREFIX}/sign-in")
    else:
        response = render(request, "signed_out.html", None, logout_url=provider_logout)
    delete_cookie(response, sessions.COOKIE)
    return response
