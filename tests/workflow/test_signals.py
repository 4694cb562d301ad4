"""Signals and cases, called directly: a signal opens a case for the submitter and the RIEC;
only participants in a case role see a case; the RIEC adds partners, once each."""

from __future__ import annotations

import pytest

from gateway.audit.events import AuditEventType
from gateway.demo import BANK, GEMEENTE, POLITIE, RIEC
from gateway.errors import ConflictError, InvalidInputError, PolicyDeniedError
from gateway.models.cases import Case, CaseStatus
from gateway.workflow import signals
from gateway.workflow.access import SubjectIn
from gateway.workflow.errors import NotParticipantError, RoleNotInCaseError
from tests.helpers.workflow import World, open_case

RESEARCHER = "nscr.researcher"


def test_a_signal_opens_a_case_for_the_submitter_and_the_riec_only(world: World) -> None:
    case = signals.submit_signal(
        world.ctx,
        world[GEMEENTE],
        process="casusaanpak",
        riec_partner_id="riec-noord-nederland",
        legal_basis="avg-6-1-e",
        description="a signal",
        subjects=[SubjectIn("name", "Jan Jansen"), SubjectIn("name", " Jan Jansen ")],
    )
    assert case.step == 1 and case.status == "open"
    assert case.participants == ["gemeente-smallingerland", "riec-noord-nederland"]
    with world.ctx.db.read() as session:
        stored = session.get(Case, case.id)
        assert stored is not None and stored.status is CaseStatus.OPEN
    [entry] = world.entries(AuditEventType.SIGNAL_SUBMIT)
    assert entry["case"] == case.id and entry["step"] == 1
    assert entry["purpose"] == "signaalbeoordeling" and entry["legal_basis"] == "avg-6-1-e"
    assert entry["parties"] == ["gemeente-smallingerland", "riec-noord-nederland"]
    assert len(entry["subjects"]) == 1  # the same person twice is one keyed subject
    assert "Jan" not in str(entry) and entry["refs"]["rule"]


def test_a_signal_to_a_partner_that_is_no_riec_opens_nothing(world: World) -> None:
    with pytest.raises(InvalidInputError):
        signals.submit_signal(
            world.ctx,
            world[GEMEENTE],
            process="casusaanpak",
            riec_partner_id="politie-noord-nederland",
            legal_basis="avg-6-1-e",
            description="a signal",
            subjects=[],
        )
    assert signals.list_cases(world.ctx, world[GEMEENTE]) == []
    assert world.entries(AuditEventType.SIGNAL_SUBMIT) == []


def test_only_participants_see_a_case_and_a_refusal_is_audited_with_the_role(
    world: World,
) -> None:
    case_id = open_case(world)
    assert [c.id for c in signals.list_cases(world.ctx, world[POLITIE])] == [case_id]
    with pytest.raises(NotParticipantError):
        signals.get_case(world.ctx, world[BANK], case_id)
    with pytest.raises(RoleNotInCaseError):
        signals.list_cases(world.ctx, world[RESEARCHER])
    refusals = world.entries(AuditEventType.ACCESS_REFUSE)
    assert [(e["case"], e["refs"]) for e in refusals] == [
        (case_id, {"refusal": "not-a-participant", "role": "partner-system"}),
        (None, {"refusal": "role-not-in-case", "role": "researcher"}),
    ]


def test_a_partner_is_added_once_and_only_by_the_riec(world: World) -> None:
    case_id = open_case(world)
    with pytest.raises(ConflictError):
        signals.add_participant(world.ctx, world[RIEC], case_id, "politie-noord-nederland")
    with pytest.raises(PolicyDeniedError):
        signals.add_participant(world.ctx, world[POLITIE], case_id, "belastingdienst")
    view = signals.get_case(world.ctx, world[RIEC], case_id)
    assert len(view.participants) == 5
    added = world.entries(AuditEventType.PARTICIPANT_ADD)
    assert [e["refs"]["partner"] for e in added] == [
        "politie-noord-nederland",
        "belastingdienst",
        "om-noord-nederland",
    ]
