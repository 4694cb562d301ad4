"""Privacy officers sign in to the workbench through their organisation's provider.

A real provider (oidc-provider) per partner; the person's browser is an HTTP client
walking the provider's form. What is checked: the code flow with PKCE and nonce, the
mapping of (iss, sub) to a privacy officer of that partner, a clear page and an audit
entry for anyone else, the ID token's nonce and acr, sign-out with the provider's
logout, and token paste only in development mode.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx2
import pytest
from fastapi.testclient import TestClient
from sqlmodel import col, select

from gateway.config import Mode
from gateway.identity import service
from gateway.identity.service import CLI_ACTOR
from gateway.models.audit import AuditEntry
from gateway.vocabulary import Role
from gateway.web import sessions
from gateway.web.sessions import COOKIE
from tests.oidc.conftest import (
    CALLBACK,
    GEMEENTE,
    GEMEENTE_PO,
    RIEC,
    RIEC_OPERATOR,
    RIEC_PO,
    SIGN_IN,
    World,
    provider_body,
)
from tests.oidc.idp import ACR_LOW, Idp, sign_in_at_idp, start_idp
from tests.workbench.helpers import app_ctx

POLITIE = "politie-noord-nederland"

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def browser(world: World) -> Iterator[TestClient]:
    """An HTTPS client with its own cookie jar, as a person's browser."""
    with TestClient(
        world.gateway.client.app, base_url="https://testserver", raise_server_exceptions=False
    ) as client:
        yield client


def start(browser: TestClient, partner: str) -> str:
    response = browser.get(f"/workbench/sign-in/oidc/{partner}", follow_redirects=False)
    assert response.status_code == 303, response.text
    return response.headers["location"]


def come_back(browser: TestClient, callback: str) -> httpx2.Response:
    parts = urlsplit(callback)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == (
        "https://testserver/workbench/oidc/callback"
    )
    return browser.get(f"{parts.path}?{parts.query}", follow_redirects=False)


def sign_in(browser: TestClient, partner: str, login: str, **kw: str) -> httpx2.Response:
    return come_back(browser, sign_in_at_idp(start(browser, partner), login, **kw))


def last_events(world: World, n: int = 5) -> list[str]:
    with world.gateway.database.read() as session:
        rows = session.exec(select(AuditEntry).order_by(col(AuditEntry.leaf_index).desc())).all()
    return [row.event_type for row in rows[:n]]


def test_the_authorization_request_uses_pkce_s256_a_nonce_and_the_allowed_acr(
    world: World, browser: TestClient
) -> None:
    query = parse_qs(urlsplit(start(browser, GEMEENTE)).query)
    assert query["response_type"] == ["code"]
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert query["scope"] == ["openid"] and len(query["nonce"][0]) >= 32
    assert query["acr_values"] == ["urn:gateway:loa:substantial"]
    assert query["redirect_uri"] == ["https://testserver/workbench/oidc/callback"]


def test_a_privacy_officer_signs_in_through_their_partners_provider(
    world: World, browser: TestClient
) -> None:
    page = browser.get("/workbench/sign-in")
    assert 'id="sign-in-gemeente-smallingerland"' in page.text
    response = sign_in(browser, GEMEENTE, "gerda")
    assert response.status_code == 200, response.text
    assert 'http-equiv="refresh"' in response.text
    assert COOKIE in response.headers["set-cookie"]
    home = browser.get("/workbench/", follow_redirects=False)
    assert home.status_code == 200 and GEMEENTE_PO in home.text
    assert "workbench:session:start" in last_events(world)


def test_a_person_the_gateway_does_not_know_is_told_to_ask_their_operator(
    world: World, browser: TestClient
) -> None:
    response = sign_in(browser, GEMEENTE, "someone-else")
    assert response.status_code == 403
    assert 'id="not-enrolled"' in response.text and "operator" in response.text
    assert COOKIE not in response.headers.get("set-cookie", "")
    assert last_events(world, 1) == ["workbench:session:refuse"]
    assert browser.get("/workbench/", follow_redirects=False).status_code == 303


def test_a_person_of_one_partner_is_nobody_at_the_other_partners_provider(
    world: World, browser: TestClient
) -> None:
    # gerda is the gemeente's; the RIEC's provider vouching for a "gerda" is someone else
    response = sign_in(browser, RIEC, "gerda")
    assert response.status_code == 403 and 'id="not-enrolled"' in response.text


def test_an_id_token_with_another_nonce_is_refused(world: World, browser: TestClient) -> None:
    url = urlsplit(start(browser, GEMEENTE))
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    query["nonce"] = "a-nonce-this-browser-never-got-0123456789"
    forged = urlunsplit(url._replace(query=urlencode(query)))
    response = come_back(browser, sign_in_at_idp(forged, "gerda"))
    assert response.status_code == 401
    assert 'data-reason="wrong-nonce"' in response.text
    assert COOKIE not in response.headers.get("set-cookie", "")
    assert last_events(world, 1) == ["workbench:session:refuse"]


