"""A privacy officer signs in to the workbench through their organisation's provider.

Two partners, two real OpenID Providers (oidc-provider under Node): the RIEC's privacy
officer Rita signs in at the RIEC's provider in headless Debian Chromium, approves a
proposal that Gerda (the gemeente's privacy officer, signed in at the gemeente's
provider, using its access token) made, is refused approving her own, and signs out
with the offer to sign out at her provider too. Screenshots go to
``artifacts/screenshots/oidc-*.png``.
"""

from __future__ import annotations

import re
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from playwright.sync_api import BrowserContext, Page, expect, sync_playwright

from gateway.app import create_app
from gateway.clock import SystemClock
from gateway.config import Settings
from gateway.db import Database
from gateway.demo_partners import create_demo_partners
from gateway.identity import service
from gateway.identity.service import CLI_ACTOR
from gateway.keys import KeyRing
from gateway.policy.vocabulary import partner_kinds
from gateway.vocabulary import Role
from tests.browser.test_workbench import CHROMIUM, FLAGS, SCREENSHOTS
from tests.conftest import POLICIES
from tests.oidc.idp import ACR_SUBSTANTIAL, Idp, free_port, idp_access_token, start_idp
from tests.workbench.helpers import RULES_30, shipped, widened_rules

pytestmark = pytest.mark.browser
expect.set_options(timeout=15_000)

RIEC = "riec-noord-nederland"
GEMEENTE = "gemeente-smallingerland"


@dataclass
class Site:
    """The live gateway, its providers, and the operators' tokens."""

    base: str
    riec: Idp
    gemeente: Idp
    tokens: dict[str, str]

    def call(
        self, method: str, path: str, token: str, json: object, principal: str | None = None
    ) -> httpx.Response:
        """Call the gateway's API with a bearer token."""
        headers = {"Authorization": f"Bearer {token}"}
        if principal:
            headers["Gateway-Principal"] = principal
        return httpx.request(method, f"{self.base}{path}", json=json, headers=headers, timeout=30)


@pytest.fixture
def site(tmp_path: Path, sqlite_template: Path, key_ring_template: Path) -> Iterator[Site]:
    """Serve the gateway with the demo partners and two partners' providers registered."""
    shutil.copyfile(sqlite_template, tmp_path / "gateway.db")
    shutil.copytree(key_ring_template, tmp_path / "keys")
    database = Database(f"sqlite:///{tmp_path / 'gateway.db'}")
    settings = Settings(
        mode="development",
        data_dir=tmp_path,
        database_url=database.url,
        keys_dir=tmp_path / "keys",
        policies_dir=POLICIES,
    )
    clock = SystemClock()
    keyer = KeyRing.open(settings).person_key
    tokens = dict(
        create_demo_partners(
            database, clock, partner_kinds(POLICIES), timedelta(days=1), keyer=keyer
        )
    )
    with database.write() as session:
        service.add_principal(
            session,
            clock,
            CLI_ACTOR,
            partner_id=GEMEENTE,
            role=Role.OPERATOR,
            label="gemeente operator (test)",
            principal_id=f"{GEMEENTE}.operator",
        )
        new, _ = service.issue_token(
            session, clock, CLI_ACTOR, f"{GEMEENTE}.operator", timedelta(days=1)
        )
    tokens[f"{GEMEENTE}.operator"] = new.plaintext
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, db=database),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    callback, after_logout = [f"{base}/workbench/oidc/callback"], [f"{base}/workbench/sign-in"]
    try:
        with (
            start_idp(tmp_path, "riec", callback, after_logout) as riec,
            start_idp(tmp_path, "gemeente", callback, after_logout) as gemeente,
        ):
            yield Site(base, riec, gemeente, tokens)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        database.dispose()


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[BrowserContext]:
    """Debian's Chromium, headless, with a fresh profile."""
    assert Path(CHROMIUM).exists(), "run scripts/ensure-services.sh (installs Debian's chromium)"
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=FLAGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"oidc-{name}.png"), full_page=True)


