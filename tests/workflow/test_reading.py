"""Reading records: what the policy releases at the step, counted withholdings, persons."""

from __future__ import annotations

import pytest

from gateway.audit.events import AuditEventType
from gateway.demo import BELASTING, GEMEENTE, POLITIE, RIEC
from gateway.demo_data import FISCAL_RECORD, GARAGE_KVK, YOUTH, YOUTH_BSN
from gateway.workflow import reading, records
from gateway.workflow.subjects import subject
from tests.helpers.workflow import World, case_at_step_3, police_record


def test_a_read_releases_what_the_policy_allows_and_counts_the_rest(world: World) -> None:
    case_id = case_at_step_3(world)
    shared = records.share_record(
        world.ctx, world[POLITIE], case_id, "key-00000001", police_record()
    )
    own = reading.read_records(world.ctx, world[POLITIE], case_id)
    assert [r.id for r in own.records] == [shared.record_id] and own.withheld == 0
    assert own.records[0].provenance.provider == "politie-noord-nederland"
    other = reading.read_records(world.ctx, world[BELASTING], case_id)
    assert len(other.records) + other.withheld == 1
    assert sum(other.withheld_by_rule.values()) == other.withheld
    reads = world.entries(AuditEventType.RECORD_READ)
    assert [(e["refs"]["returned"], e["refs"]["withheld"]) for e in reads] == [
        (1, 0),
        (len(other.records), other.withheld),
    ]


@pytest.mark.parametrize("reader", [RIEC, GEMEENTE])  # sees both; withholds one
def test_a_read_names_whom_each_released_record_is_about_and_no_one_withheld(
    world: World, reader: str
) -> None:
    case_id = case_at_step_3(world)
    police = records.share_record(
        world.ctx, world[POLITIE], case_id, "key-00000001", police_record()
    )
    fiscal = records.share_record(
        world.ctx,
        world[BELASTING],
        case_id,
        "key-00000002",
        records.RecordIn(**{**FISCAL_RECORD, "purposes": tuple(FISCAL_RECORD["purposes"])}),
    )
    keys = world.ctx.keys
    about = {  # the police record names one person twice over; the fiscal one a company
        police.record_id: sorted(
            f"{t}:{subject(keys, t, v).key}" for t, v in (("bsn", YOUTH_BSN), ("name", YOUTH))
        ),
        fiscal.record_id: [f"kvk:{subject(keys, 'kvk', GARAGE_KVK).key}"],
    }
    view = reading.read_records(world.ctx, world[reader], case_id)
    [read] = world.entries(AuditEventType.RECORD_READ)
    assert len(view.records) + view.withheld == 2
    assert read.get("persons", []) == sorted(about[r.id] for r in view.records)
