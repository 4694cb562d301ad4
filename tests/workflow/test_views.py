"""Case views: a case's state with its transitions in order, and its status as the same
plain string in the public schema as before the status became an enum."""

from __future__ import annotations

from gateway.demo import RIEC
from gateway.workflow import signals
from gateway.workflow.access import load_case
from gateway.workflow.views import case_view
from tests.conftest import Gateway
from tests.helpers.workflow import World, case_at_step_3


def test_a_case_view_lists_participants_and_every_transition_in_order(world: World) -> None:
    case_id = case_at_step_3(world)
    with world.ctx.db.read() as session:
        view = case_view(session, load_case(session, case_id, world[RIEC]))
    assert view.step == 3 and view.step_label and view.status == "open"
    assert [(t["from_step"], t["to_step"]) for t in view.transitions] == [(1, 2), (2, 3)]
    assert view.participants == sorted(view.participants) and len(view.participants) == 5
    assert signals.get_case(world.ctx, world[RIEC], case_id) == view


def test_the_status_stays_a_plain_string_in_the_public_schema(gateway: Gateway) -> None:
    schema = gateway.client.get("/openapi.json").json()["components"]["schemas"]["CaseView"]
    assert schema["properties"]["status"] == {"type": "string", "title": "Status"}
