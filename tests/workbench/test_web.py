"""The workbench through the HTTP client (HTTPS, as browsers use it), on SQLite and
PostgreSQL: sign-in for privacy officers only, session cookies and expiry, CSRF, the
security headers, and the pages calling the same services with the same refusals."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from datetime import timedelta

import httpx2
import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from gateway.demo_partners import demo_person
from gateway.identity import service
from gateway.identity.service import CLI_ACTOR
from gateway.models.web_sessions import WorkbenchSession
from gateway.vocabulary import Role
from gateway.web.sessions import COOKIE
from tests.conftest import Gateway
from tests.workbench.helpers import (
    FLIPPING,
    GEMEENTE_ANALYST,
    GEMEENTE_PO,
    OFFICER_A,
    RULES_30,
    add_officer,
    app_ctx,
    record_decisions,
    widened_rules,
)

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match is not None, "no CSRF token on the page"
    return match.group(1)


Browser = Callable[[], TestClient]


@pytest.fixture
def browser(gateway: Gateway) -> Iterator[Browser]:
    """Return a factory of HTTPS clients (each its own cookie jar) on the gateway's app."""
    clients: list[TestClient] = []

    def make() -> TestClient:
        client = TestClient(
            gateway.client.app, base_url="https://testserver", raise_server_exceptions=False
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def sign_in(client: TestClient, token: str) -> tuple[int, str]:
    page = client.get("/workbench/sign-in")
    response = client.post(
        "/workbench/sign-in",
        data={"token": token, "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    return response.status_code, response.headers.get("set-cookie", "")


def signed_in(browser: Browser, token: str) -> TestClient:
    client = browser()
    status, _cookie = sign_in(client, token)
    assert status == 303
    return client


def propose_in_editor(client: TestClient, text: str) -> httpx2.Response:
    editor = client.get("/workbench/proposals/new")
    assert editor.status_code == 200
    return client.post(
        "/workbench/proposals",
        files={
            "csrf_token": (None, csrf_of(editor.text)),
            "title": (None, "Gemeente leest NLA-gegevens bij bestuurlijke interventie"),
            "description": (None, "for the Bibob procedure"),
            f"file:{RULES_30}": (None, text),
        },
        follow_redirects=False,
    )


def test_pages_need_a_privacy_officer_session(gateway: Gateway, browser: Browser) -> None:
    client = browser()
    response = client.get("/workbench/", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/workbench/sign-in"
    page = client.get("/workbench/sign-in")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "unsafe" not in csp
    assert "frame-ancestors 'none'" in csp and page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    status, cookie = sign_in(client, gateway.tokens[GEMEENTE_ANALYST])
    assert status == 403 and COOKIE not in cookie
    status, cookie = sign_in(client, "gw_0123456789abcdef_" + "x" * 43)
    assert status == 401 and COOKIE not in cookie
    forged = client.post(
        "/workbench/sign-in",
        data={"token": gateway.tokens[OFFICER_A], "csrf_token": "forged"},
        follow_redirects=False,
    )
    assert forged.status_code == 403 and COOKIE not in forged.headers.get("set-cookie", "")


def test_the_session_cookie_is_secure_and_only_its_hash_is_stored(
    gateway: Gateway, browser: Browser
) -> None:
    client = browser()
    status, cookie = sign_in(client, gateway.tokens[OFFICER_A])
    assert status == 303
    assert cookie.startswith(f"{COOKIE}=")
    for flag in ("HttpOnly", "Secure", "SameSite=strict", "Path=/"):
        assert flag in cookie
    raw = client.cookies[COOKIE]
    with gateway.database.read() as session:
        rows = session.exec(select(WorkbenchSession)).all()
    assert [r.id_sha256 for r in rows] == [hashlib.sha256(raw.encode()).hexdigest()]
    assert raw not in str([r.model_dump() for r in rows])
    page = client.get("/workbench/")
    assert page.status_code == 200
    assert "fiscaal-alleen-43c" in page.text and "Gemeente" in page.text
    assert "Uitvoeringsregeling Awr 2011 art. 43c" in page.text
    assert "rules/00-guardrails.yaml" in page.text
    assert "content-security-policy" in page.headers


def test_idle_and_absolute_expiry_and_sign_out(gateway: Gateway, browser: Browser) -> None:
    client = signed_in(browser, gateway.tokens[OFFICER_A])
    gateway.clock.advance(timedelta(minutes=31))
    assert client.get("/workbench/", follow_redirects=False).status_code == 303

    client = signed_in(browser, gateway.tokens[OFFICER_A])
    elapsed = timedelta()
    while client.get("/workbench/", follow_redirects=False).status_code == 200:
        assert elapsed < timedelta(hours=9), "the session outlived its absolute expiry"
        gateway.clock.advance(timedelta(minutes=20))  # active: never idle
        elapsed += timedelta(minutes=20)
    assert elapsed == timedelta(hours=8)

    client = signed_in(browser, gateway.tokens[OFFICER_A])
    old = client.cookies[COOKIE]
    page = client.get("/workbench/")
    signed_out = client.post(
        "/workbench/sign-out", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False
    )
    assert signed_out.status_code == 303
    replay = browser()
    replay.cookies.set(COOKIE, old)
    assert replay.get("/workbench/", follow_redirects=False).status_code == 303


def test_revoking_the_token_ends_the_session(gateway: Gateway, browser: Browser) -> None:
    client = signed_in(browser, gateway.tokens[OFFICER_A])
    token_id = gateway.tokens[OFFICER_A].split("_")[1]
    with gateway.database.write() as session:
        service.revoke_token(session, gateway.clock, CLI_ACTOR, token_id)
    assert client.get("/workbench/", follow_redirects=False).status_code == 303


def test_state_changes_need_the_csrf_token_and_the_same_origin(
    gateway: Gateway, browser: Browser
) -> None:
    client = signed_in(browser, gateway.tokens[OFFICER_A])
    token = csrf_of(client.get("/workbench/proposals/new").text)
    files = {"title": (None, "x"), f"file:{RULES_30}": (None, widened_rules())}
    missing = client.post("/workbench/proposals", files=files)
    assert missing.status_code == 403 and "expired" in missing.text
    assert "content-security-policy" in missing.headers
    cross = client.post(
        "/workbench/proposals",
        files={**files, "csrf_token": (None, token)},
        headers={"Origin": "https://evil.example"},
    )
    assert cross.status_code == 403
    other = signed_in(browser, gateway.tokens["gemeente-smallingerland.privacy-officer"])
    stolen = other.post("/workbench/proposals", files={**files, "csrf_token": (None, token)})
    assert stolen.status_code == 403  # a token is bound to its session
    lint = client.post(
        "/workbench/proposals/lint",
        files={f"file:{RULES_30}": (None, widened_rules())},
        headers={"X-CSRF-Token": token, "HX-Request": "true"},
    )
    assert lint.status_code == 200 and "Compileert" in lint.text
    listed = gateway.client.get("/v1/policies/proposals", headers=gateway.auth(OFFICER_A))
    assert listed.json() == []


def test_the_editor_shows_lint_errors_at_their_file_and_line(
    gateway: Gateway, browser: Browser
) -> None:
    client = signed_in(browser, gateway.tokens[OFFICER_A])
    broken = widened_rules().replace("labour-inspection]", "labour-inspectie]")
    response = propose_in_editor(client, broken)
    assert response.status_code == 422
    html: str = response.text
    line = next(n for n, t in enumerate(broken.splitlines(), 1) if "labour-inspectie" in t)
    section = html[html.index('id="file-rules-30-advies-tot-afsluiting.yaml"') :]
    section = section[: section.index("</details>")]
    assert f"line {line}</strong>: unknown category &#39;labour-inspectie&#39;" in section
    assert " open>" in section.split("\n")[0]
    assert "labour-inspectie]" in section  # the submitted text is kept for fixing
    assert (
        gateway.client.get("/v1/policies/proposals", headers=gateway.auth(OFFICER_A)).json() == []
    )


def test_propose_simulate_refuse_own_approval_and_approve_as_another_officer(
    gateway: Gateway, browser: Browser
) -> None:
    record_decisions(gateway.client, gateway.auth(GEMEENTE_ANALYST), flipping=2)
    a = signed_in(browser, gateway.tokens[OFFICER_A])
    created = propose_in_editor(a, widened_rules())
    assert created.status_code == 303, created.text
    location: str = created.headers["location"]
    page = a.get(location)
    assert "bestuurlijke-interventie" in page.text and "when.category" in page.text
    assert 'id="approve-button" disabled' in page.text
    assert "four-eyes" in page.text
    sim = a.get(
        f"{location}/simulation",
        params={"since": "2026-11-01", "until": "2026-11-30"},
        headers={"HX-Request": "true"},
    )
    assert sim.status_code == 200 and "<html" not in sim.text
    assert '<p class="flip-total" id="flip-count"><strong>2</strong>' in sim.text
    assert "default-deny -&gt; bestuurlijke-interventie" in sim.text
    full = a.get(f"{location}/simulation", params={"since": "2026-11-01", "until": "2026-11-30"})
    assert "<html" in full.text and 'id="flip-count"><strong>2</strong>' in full.text
    bad = a.get(f"{location}/simulation", params={"since": "1 november"})
    assert bad.status_code == 422 and "2026-11-23" in bad.text
    forced = a.post(f"{location}/approve", data={"csrf_token": csrf_of(page.text)})
    assert forced.status_code == 403 and "four-eyes" in forced.text
    decision = gateway.client.post(
        "/access/v1/evaluation", json=FLIPPING, headers=gateway.auth(GEMEENTE_ANALYST)
    )
    assert decision.json()["decision"] is False

    b = signed_in(browser, add_officer(gateway.database, gateway.clock))
    page_b = b.get(location)
    assert 'id="approve-button" disabled' not in page_b.text
    approved = b.post(
        f"{location}/approve",
        data={"csrf_token": csrf_of(page_b.text), "note": "checked"},
        follow_redirects=False,
    )
    assert approved.status_code == 303
    assert "approved" in b.get(location).text
    decision = gateway.client.post(
        "/access/v1/evaluation", json=FLIPPING, headers=gateway.auth(GEMEENTE_ANALYST)
    )
    assert decision.json()["decision"] is True

    versions_page = a.get("/workbench/versions")
    rollback = a.post(
        re.findall(r'action="(/workbench/versions/\d+/rollback)"', versions_page.text)[0],
        data={"csrf_token": csrf_of(versions_page.text)},
        follow_redirects=False,
    )
    assert rollback.status_code == 303
    assert "Roll back to policy version" in a.get(rollback.headers["location"]).text
    proposals_page = a.get("/workbench/proposals")
    assert proposals_page.text.count("/workbench/proposals/") >= 3


def test_one_person_with_privacy_officer_principals_at_two_partners_cannot_approve_own_proposal(
    gateway: Gateway, browser: Browser
) -> None:
    gemeente = signed_in(browser, gateway.tokens[GEMEENTE_PO])
    created = propose_in_editor(gemeente, widened_rules())
    assert created.status_code == 303, created.text
    location: str = created.headers["location"]
    # the same person also holds a privacy-officer principal at the RIEC, which owns the pack
    riec_token = add_officer(
        gateway.database,
        gateway.clock,
        person=demo_person("gemeente-smallingerland", Role.PRIVACY_OFFICER),
        keyer=app_ctx(gateway.client).keys.person_key,
    )
    riec = signed_in(browser, riec_token)
    page = riec.get(location)
    assert 'id="approve-button" disabled' in page.text
    assert "four-eyes" in page.text
    forced = riec.post(f"{location}/approve", data={"csrf_token": csrf_of(page.text)})
    assert forced.status_code == 403 and "four-eyes" in forced.text
    # and the gemeente's officer, who does not own the pack, cannot approve another's proposal
    other = propose_in_editor(signed_in(browser, gateway.tokens[OFFICER_A]), widened_rules())
    other_page = gemeente.get(other.headers["location"])
    assert 'id="approve-button" disabled' in other_page.text
    refused = gemeente.post(
        f"{other.headers['location']}/approve", data={"csrf_token": csrf_of(other_page.text)}
    )
    assert refused.status_code == 403 and "riec-noord-nederland" in refused.text
