"""The case use cases called directly (no HTTP): a context with the demo partners, their
callers, the audit entries written, and the example case up to step 3."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlmodel import col, select

from gateway.app import build_context
from gateway.clock import FixedClock
from gateway.config import Settings
from gateway.context import AppContext
from gateway.db import Database
from gateway.demo import BELASTING, GEMEENTE, POLITIE, RIEC
from gateway.demo_data import GARAGE_KVK, SIGNAL, YOUTH
from gateway.demo_partners import create_demo_partners
from gateway.identity.actors import Caller
from gateway.identity.service import authenticate
from gateway.keys import KeyRing
from gateway.models.audit import AuditEntry
from gateway.policy.vocabulary import partner_kinds
from gateway.workflow import hits, signals, transitions
from gateway.workflow.access import SubjectIn
from gateway.workflow.records import RecordIn
from tests.conftest import demo_partners
from tests.helpers.cases import POLICE_RECORD

GO = {
    "purpose": "integrale-aanpak-ondermijning",
    "legal_basis": "riec-convenant",
    "motivation": "Stuurploeg: signaal raakt ondermijning; integrale aanpak.",
}


@dataclass
class World:
    """A gateway context on the test database, and every demo principal as a caller."""

    ctx: AppContext
    callers: dict[str, Caller]

    def __getitem__(self, principal: str) -> Caller:
        return self.callers[principal]

    def entries(self, event_type: str | None = None) -> list[dict[str, Any]]:
        """Return the audit leaves written so far (of one type), oldest first."""
        with self.ctx.db.read() as session:
            query = select(AuditEntry).order_by(col(AuditEntry.leaf_index))
            if event_type is not None:
                query = query.where(AuditEntry.event_type == event_type)
            return [json.loads(e.leaf) for e in session.exec(query).all()]


def demo_world(request: Any, settings: Settings, database: Database, clock: FixedClock) -> World:
    """Return ``build_world`` over the demo partners of the per-process template (the
    ``world`` fixtures of the workflow and subject-request tests)."""
    issued = demo_partners(request, settings, database, clock, partner_kinds(settings.policies_dir))
    return build_world(settings, database, clock, issued)


def build_world(
    settings: Settings,
    database: Database,
    clock: FixedClock,
    issued: Sequence[tuple[str, str]] | None = None,
) -> World:
    """Return a context with the demo partners, and a caller for each demo principal.

    ``issued`` are the demo principals' tokens when the database holds them already
    (``tests.conftest.demo_partners``); otherwise the partners are created here.
    """
    if issued is None:
        issued = create_demo_partners(
            database,
            clock,
            partner_kinds(settings.policies_dir),
            timedelta(days=settings.token_ttl_days),
            keyer=KeyRing.open(settings, clock=clock).person_key,
        )
    ctx = build_context(settings, clock=clock, db=database)
    with database.read() as session:
        callers = {principal: authenticate(session, token, clock) for principal, token in issued}
    return World(ctx, callers)


def open_case(world: World) -> str:
    """Submit the example's signal and add the police, the tax office and the OM (step 1)."""
    case = signals.submit_signal(
        world.ctx,
        world[GEMEENTE],
        process=SIGNAL["process"],
        riec_partner_id=SIGNAL["riec"],
        legal_basis=SIGNAL["legal_basis"],
        description=SIGNAL["description"],
        subjects=[SubjectIn(s["type"], s["value"]) for s in SIGNAL["subjects"]],
    )
    for partner in ("politie-noord-nederland", "belastingdienst", "om-noord-nederland"):
        signals.add_participant(world.ctx, world[RIEC], case.id, partner)
    return case.id


def case_at_step_3(world: World) -> str:
    """Open the example case, register holdings, go at step 2, and move to step 3."""
    case_id = open_case(world)
    hits.register_holdings(world.ctx, world[POLITIE], "police-incident", [SubjectIn("name", YOUTH)])
    hits.register_holdings(world.ctx, world[BELASTING], "fiscal", [SubjectIn("kvk", GARAGE_KVK)])
    transitions.transition(world.ctx, world[RIEC], case_id, 2, None)
    hits.record_go_decision(world.ctx, world[RIEC], case_id, go=True, **GO)
    transitions.transition(world.ctx, world[RIEC], case_id, 3, None)
    return case_id


def police_record() -> RecordIn:
    """Return the example's police record (30 days' retention) as the use case takes it."""
    body = POLICE_RECORD
    return RecordIn(
        category=body["category"],
        legal_basis=body["legal_basis"],
        purposes=tuple(body["purposes"]),
        onward=body["onward"],
        retention_days=body["retention_days"],
        fields=body["fields"],
        summary=body.get("summary"),
    )
