"""Test data for the policy lifecycle: a second RIEC privacy officer, a flipping change,
recorded decisions that the change flips (and some it does not)."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from gateway.clock import Clock
from gateway.context import AppContext
from gateway.db import Database
from gateway.identity import service
from gateway.identity.people import PersonKeyer, person_key
from gateway.identity.service import CLI_ACTOR
from gateway.vocabulary import Role
from tests.conftest import POLICIES

OFFICER_A = "riec-noord-nederland.privacy-officer"
OFFICER_B = "riec-noord-nederland.privacy-officer-2"
GEMEENTE_PO = "gemeente-smallingerland.privacy-officer"
GEMEENTE_ANALYST = "gemeente-smallingerland.analyst"
POLITIE = "politie-noord-nederland.partner-system"

RULES_30 = "rules/30-advies-tot-afsluiting.yaml"
BESTUURLIJK_CATEGORIES = "category: [police-incident, kmar-observation, om-case]"
WIDER_CATEGORIES = "category: [police-incident, kmar-observation, om-case, labour-inspection]"


def shipped(path: str) -> str:
    """Return the text of one file of the shipped pack."""
    return (POLICIES / path).read_text(encoding="utf-8")


def widened_rules() -> str:
    """Return rules/30 with labour-inspection added to what a gemeente reads at step 5."""
    text = shipped(RULES_30)
    assert text.count(BESTUURLIJK_CATEGORIES) == 1
    return text.replace(BESTUURLIJK_CATEGORIES, WIDER_CATEGORIES)


def _test_keyer(normalised: str) -> str:
    """A stand-in for the ring's person key: distinct people get distinct keys."""
    return hashlib.sha256(f"test-person:{normalised}".encode()).hexdigest()


def add_officer(
    database: Database,
    clock: Clock,
    principal_id: str = OFFICER_B,
    *,
    partner_id: str = "riec-noord-nederland",
    person: str | None = None,
    keyer: PersonKeyer | None = None,
) -> str:
    """Add another privacy officer (of the RIEC unless ``partner_id``) and return a bearer
    token for it. Its person is ``person`` (default: a new person named after the
    principal), keyed by ``keyer`` (the ring's ``person_key`` to compare with demo people)."""
    with database.write() as session:
        service.add_principal(
            session,
            clock,
            CLI_ACTOR,
            partner_id=partner_id,
            role=Role.PRIVACY_OFFICER,
            label="Another privacy officer (test)",
            principal_id=principal_id,
            person_key=person_key(person or f"{principal_id}@test.invalid", keyer or _test_keyer),
        )
        new, _row = service.issue_token(session, clock, CLI_ACTOR, principal_id, timedelta(days=30))
    return new.plaintext


def second_token(database: Database, clock: Clock, principal_id: str) -> str:
    """Issue another token to an existing principal."""
    with database.write() as session:
        new, _row = service.issue_token(session, clock, CLI_ACTOR, principal_id, timedelta(days=30))
    return new.plaintext


def evaluation(
    category: str, *, step: int = 5, purpose: str = "interventie-bestuurlijk", provider: str = "nla"
) -> dict[str, Any]:
    """Return an AuthZEN body: gemeente-smallingerland reads a record of ``category``."""
    return {
        "subject": {"type": "partner", "id": "gemeente-smallingerland"},
        "action": {"name": "case:record:read"},
        "resource": {
            "type": "record",
            "id": "r-1",
            "properties": {"category": category, "provider": provider},
        },
        "context": {"process": "casusaanpak", "step": step, "purpose": purpose},
    }


FLIPPING = evaluation("labour-inspection")
"""Denied by the shipped pack (no rule), allowed (summary only) after ``widened_rules``."""

UNCHANGED = (
    evaluation("police-incident", provider="politie-noord-nederland"),  # allowed both ways
    evaluation(
        "fiscal", step=3, purpose="integrale-aanpak-ondermijning", provider="belastingdienst"
    ),
    evaluation("labour-inspection", step=3, purpose="integrale-aanpak-ondermijning"),
)


def record_decisions(client: TestClient, headers: dict[str, str], flipping: int = 2) -> None:
    """Ask ``flipping`` times the question the change flips, and once each unchanged one."""
    for body in [FLIPPING] * flipping + list(UNCHANGED):
        response = client.post("/access/v1/evaluation", json=body, headers=headers)
        assert response.status_code == 200, response.text


def app_ctx(client: TestClient) -> AppContext:
    """Return the context of the app a test client talks to."""
    app = client.app
    assert isinstance(app, FastAPI)
    ctx: AppContext = app.state.ctx
    return ctx
