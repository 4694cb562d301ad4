"""Step 2 called directly: holdings are keyed indexes counted once, a hit/no-hit answers
yes or no per other participant, a no-go closes the case."""

from __future__ import annotations

import pytest
from sqlmodel import select

from gateway.audit.events import AuditEventType
from gateway.demo import GEMEENTE, OM, POLITIE, RIEC
from gateway.demo_data import GARAGE_KVK, YOUTH
from gateway.errors import PermissionDeniedError, PolicyDeniedError
from gateway.models.cases import Holding
from gateway.workflow import hits, signals, transitions
from gateway.workflow.access import SubjectIn
from gateway.workflow.errors import TransitionNotAllowedError
from tests.helpers.workflow import GO, World, open_case

RIEC_PO = "riec-noord-nederland.privacy-officer"


def test_holdings_store_keyed_indexes_and_count_only_new_ones(world: World) -> None:
    who = world[POLITIE]
    youth = SubjectIn("name", YOUTH)
    assert hits.register_holdings(world.ctx, who, "police-incident", [youth, youth]) == 1
    assert hits.register_holdings(world.ctx, who, "police-incident", [youth]) == 0
    with world.ctx.db.read() as session:
        [held] = session.exec(select(Holding)).all()
    assert YOUTH not in str(held.model_dump())
    assert [e["refs"]["added"] for e in world.entries(AuditEventType.HOLDINGS_REGISTER)] == [1, 0]


def test_only_a_partners_system_or_analyst_registers_holdings(world: World) -> None:
    with pytest.raises(PermissionDeniedError):
        hits.register_holdings(world.ctx, world[RIEC_PO], "fiscal", [SubjectIn("kvk", GARAGE_KVK)])
    [refused] = world.entries(AuditEventType.ACCESS_REFUSE)
    assert refused["refs"] == {"refusal": "forbidden", "role": "privacy-officer"}


def test_a_hit_query_answers_yes_or_no_for_each_other_participant(world: World) -> None:
    case_id = open_case(world)
    hits.register_holdings(world.ctx, world[POLITIE], "police-incident", [SubjectIn("name", YOUTH)])
    transitions.transition(world.ctx, world[RIEC], case_id, 2, None)
    with pytest.raises(PolicyDeniedError):
        hits.hit_query(world.ctx, world[GEMEENTE], case_id, SubjectIn("name", YOUTH))
    result = hits.hit_query(world.ctx, world[RIEC], case_id, SubjectIn("name", YOUTH))
    assert result.hits == {
        "belastingdienst": False,
        "gemeente-smallingerland": False,
        "om-noord-nederland": False,
        "politie-noord-nederland": True,
    }
    [entry] = world.entries(AuditEventType.HIT_QUERY)
    assert entry["refs"]["asked"] == 4 and entry["refs"]["hits"] == 1
    assert entry["purpose"] == "signaalbeoordeling"


def test_a_no_go_closes_the_case_and_nothing_moves_after_it(world: World) -> None:
    case_id = open_case(world)
    with pytest.raises(TransitionNotAllowedError):  # step 1: no decision yet
        hits.record_go_decision(world.ctx, world[RIEC], case_id, go=False, **GO)
    transitions.transition(world.ctx, world[RIEC], case_id, 2, None)
    closed = hits.record_go_decision(world.ctx, world[RIEC], case_id, go=False, **GO)
    assert (closed.step, closed.status, closed.purpose) == (7, "closed", None)
    assert closed.transitions[-1]["reason"] == "no-go: the case stops"
    with pytest.raises(TransitionNotAllowedError):
        signals.add_participant(world.ctx, world[RIEC], case_id, "kmar")
    types = [e["type"] for e in world.entries() if e["case"] == case_id]
    assert types[-2:] == [AuditEventType.GO_DECISION, AuditEventType.CASE_CLOSE]
    assert signals.get_case(world.ctx, world[OM], case_id).status == "closed"
