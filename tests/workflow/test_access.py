"""Access to a case, called directly: loading checks participation, the role and RIEC
checks refuse, and a case's audit entry names its case, step, purpose and basis."""

from __future__ import annotations

import pytest

from gateway.audit.events import AuditEventType
from gateway.demo import BANK, GEMEENTE, RIEC
from gateway.errors import KeyShreddedError, NotFoundError
from gateway.models.cases import Case, CaseStatus
from gateway.policy.decision import NONE, Action
from gateway.vocabulary import Role
from gateway.workflow import access
from gateway.workflow.errors import (
    NotCaseRiecError,
    NotParticipantError,
    RoleNotInCaseError,
    TransitionNotAllowedError,
)
from tests.helpers.workflow import World, case_at_step_3, open_case

OTHER_RIEC = "riec-oost-nederland.riec-analyst"


def test_a_case_loads_only_for_its_participants(world: World) -> None:
    case_id = open_case(world)
    with world.ctx.db.read() as session:
        assert access.load_case(session, case_id, world[GEMEENTE]).id == case_id
        with pytest.raises(NotParticipantError):
            access.load_case(session, case_id, world[BANK])
        with pytest.raises(NotFoundError):
            access.load_case(session, "case-unknown", world[GEMEENTE])


@pytest.mark.parametrize("lock", [False, True])
def test_a_cases_state_is_what_loading_it_says_and_only_for_its_participants(
    world: World, lock: bool
) -> None:
    case_id = case_at_step_3(world)
    with world.ctx.db.write() as session:
        state = access.case_state(session, case_id, world[RIEC], lock=lock)
        case = access.load_case(session, case_id, world[RIEC])
        with pytest.raises(NotParticipantError):
            access.case_state(session, case_id, world[BANK], lock=lock)
        with pytest.raises(NotFoundError):
            access.case_state(session, "case-unknown", world[RIEC], lock=lock)
    assert state == access.CaseState(
        case.id,
        case.process,
        case.step,
        case.status,
        case.riec_partner_id,
        case.purpose,
        case.legal_basis,
    )
    assert (state.step, state.status, state.purpose) == (3, CaseStatus.OPEN, case.purpose)
    assert state.purpose is not None and state.legal_basis is not None


def test_only_the_riec_running_a_case_steers_it(world: World) -> None:
    case_id = open_case(world)
    with world.ctx.db.read() as session:
        case = access.load_case(session, case_id, world[RIEC])
    access.steers(world[RIEC], case)
    access.steers(world[GEMEENTE], case)  # not a RIEC: the policy decides
    with pytest.raises(NotCaseRiecError):
        access.steers(world[OTHER_RIEC], case)
    with pytest.raises(RoleNotInCaseError):
        access.role_may_read(world[RIEC], frozenset({Role.ANALYST}))


def test_a_closed_or_shredded_case_changes_no_more_and_a_shredded_one_reads_nothing(
    world: World,
) -> None:
    case = Case(
        id="case-x",
        process="casusaanpak",
        step=7,
        status=CaseStatus.CLOSED,
        riec_partner_id="riec-noord-nederland",
        created_by="x",
        created_at=world.ctx.clock.now(),
    )
    with pytest.raises(TransitionNotAllowedError):
        access.must_be_open(case)
    access.readable(world.ctx, case)
    case.status = CaseStatus.SHREDDED
    with pytest.raises(KeyShreddedError):
        access.readable(world.ctx, case)


def test_the_question_and_the_entry_take_the_cases_step_purpose_and_basis(
    world: World,
) -> None:
    case_id = case_at_step_3(world)
    with world.ctx.db.read() as session:
        case = access.load_case(session, case_id, world[RIEC])
    request = access.decide(world[RIEC], Action.STEP_TRANSITION, case)
    assert (request.process, request.step, request.purpose) == (
        "casusaanpak",
        3,
        "integrale-aanpak-ondermijning",
    )
    assert access.decide(world[RIEC], Action.SIGNAL_SUBMIT, None).purpose == NONE
    with world.ctx.db.write() as session:
        access.record_in_case(
            session,
            world.ctx,
            world[RIEC],
            AuditEventType.OUTPUT_READ,
            case,
            purpose="other-purpose",
            refs={"returned": 0},
        )
    [*_, entry] = world.entries(AuditEventType.OUTPUT_READ)
    assert (entry["case"], entry["step"], entry["purpose"], entry["legal_basis"]) == (
        case_id,
        3,
        "other-purpose",
        "riec-convenant",
    )
    assert entry["refs"] == {"returned": 0, "rule": None}
    assert entry["parties"] == ["riec-noord-nederland"]
