"""Outputs called directly: an output belongs to its step, an advice's interventions go to
participants and each partner reads only its own, and every read is recorded."""

from __future__ import annotations

import pytest
from sqlmodel import func, select

from gateway.audit.events import AuditEventType
from gateway.demo import BELASTING, POLITIE, RIEC
from gateway.errors import InvalidInputError
from gateway.models.cases import Case, CaseOutput
from gateway.workflow import outputs
from gateway.workflow.errors import TransitionNotAllowedError
from gateway.workflow.outputs import Intervention
from gateway.workflow.steps import OutputKind
from tests.helpers.workflow import World, case_at_step_3

PURPOSE = "integrale-aanpak-ondermijning"


def stored_outputs(world: World) -> int:
    with world.ctx.db.read() as session:
        return int(session.exec(select(func.count()).select_from(CaseOutput)).one())


def test_an_output_of_another_step_is_refused_and_not_stored(world: World) -> None:
    case_id = case_at_step_3(world)
    before = stored_outputs(world)
    with pytest.raises(TransitionNotAllowedError, match="step 4"):
        outputs.write_output(world.ctx, world[RIEC], case_id, OutputKind.ADVICE, "advice")
    with pytest.raises(InvalidInputError):
        outputs.write_output(world.ctx, world[RIEC], case_id, OutputKind.GO, "go")
    with pytest.raises(InvalidInputError, match="only an advice"):
        outputs.write_output(
            world.ctx,
            world[RIEC],
            case_id,
            OutputKind.ANALYSIS,
            "analysis",
            [Intervention("politie-noord-nederland", PURPOSE, "x")],
        )
    assert stored_outputs(world) == before


def test_each_partner_reads_only_its_own_interventions_of_an_advice(world: World) -> None:
    case_id = case_at_step_3(world)
    with world.ctx.db.write() as session:  # the analysis is done; the case is at step 4
        case = session.get(Case, case_id)
        assert case is not None
        case.step = 4
    with pytest.raises(InvalidInputError, match="taking part"):
        outputs.write_output(
            world.ctx,
            world[RIEC],
            case_id,
            OutputKind.ADVICE,
            "advice",
            [Intervention("kmar", PURPOSE, "not in the case")],
        )
    written = outputs.write_output(
        world.ctx,
        world[RIEC],
        case_id,
        OutputKind.ADVICE,
        "advice",
        [
            Intervention("politie-noord-nederland", PURPOSE, "police"),
            Intervention("belastingdienst", PURPOSE, "tax"),
        ],
    )
    [entry] = world.entries(AuditEventType.OUTPUT_WRITE)
    assert entry["refs"]["output"] == written.id and entry["refs"]["kind"] == "advice"
    assert entry["parties"] == [
        "belastingdienst",
        "politie-noord-nederland",
        "riec-noord-nederland",
    ]

    def advice_for(principal: str) -> list[str]:
        view = outputs.read_outputs(world.ctx, world[principal], case_id)
        [advice] = [o for o in view.outputs if o.kind == "advice"]
        return [i["partner"] for i in advice.content["interventions"]]

    assert advice_for(RIEC) == ["politie-noord-nederland", "belastingdienst"]
    assert advice_for(POLITIE) == ["politie-noord-nederland"]
    assert advice_for(BELASTING) == ["belastingdienst"]
    assert len(world.entries(AuditEventType.OUTPUT_READ)) == 3
