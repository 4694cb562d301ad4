"""A data-subject request called directly: the lookup answers from the audit log and is
itself recorded, by keyed index only, never by the identifier looked up."""

from __future__ import annotations

import pytest

from gateway.audit import subject_requests
from gateway.audit.events import AuditEventType
from gateway.clock import FixedClock
from gateway.config import Settings
from gateway.db import Database
from gateway.demo import POLITIE
from gateway.demo_data import YOUTH_BSN
from gateway.errors import InvalidInputError
from gateway.workflow import records
from gateway.workflow.access import SubjectIn
from tests.helpers.workflow import World, case_at_step_3, demo_world, police_record

RIEC_PO = "riec-noord-nederland.privacy-officer"
BANK_PO = "voorbeeldbank.privacy-officer"


@pytest.fixture
def world(
    settings: Settings, database: Database, clock: FixedClock, request: pytest.FixtureRequest
) -> World:
    return demo_world(request, settings, database, clock)


def test_a_lookup_answers_from_the_log_and_is_recorded_by_keyed_index(world: World) -> None:
    case_id = case_at_step_3(world)
    records.share_record(world.ctx, world[POLITIE], case_id, "key-00000001", police_record())
    person = [SubjectIn("bsn", YOUTH_BSN)]
    answer = subject_requests.processing_log(world.ctx, world[RIEC_PO], person)
    assert [line.name for line in answer.lines] == ["case:record:share"]
    assert not answer.truncated
    elsewhere = subject_requests.processing_log(world.ctx, world[BANK_PO], person)
    assert elsewhere.lines == []
    lookups = world.entries(AuditEventType.SUBJECT_LOG_READ)
    assert [(e["actor"]["partner"], e["refs"]) for e in lookups] == [
        ("riec-noord-nederland", {"lines": 1}),
        ("voorbeeldbank", {"lines": 0}),
    ]
    assert lookups[0]["subjects"] and lookups[0]["parties"] == []
    assert YOUTH_BSN.replace(" ", "") not in str(lookups) and YOUTH_BSN not in str(lookups)


def test_a_malformed_identifier_is_refused_before_anything_is_recorded(world: World) -> None:
    with pytest.raises(InvalidInputError):
        subject_requests.processing_log(world.ctx, world[RIEC_PO], [SubjectIn("bsn", "12")])
    assert world.entries(AuditEventType.SUBJECT_LOG_READ) == []
