"""Step transitions called directly: a step is left only with its output, closing starts
every record's retention, and the status is stored as the same plain strings as ever."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlmodel import select

from gateway.audit.events import AuditEventType
from gateway.demo import POLITIE, RIEC
from gateway.errors import InvalidInputError
from gateway.models.cases import Case, CaseStatus, Record
from gateway.workflow import outputs, records, transitions
from gateway.workflow.errors import TransitionNotAllowedError
from gateway.workflow.steps import OutputKind
from tests.helpers.workflow import World, case_at_step_3, police_record


def test_a_step_is_left_only_with_its_output(world: World) -> None:
    case_id = case_at_step_3(world)
    with pytest.raises(TransitionNotAllowedError, match="analysis"):
        transitions.transition(world.ctx, world[RIEC], case_id, 4, None)
    with pytest.raises(InvalidInputError):
        transitions.transition(world.ctx, world[RIEC], case_id, 8, None)
    outputs.write_output(world.ctx, world[RIEC], case_id, OutputKind.ANALYSIS, "analysis")
    moved = transitions.transition(world.ctx, world[RIEC], case_id, 4, None)
    assert moved.step == 4
    [*_, last] = world.entries(AuditEventType.STEP_TRANSITION)
    assert last["refs"] == {
        "source_step": 3,
        "target_step": 4,
        "backward": False,
        "rule": moved.transitions[-1]["rule_id"],
    }
    assert last["purpose"] == "integrale-aanpak-ondermijning"


def test_closing_starts_retention_and_stores_the_status_as_before(world: World) -> None:
    case_id = case_at_step_3(world)
    records.share_record(world.ctx, world[POLITIE], case_id, "key-00000001", police_record())
    with world.ctx.db.write() as session:  # straight to step 6, as if 3 to 5 were done
        case = session.get(Case, case_id)
        assert case is not None
        case.step = 6
    outputs.write_output(world.ctx, world[RIEC], case_id, OutputKind.EVALUATION, "done")
    closed = transitions.transition(world.ctx, world[RIEC], case_id, 7, None, "closed now")
    assert closed.status == "closed"
    now = world.ctx.clock.now()
    with world.ctx.db.read() as session:
        [record] = session.exec(select(Record)).all()
        stored = (
            session.connection()
            .execute(text("SELECT status FROM cases WHERE id = :id"), {"id": case_id})
            .one()
        )
        loaded = session.get(Case, case_id)
    assert loaded is not None and loaded.status is CaseStatus.CLOSED
    assert record.retention_until == now + timedelta(days=record.retention_days)
    assert tuple(stored) == ("closed",)
    [closing] = world.entries(AuditEventType.CASE_CLOSE)
    assert closing["step"] == 7 and closing["refs"]["rule"]
