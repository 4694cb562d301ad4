"""The workbench in headless Debian Chromium, driven by Playwright, against a live server.

Walk: sign in as privacy officer A, propose a change that lets a gemeente read NLA data
at step 5, see the simulation flip exactly the recorded requests it should, fail to
approve one's own proposal (the button is disabled; a forced submit is refused), sign in
as privacy officer B and approve, and see the decision endpoint answer differently.
A screenshot of every page goes to ``artifacts/screenshots/``.

Chromium is Debian's package (``scripts/ensure-services.sh`` installs it); Playwright
only drives it and never downloads a browser.
"""

from __future__ import annotations

import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.sync_api import BrowserContext, Page, expect, sync_playwright

from gateway.app import create_app
from gateway.clock import SystemClock
from gateway.config import Settings
from gateway.db import Database
from gateway.demo_partners import create_demo_partners
from gateway.keys import KeyRing
from gateway.policy.vocabulary import partner_kinds
from tests.conftest import POLICIES, ROOT
from tests.workbench.helpers import (
    FLIPPING,
    GEMEENTE_ANALYST,
    OFFICER_A,
    RULES_30,
    UNCHANGED,
    add_officer,
    widened_rules,
)

pytestmark = pytest.mark.browser
# Linting a proposal compiles the whole pack; on a loaded CI machine that can pass 5 s.
expect.set_options(timeout=15_000)

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"


@dataclass
class LiveServer:
    """A gateway served by uvicorn on a free localhost port, with its tokens."""

    base: str
    tokens: dict[str, str]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def live_server(
    tmp_path: Path, sqlite_template: Path, key_ring_template: Path
) -> Iterator[LiveServer]:
    """Serve the app on a temporary SQLite database with the demo partners."""
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
    tokens["b"] = add_officer(database, clock, keyer=keyer)
    port = _free_port()
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
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", tokens)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        database.dispose()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[BrowserContext]:
    """Debian's Chromium, headless, with a fresh profile."""
    assert Path(CHROMIUM).exists(), "run scripts/ensure-services.sh (installs Debian's chromium)"
    profile = tmp_path / "chromium-profile"
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
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
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def sign_in(page: Page, server: LiveServer, token: str, screenshot: str | None = None) -> None:
    page.goto(f"{server.base}/workbench/sign-in")
    page.fill("#token", token)
    if screenshot:
        shot(page, screenshot)
    page.click("button[type=submit] >> text=Aanmelden")
    expect(page).to_have_url(f"{server.base}/workbench/")


