"""The audit log browser: checkpoint status, visible entries, proofs, full verification."""

from __future__ import annotations

import re

from sqlmodel import select

from gateway.audit.bundle import verify_tlog_proof
from gateway.audit.checkpoints import log_verifiers
from gateway.models.audit import AuditEntry
from tests.conftest import Gateway
from tests.helpers.cases import start_case
from tests.workbench.helpers import app_ctx
from tests.workbench.test_web import Browser, browser, csrf_of, signed_in  # noqa: F401

RIEC_PO = "riec-noord-nederland.privacy-officer"
BANK_PO = "voorbeeldbank.privacy-officer"


def test_the_checkpoint_is_shown_valid_and_the_entries_listed(
    gateway: Gateway,
    browser: Browser,  # noqa: F811
) -> None:
    client = signed_in(browser, gateway.tokens[RIEC_PO])
    page = client.get("/workbench/audit")
    assert page.status_code == 200
    assert 'id="checkpoint-status">Geldig' in page.text
    assert "riec-gateway.localhost/audit" in page.text
    assert "admin:partner:add" in page.text
    assert 'id="next-page"' in page.text  # the demo set-up alone fills more than one page
    verified = client.post(
        "/workbench/audit/verify",
        headers={"X-CSRF-Token": csrf_of(page.text), "HX-Request": "true"},
    )
    assert verified.status_code == 200 and "In orde" in verified.text


def test_a_partner_officer_sees_only_its_own_entries(
    gateway: Gateway,
    browser: Browser,  # noqa: F811
) -> None:
    client = signed_in(browser, gateway.tokens[BANK_PO])
    page = client.get("/workbench/audit?partner=politie-noord-nederland")
    indexes = re.findall(r'id="entry-(\d+)"', page.text)
    with gateway.database.read() as session:
        visible = {
            e.leaf_index
            for e in session.exec(select(AuditEntry)).all()
            if e.actor_partner_id == "voorbeeldbank" or '"voorbeeldbank"' in e.leaf
        }
    assert set(map(int, indexes)) <= visible
    denied = client.get("/workbench/audit/0/proof")
    assert denied.status_code == 404


def test_a_downloaded_proof_verifies_offline(gateway: Gateway, browser: Browser) -> None:  # noqa: F811
    client = signed_in(browser, gateway.tokens[RIEC_PO])
    bundle = client.get("/workbench/audit/3/proof")
    assert bundle.status_code == 200
    assert "entry-3.tlog-proof" in bundle.headers["content-disposition"]
    ctx = app_ctx(gateway.client)
    verifiers = log_verifiers(ctx.settings.log_origin, ctx.signer, ctx.retired_public_keys)
    verify_tlog_proof(bundle.text, verifiers, origin=ctx.settings.log_origin)


def test_a_changed_entry_shows_up_in_the_full_verification(
    gateway: Gateway,
    browser: Browser,  # noqa: F811
) -> None:
    client = signed_in(browser, gateway.tokens[RIEC_PO])
    page = client.get("/workbench/audit")  # signs a checkpoint over the current log
    with gateway.database.write() as session:
        entry = session.get(AuditEntry, 2)
        assert entry is not None
        entry.leaf = entry.leaf.replace('"admin:', '"Admin:', 1)
        session.add(entry)
    verified = client.post(
        "/workbench/audit/verify",
        headers={"X-CSRF-Token": csrf_of(page.text), "HX-Request": "true"},
    )
    assert "FOUT" in verified.text and "entry 2" in verified.text


def test_another_riecs_officer_sees_no_entry_of_a_case_it_does_not_run(
    gateway: Gateway,
    browser: Browser,  # noqa: F811
) -> None:
    walk = start_case(gateway)
    with gateway.database.read() as session:
        own = {
            e.leaf_index
            for e in session.exec(select(AuditEntry).where(AuditEntry.case_id == walk.case_id))
        }
    assert own
    noord = signed_in(browser, gateway.tokens[RIEC_PO])
    page = noord.get(f"/workbench/audit?case={walk.case_id}")
    assert set(map(int, re.findall(r'id="entry-(\d+)"', page.text))) == own
    oost = signed_in(browser, gateway.tokens["riec-oost-nederland.privacy-officer"])
    page = oost.get(f"/workbench/audit?case={walk.case_id}")
    assert page.status_code == 200
    assert re.findall(r'id="entry-(\d+)"', page.text) == []
    assert oost.get(f"/workbench/audit/{min(own)}/proof").status_code == 404