def register(site: Site) -> None:
    """The RIEC's operator registers both providers; each partner's operator links its person."""
    for partner, idp in ((RIEC, site.riec), (GEMEENTE, site.gemeente)):
        body = {
            "issuer": idp.issuer,
            "client_id": idp.client_id,
            "client_credential": idp.client_secret,
            "acr_values": [ACR_SUBSTANTIAL],
            "api_audience": idp.audience,
        }
        response = site.call(
            "PUT", f"/v1/partners/{partner}/oidc-provider", site.tokens[f"{RIEC}.operator"], body
        )
        assert response.status_code == 200, response.text
    for partner, subject in ((RIEC, "rita"), (GEMEENTE, "gerda")):
        response = site.call(
            "POST",
            f"/v1/principals/{partner}.privacy-officer/oidc-person",
            site.tokens[f"{partner}.operator"],
            {"subject": subject},
        )
        assert response.status_code == 201, response.text


def propose(site: Site, idp: Idp, login: str, text: str, title: str) -> int:
    """Propose a change with the person's access token from their provider."""
    token = idp_access_token(idp, login, f"{site.base}/workbench/oidc/callback")
    response = site.call(
        "POST",
        "/v1/policies/proposals",
        token["access_token"],
        {"title": title, "files": {RULES_30: text}},
    )
    assert response.status_code == 201, response.text
    proposal_id: int = response.json()["id"]
    return proposal_id


def test_an_officer_signs_in_at_her_provider_approves_the_other_partners_proposal_not_her_own(
    site: Site, chromium: BrowserContext
) -> None:
    register(site)
    gerdas = propose(site, site.gemeente, "gerda", widened_rules(), "Gemeente leest NLA-gegevens")

    page = chromium.new_page()
    page.goto(f"{site.base}/workbench/sign-in")
    expect(page.locator("#sign-in-providers")).to_contain_text("RIEC Noord-Nederland")
    shot(page, "01-sign-in")
    page.click(f"#sign-in-{RIEC}")
    expect(page).to_have_url(re.compile(rf"^{re.escape(site.riec.issuer)}/interaction/"))
    page.fill("#login", "rita")
    shot(page, "02-provider")
    page.click("#idp-submit")
    expect(page).to_have_url(f"{site.base}/workbench/")
    expect(page.locator(".who")).to_have_text(f"{RIEC}.privacy-officer")
    shot(page, "03-signed-in")

    page.goto(f"{site.base}/workbench/proposals/{gerdas}")
    expect(page.locator("#approve-button")).to_be_enabled()
    page.fill("#approve-note", "Getoetst aan de Wet Bibob.")
    page.click("#approve-button")
    expect(page.locator("#proposal-status")).to_have_text("approved")
    shot(page, "04-approved-gerdas")

    own_text = shipped(RULES_30) + "\n# Rita's own change\n"
    ritas = propose(site, site.riec, "rita", own_text, "Terug naar het oude beleid")
    page.goto(f"{site.base}/workbench/proposals/{ritas}")
    approve = page.locator("#approve-button")
    expect(approve).to_be_disabled()
    expect(page.locator("#approve-refusal")).to_contain_text("four-eyes")
    approve.evaluate("button => { button.disabled = false }")  # force it
    approve.click()
    expect(page.locator("#error-detail")).to_contain_text("four-eyes")
    shot(page, "05-own-refused")

    page.click("text=Afmelden")
    expect(page.locator("#signed-out")).to_be_visible()
    expect(page.locator("#provider-logout")).to_have_attribute(
        "href", re.compile(rf"^{re.escape(site.riec.issuer)}/")
    )
    shot(page, "06-signed-out")
    page.goto(f"{site.base}/workbench/", wait_until="load")
    expect(page).to_have_url(f"{site.base}/workbench/sign-in")


def test_someone_the_gateway_does_not_know_is_told_to_ask_their_operator(
    site: Site, chromium: BrowserContext
) -> None:
    register(site)
    page = chromium.new_page()
    page.goto(f"{site.base}/workbench/sign-in")
    page.click(f"#sign-in-{GEMEENTE}")
    page.fill("#login", "a-stranger")
    page.click("#idp-submit")
    expect(page.locator("#not-enrolled")).to_contain_text("operator")
    shot(page, "07-not-enrolled")
    page.goto(f"{site.base}/workbench/")
    expect(page).to_have_url(f"{site.base}/workbench/sign-in")