def evaluate(server: LiveServer, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(
        f"{server.base}/access/v1/evaluation",
        json=body,
        headers={"Authorization": f"Bearer {server.tokens[GEMEENTE_ANALYST]}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_propose_simulate_four_eyes_and_the_decision_changes(
    live_server: LiveServer, browser: BrowserContext
) -> None:
    for body in [FLIPPING, FLIPPING, *UNCHANGED]:  # recorded decisions to replay
        evaluate(live_server, body)
    assert evaluate(live_server, FLIPPING)["decision"] is False  # recorded too: 3 will flip

    page = browser.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))

    sign_in(page, live_server, live_server.tokens[OFFICER_A], screenshot="01-sign-in")
    expect(page.locator("#rule-fiscaal-alleen-43c")).to_contain_text("Uitvoeringsregeling Awr")
    expect(page.locator("#rule-bestuurlijke-interventie")).to_contain_text("Gemeente")
    shot(page, "02-active-policy")

    page.click("nav >> text=Voorstellen")
    page.click("#new-proposal")
    page.fill("#title", "Gemeente leest NLA-gegevens bij bestuurlijke interventie")
    page.fill("#description", "Nodig voor Bibob-onderzoeken.")
    details = page.locator("#file-rules-30-advies-tot-afsluiting\\.yaml")
    details.locator("summary").click()
    editor = page.locator(f'textarea[name="file:{RULES_30}"]')
    editor.fill(widened_rules().replace("labour-inspection]", "labour-inspectie]"))
    page.click("#lint-button")  # htmx, with the CSRF header
    expect(page.locator("#lint-output")).to_contain_text("unknown category 'labour-inspectie'")
    shot(page, "03-editor-lint-error")
    page.click("#propose-button")  # refused: shown at its file and line, nothing stored
    expect(page.locator("#file-rules-30-advies-tot-afsluiting\\.yaml")).to_contain_text(
        "unknown category 'labour-inspectie'"
    )
    shot(page, "04-editor-refused")
    page.locator(f'textarea[name="file:{RULES_30}"]').fill(widened_rules())
    page.click("#lint-button")
    expect(page.locator("#lint-output")).to_contain_text("Compileert")
    page.click("#propose-button")
    expect(page).to_have_url(re.compile(r"/workbench/proposals/\d+$"))
    proposal_url = page.url
    expect(page.locator("#rule-changes")).to_contain_text("bestuurlijke-interventie")
    expect(page.locator("#rule-changes")).to_contain_text("when.category")
    shot(page, "05-proposal-diff")

    page.click("#simulate-button")  # htmx swaps in the results
    expect(page.locator("#flip-count")).to_contain_text("3 beslissingen")
    expect(page.locator("#flip-kinds")).to_contain_text("3")
    expect(page.locator("#flips tbody tr")).to_have_count(3)
    expect(page.locator("#by-partner")).to_contain_text("gemeente-smallingerland")
    expect(page.locator("#by-rule")).to_contain_text("default-deny -> bestuurlijke-interventie")
    expect(page.locator("#flips")).to_contain_text("Inspectiegegevens NLA")
    shot(page, "06-simulation")

    approve = page.locator("#approve-button")
    expect(approve).to_be_disabled()
    expect(page.locator("#approve-refusal")).to_contain_text("four-eyes")
    approve.evaluate("button => { button.disabled = false }")  # force it
    approve.click()
    expect(page.locator("#error-detail")).to_contain_text("four-eyes")
    shot(page, "07-own-approval-refused")
    assert evaluate(live_server, FLIPPING)["decision"] is False

    page.click("text=Afmelden")
    expect(page).to_have_url(f"{live_server.base}/workbench/sign-in")
    sign_in(page, live_server, live_server.tokens["b"])
    page.goto(proposal_url)
    expect(page.locator("#approve-button")).to_be_enabled()
    shot(page, "08-proposal-as-second-officer")
    page.fill("#approve-note", "Getoetst aan de Wet Bibob.")
    page.click("#approve-button")
    expect(page.locator("#proposal-status")).to_have_text("approved")
    shot(page, "09-approved")

    after = evaluate(live_server, FLIPPING)
    assert after["decision"] is True
    assert after["context"]["rule_id"] == "bestuurlijke-interventie"

    page.click("nav >> text=Versies")
    expect(page.locator("#version-list tbody tr")).to_have_count(2)
    shot(page, "10-versions")
    page.click("nav >> text=Voorstellen")
    expect(page.locator("#proposal-list")).to_contain_text("approved")
    shot(page, "11-proposals")
    page.click("nav >> text=Auditlog")
    expect(page.locator("#checkpoint-status")).to_contain_text("Geldig")
    expect(page.locator("#entries")).to_contain_text("policy:version:activate")
    page.click("#verify-log")
    expect(page.locator("#verify-outcome")).to_contain_text("In orde")
    shot(page, "12-audit-log")
    page.click("nav >> text=Toestemmingen")
    page.fill(
        "#decide-jeugdnetwerken-noord-nederland input[name=note]", "Vragenlijst-intake akkoord"
    )
    page.click("#consent-jeugdnetwerken-noord-nederland")
    expect(
        page.locator("#consent-jeugdnetwerken-noord-nederland-riec-noord-nederland")
    ).to_contain_text("consented")
    shot(page, "13-consents")
    page.click("nav >> text=Beleid")
    expect(page.locator("#active-version")).to_contain_text("version")
    expected = ("status of 403", "status of 422")  # the refusals above
    unexpected = [p for p in problems if not any(e in p for e in expected)]
    assert not unexpected, unexpected  # no CSP violation, script error or missing file


def test_the_api_docs_render_with_the_network_blocked(
    live_server: LiveServer, browser: BrowserContext
) -> None:
    outside: list[str] = []

    def only_the_gateway(route: Any) -> None:
        if route.request.url.startswith(live_server.base):
            route.continue_()
        else:  # a closed government network: nothing beyond the gateway answers
            outside.append(route.request.url)
            route.abort()

    browser.route("**/*", only_the_gateway)
    page = browser.new_page()
    page.goto(f"{live_server.base}/docs")
    expect(page.locator(".opblock-summary-path").first).to_be_visible(timeout=15_000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert any("/v1/signals" in p for p in paths)
    shot(page, "api-docs-offline")
    page.goto(f"{live_server.base}/redoc")
    expect(page.get_by_text("Submit a signal (step 1)").first).to_be_attached(timeout=15_000)
    # ReDoc's "powered by" footer asks its vendor for a logo; it renders without it
    assert [url for url in outside if not url.endswith("/redoc/logo-mini.svg")] == []
