"""The Workflow facade answers as the use-case modules do, for callers written against it."""

from __future__ import annotations

from gateway.demo import GEMEENTE, RIEC
from gateway.workflow import signals
from gateway.workflow.access import SubjectIn
from gateway.workflow.service import Workflow
from tests.helpers.workflow import World


def test_the_facade_runs_the_same_use_cases(world: World) -> None:
    workflow = Workflow(world.ctx)
    case = workflow.submit_signal(
        world[GEMEENTE],
        process="casusaanpak",
        riec_partner_id="riec-noord-nederland",
        legal_basis="avg-6-1-e",
        description="a signal",
        subjects=[SubjectIn("name", "Jan Jansen")],
    )
    assert workflow.get_case(world[RIEC], case.id) == signals.get_case(
        world.ctx, world[RIEC], case.id
    )
    assert [c.id for c in workflow.list_cases(world[GEMEENTE])] == [case.id]
    assert workflow.read_outputs(world[RIEC], case.id).outputs[0].kind == "signal"
    assert workflow.read_records(world[RIEC], case.id).records == []