def test_a_sign_in_below_the_partners_assurance_level_is_refused(
    world: World, browser: TestClient
) -> None:
    response = sign_in(browser, GEMEENTE, "gerda", acr=ACR_LOW)
    assert response.status_code == 401
    assert 'data-reason="acr-not-allowed"' in response.text


def test_a_callback_without_the_browsers_state_is_refused(
    world: World, browser: TestClient
) -> None:
    callback = sign_in_at_idp(start(browser, GEMEENTE), "gerda")
    with TestClient(
        world.gateway.client.app, base_url="https://testserver", raise_server_exceptions=False
    ) as other:  # an attacker's callback URL opened in the victim's browser
        response = come_back(other, callback)
    assert response.status_code == 400 and 'data-reason="bad-state"' in response.text
    tampered = callback.replace("state=", "state=x")
    assert come_back(browser, tampered).status_code == 400


def test_sign_out_ends_the_session_and_offers_the_providers_logout(
    world: World, browser: TestClient
) -> None:
    assert sign_in(browser, GEMEENTE, "gerda").status_code == 200
    home = browser.get("/workbench/")
    match = CSRF.search(home.text)
    assert match is not None
    response = browser.post("/workbench/sign-out", data={"csrf_token": match.group(1)})
    assert response.status_code == 200
    link = re.search(r'id="provider-logout" href="([^"]+)"', response.text)
    assert link is not None
    logout = urlsplit(link.group(1).replace("&amp;", "&"))
    assert f"{logout.scheme}://{logout.netloc}" == world.idps.gemeente.issuer
    assert parse_qs(logout.query)["client_id"] == [world.idps.gemeente.client_id]
    assert browser.get("/workbench/", follow_redirects=False).status_code == 303
    assert "workbench:session:end" in last_events(world)


def test_token_paste_is_refused_in_production_mode(world: World, browser: TestClient) -> None:
    ctx = app_ctx(world.gateway.client)
    development = ctx.settings
    ctx.settings = development.model_copy(update={"mode": Mode.PRODUCTION})
    try:
        page = browser.get("/workbench/sign-in")
        assert 'id="token"' not in page.text
        assert 'id="sign-in-gemeente-smallingerland"' in page.text
        nonce = browser.cookies.get(sessions.SIGN_IN_COOKIE)
        assert nonce  # a forced post with a valid form token is refused all the same
        response = browser.post(
            "/workbench/sign-in",
            data={
                "token": world.gateway.tokens[RIEC_PO],
                "csrf_token": sessions.sign_in_csrf(development, nonce),
            },
            follow_redirects=False,
        )
        assert response.status_code == 403 and "development mode only" in response.text
        assert COOKIE not in response.headers.get("set-cookie", "")
    finally:
        ctx.settings = development
    page = browser.get("/workbench/sign-in")
    assert 'id="token"' in page.text  # development mode keeps it


@pytest.fixture(scope="module")
def key_idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Idp]:
    """A provider at which the gateway authenticates with private_key_jwt."""
    folder = tmp_path_factory.mktemp("key-idp")
    with start_idp(folder, "politie", [CALLBACK], [SIGN_IN], private_key_jwt=True) as idp:
        yield idp


def test_the_gateway_authenticates_with_private_key_jwt_where_the_partner_wants_it(
    world: World, browser: TestClient, key_idp: Idp
) -> None:
    assert key_idp.client_key is not None
    body = provider_body(key_idp) | {
        "client_auth": "private_key_jwt",
        "client_credential": json.dumps(key_idp.client_key.as_dict(private=True)),
    }
    gateway = world.gateway
    response = gateway.client.put(
        f"/v1/partners/{POLITIE}/oidc-provider", json=body, headers=gateway.auth(RIEC_OPERATOR)
    )
    assert response.status_code == 200, response.text
    with gateway.database.write() as session:
        service.add_principal(
            session,
            gateway.clock,
            CLI_ACTOR,
            partner_id=POLITIE,
            role=Role.OPERATOR,
            label="politie operator (test)",
            principal_id=f"{POLITIE}.operator",
        )
        new, _ = service.issue_token(
            session, gateway.clock, CLI_ACTOR, f"{POLITIE}.operator", timedelta(days=1)
        )
    gateway.tokens[f"{POLITIE}.operator"] = new.plaintext
    world.link(f"{POLITIE}.operator", f"{POLITIE}.privacy-officer", "piet")
    response = sign_in(browser, POLITIE, "piet")
    assert response.status_code == 200, response.text
    assert browser.get("/workbench/", follow_redirects=False).status_code == 200
