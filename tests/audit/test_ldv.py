"""LDV lines of one audit entry: a child span per person, the caller kept, refusals ERROR."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.audit.events import (
    AuditEvent,
    AuditEventType,
    canonical_json,
    leaf_document,
    persons_of,
)
from gateway.audit.ldv import StatusCode, action_line, lines_of_entry
from gateway.audit.processing_log import lookup_in
from gateway.models.audit import AuditEntry
from gateway.policy.engine import PolicyEngine
from tests.conftest import POLICIES
from tests.helpers.ldv import assert_ldv_line

AT = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
BSN, NAME, KVK = "b" * 64, "a" * 64, "c" * 64


def entry(event: AuditEvent, index: int = 7) -> AuditEntry:
    doc = leaf_document(event, index, None)
    return AuditEntry(
        leaf_index=index,
        event_type=str(event.type),
        occurred_at=event.at,
        actor_partner_id=event.actor_partner,
        case_id=event.case_id,
        leaf=canonical_json(doc).decode(),
        leaf_hash=b"\0" * 32,
        trace_id=event.trace_id,
    )


def share(**extra: object) -> AuditEvent:
    persons = persons_of([[("bsn", BSN), ("name", NAME)], [("kvk", KVK)]])
    fields: dict[str, object] = {
        "type": AuditEventType.RECORD_SHARE,
        "at": AT,
        "actor_partner": "politie-noord-nederland",
        "case_id": "case-1",
        "step": 3,
        "purpose": "integrale-aanpak-ondermijning",
        "legal_basis": "wpg-20",
        "policy_version": "v3",
        "subjects": (BSN, KVK, NAME),
        "persons": persons,
        "refs": {"category": "police-incident"},
        "trace_id": TRACE,
        **extra,
    }
    return AuditEvent(**fields)  # type: ignore[arg-type]


def test_groups_sharing_a_key_are_one_person() -> None:
    merged = persons_of([[("bsn", BSN)], [("kvk", KVK)], [("bsn", BSN), ("name", NAME)], []])
    assert merged == ((("bsn", BSN), ("name", NAME)), (("kvk", KVK),))


def test_one_line_per_person_whichever_identifier_found_them() -> None:
    found = entry(share())
    every = lines_of_entry(found, [(BSN, "bsn"), (NAME, "name"), (KVK, "kvk")])
    assert len(every) == 2  # the youth (BSN and name) and the garage
    by_bsn = lines_of_entry(found, [(BSN, "bsn")])
    by_name = lines_of_entry(found, [(NAME, "name")])
    assert by_bsn[0].span_id == by_name[0].span_id == every[0].span_id
    assert every[0].data_subject_id == BSN and every[0].data_subject_id_type == "bsn"
    parent = action_line(found).span_id
    assert {line.parent_span_id for line in every} == {parent}
    assert len({line.span_id for line in every} | {parent}) == 3
    for line in every:
        assert_ldv_line(line.to_json())
        assert line.trace_id == TRACE and line.status_code is StatusCode.OK


def test_the_callers_trace_context_is_kept_as_the_foreign_operation() -> None:
    line = lines_of_entry(entry(share(foreign=(TRACE, "00f067aa0ba902b7"))), [(BSN, "bsn")])[0]
    assert line.foreign_operation is not None
    assert line.foreign_operation.to_json() == {
        "trace_id": TRACE,
        "span_id": "00f067aa0ba902b7",
        "entity": "urn:riec-gateway:partner:politie-noord-nederland",
    }
    attributes = line.otel_attributes()
    assert attributes["dpl.core.foreign_operation.span_id"] == "00f067aa0ba902b7"
    assert line.to_json()["foreign_operation"]["trace_id"] == TRACE


def test_otel_attributes_are_flat_namespaced_and_never_null() -> None:
    register = PolicyEngine.from_directory(POLICIES).compiled.register
    (line,) = lines_of_entry(entry(share()), [(BSN, "bsn")], activity=lookup_in(register))
    attributes = line.otel_attributes()
    # the shipped register's activity for police data shared under Wpg art. 20
    assert attributes["dpl.core.processing_activity_id"] == (
        "urn:riec-gateway:verwerkingsactiviteit:casus-politiegegevens"
    )
    assert attributes["nl.riec.gateway.processing_activity_version"] == 1
    assert attributes["dpl.core.data_subject_id"] == BSN
    assert attributes["dpl.core.data_subject_id_type"] == "bsn"
    assert attributes["nl.riec.gateway.case_id"] == "case-1"
    assert attributes["nl.riec.gateway.step"] == 3
    assert attributes["nl.riec.gateway.legal_basis"] == "wpg-20"
    assert attributes["nl.riec.gateway.policy_version"] == "v3"
    assert attributes["nl.riec.gateway.audit_index"] == 7
    assert all(isinstance(v, str | int | bool) for v in attributes.values())


def test_without_a_register_a_line_names_its_event_as_unregistered() -> None:
    attributes = lines_of_entry(entry(share()), [(BSN, "bsn")])[0].otel_attributes()
    assert attributes["dpl.core.processing_activity_id"] == (
        "urn:riec-gateway:verwerkingsactiviteit:unregistered-case-record-share"
    )
    assert "nl.riec.gateway.processing_activity_version" not in attributes
    assert all(k.startswith(("dpl.core.", "nl.riec.gateway.")) for k in attributes)


@pytest.mark.parametrize(
    ("event_type", "refs", "status"),
    [
        (AuditEventType.ACCESS_REFUSE, {"refusal": "not-a-participant"}, StatusCode.ERROR),
        (AuditEventType.POLICY_DECISION, {"allowed": False}, StatusCode.ERROR),
        (AuditEventType.POLICY_DECISION, {"allowed": True}, StatusCode.OK),
        (AuditEventType.REGISTRY_REFUSE, {}, StatusCode.ERROR),
        (AuditEventType.RECORD_READ, {"returned": 0}, StatusCode.OK),
    ],
)
def test_refused_actions_are_errors(
    event_type: AuditEventType, refs: dict[str, object], status: StatusCode
) -> None:
    found = entry(AuditEvent(type=event_type, at=AT, refs=refs, trace_id=TRACE))  # type: ignore[arg-type]
    (line,) = lines_of_entry(found, [])
    assert line.status_code is status and line.parent_span_id is None
    assert line.to_json()["status_code"] == status.value
    assert_ldv_line(line.to_json())


def test_span_ids_are_stable_and_differ_between_entries() -> None:
    first = lines_of_entry(entry(share(), 7), [(BSN, "bsn")])[0]
    again = lines_of_entry(entry(share(), 7), [(BSN, "bsn")])[0]
    other = lines_of_entry(entry(share(), 8), [(BSN, "bsn")])[0]
    assert first.span_id == again.span_id != other.span_id
