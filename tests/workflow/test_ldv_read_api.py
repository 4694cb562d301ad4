"""The read API of the Logboek Dataverwerkingen ("logboek-extensie-lezen") over the audit log.

Responses are validated against the schema of the read extension's OpenAPI description
(``ListProcessingActivities``, ``ProcessingActivity``, ``Metadata`` and the ``dpl.core``
attributes of https://github.com/Logius-standaarden/logboek-extensie-lezen,
``media/openapi.json`` version 1.1.0 and ``media/attributes.schema.json``). The schema
is encoded here from that description rather than vendored.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from gateway.demo import BANK, GEMEENTE, POLITIE, RIEC
from gateway.demo_data import GARAGE_KVK, SIGNAL, YOUTH, YOUTH_BSN
from tests.conftest import Gateway
from tests.helpers.cases import POLICE_RECORD, go, start_case
from tests.helpers.problems import assert_problem

RIEC_PO = "riec-noord-nederland.privacy-officer"
BANK_PO = "voorbeeldbank.privacy-officer"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
REFUSED_TRACE = "5c0ffee0000000000000000000000001"
PATH = "/v1/processing-activities"
# the register's activity for police data in a case: shared, read and destroyed
SHARE_ACTIVITY = "urn:riec-gateway:verwerkingsactiviteit:casus-politiegegevens"
SIGNAL_ACTIVITY = "urn:riec-gateway:verwerkingsactiviteit:signaal-indienen"

_SPAN = {"type": "string", "pattern": "^[0-9a-fA-F]{16}$"}
_TIME = {"type": "string", "format": "date-time"}
READ_EXTENSION = {
    "type": "object",
    "required": ["processingActivities"],
    "properties": {
        "metadata": {
            "type": "object",
            "required": ["logbookId", "organizationName"],
            "properties": {"logbookId": {"type": "string"}, "organizationName": {"type": "string"}},
        },
        "processingActivities": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["traceId", "spanId", "status", "name", "startTime", "endTime"],
                "properties": {
                    "traceId": {"type": "string", "format": "uuid"},
                    "startTime": _TIME,
                    "endTime": _TIME,
                    "spanId": _SPAN,
                    "status": {"type": "string", "enum": ["Unset", "Ok", "Error"]},
                    "name": {"type": "string"},
                    "parentSpanId": _SPAN,
                    "resource": {"type": "object", "properties": {"attributes": {}}},
                    "attributes": {
                        "type": "object",
                        "properties": {
                            "dpl.core.processing_activity_id": {"type": "string", "format": "uri"},
                            "dpl.core.data_subject_id": {"type": "string"},
                            "dpl.core.data_subject_id_type": {"type": "string"},
                            "dpl.core.foreign_operation.processor": {
                                "type": "string",
                                "format": "uri",
                            },
                        },
                    },
                },
            },
        },
    },
}
VALIDATOR = Draft202012Validator(READ_EXTENSION, format_checker=Draft202012Validator.FORMAT_CHECKER)


def read(gateway: Gateway, who: str = RIEC_PO, **query: Any) -> list[dict[str, Any]]:
    """GET the processings (``headers`` for the subject); validate against the extension."""
    headers = {**gateway.auth(who), **query.pop("headers", {})}
    response = gateway.client.get(PATH, params=query, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    VALIDATOR.validate(body)
    found: list[dict[str, Any]] = body["processingActivities"]
    return found


def by_subject(id_type: str, value: str) -> dict[str, str]:
    return {"Data-Subject-Id": value, "Data-Subject-Id-Type": id_type}


def scenario(gateway: Gateway) -> str:
    """A case at step 3: the police share a record (in the caller's trace), two read it."""
    walk = start_case(gateway)
    go(walk)
    response = gateway.client.post(
        walk.case("/records"),
        json=POLICE_RECORD,
        headers={
            **gateway.auth(POLITIE),
            "Idempotency-Key": "ldv-read-0001",
            "traceparent": f"00-{TRACE}-{CALLER_SPAN}-01",
        },
    )
    assert response.status_code == 201, response.text
    walk.records(GEMEENTE)
    walk.records(RIEC)
    return walk.case_id


def test_by_trace_the_caller_finds_every_processing_of_its_request(gateway: Gateway) -> None:
    scenario(gateway)
    lines = read(gateway, traceId=TRACE)
    assert {line["name"] for line in lines} >= {"case:record:share"}
    share = next(line for line in lines if line["name"] == "case:record:share")
    assert share["traceId"].replace("-", "") == TRACE
    assert share["foreignOperation"]["trace_id"] == TRACE
    assert share["foreignOperation"]["span_id"] == CALLER_SPAN  # the caller's span, kept
    assert share["attributes"]["dpl.core.foreign_operation.span_id"] == CALLER_SPAN
    assert share["status"] == "Ok"
    # the record names the youth by BSN and by name: one person, so one line
    assert Counter(line["name"] for line in lines)["case:record:share"] == 1
    assert share["parentSpanId"] != share["spanId"]
    # the UUID spelling of the extension is accepted too
    uuid = f"{TRACE[:8]}-{TRACE[8:12]}-{TRACE[12:16]}-{TRACE[16:20]}-{TRACE[20:]}"
    assert read(gateway, traceId=uuid) == lines


def test_by_processing_activity_and_by_subject_in_a_header(gateway: Gateway) -> None:
    case_id = scenario(gateway)
    police = read(gateway, processingActivityId=SHARE_ACTIVITY)
    assert Counter(line["name"] for line in police)["case:record:share"] == 1
    assert {line["attributes"]["dpl.core.processing_activity_id"] for line in police} == {
        SHARE_ACTIVITY
    }
    assert {line["attributes"]["nl.riec.gateway.case_id"] for line in police} == {case_id}

    about = read(gateway, headers=by_subject("bsn", YOUTH_BSN))
    names = Counter(line["name"] for line in about)
    assert names["case:record:share"] == 1 and names["case:record:read"] == 2
    by_name = read(gateway, headers=by_subject("name", YOUTH))
    # the same processings, the same spans, whichever identifier found the person
    spans = {line["spanId"] for line in about if line["name"].startswith("case:record")}
    assert spans <= {line["spanId"] for line in by_name}
    for line in about:
        assert YOUTH_BSN not in str(line) and YOUTH not in str(line)

    both = read(gateway, processingActivityId=SHARE_ACTIVITY, headers=by_subject("bsn", YOUTH_BSN))
    assert Counter(line["name"] for line in both)["case:record:share"] == 1
    assert {line["attributes"]["dpl.core.data_subject_id_type"] for line in both} == {"bsn"}


def test_the_body_asks_as_the_extension_does(gateway: Gateway) -> None:
    scenario(gateway)
    response = gateway.client.post(
        PATH,
        json={
            "dpl.core.data_subject_id": YOUTH_BSN,
            "dpl.core.data_subject_id_type": "bsn",
            "dpl.core.processing_activity_id": SHARE_ACTIVITY,
        },
        headers=gateway.auth(RIEC_PO),
    )
    assert response.status_code == 200, response.text
    VALIDATOR.validate(response.json())
    assert [a["name"] for a in response.json()["processingActivities"]] == ["case:record:share"]


def test_a_refused_request_is_an_error(gateway: Gateway) -> None:
    walk = start_case(gateway)
    response = gateway.client.get(
        walk.case("/records"),
        headers={**gateway.auth(BANK), "traceparent": f"00-{REFUSED_TRACE}-{CALLER_SPAN}-01"},
    )
    assert response.status_code in (403, 404)
    lines = read(gateway, traceId=REFUSED_TRACE)
    assert lines and all(line["status"] == "Error" for line in lines), lines
    ok = read(gateway, processingActivityId=SIGNAL_ACTIVITY)
    assert ok and all(line["status"] == "Ok" for line in ok)


def test_a_question_needs_a_trace_activity_or_subject_and_never_an_identifier_in_the_url(
    gateway: Gateway,
) -> None:
    scenario(gateway)
    missing = gateway.client.get(PATH, headers=gateway.auth(RIEC_PO))
    assert_problem(missing, 400, "processing-log-query-missing")
    # an identifier in the query string is no question at all: it is ignored, not used
    response = gateway.client.get(
        PATH, params={"dpl.core.data_subject_id": YOUTH_BSN}, headers=gateway.auth(RIEC_PO)
    )
    assert_problem(response, 400, "processing-log-query-missing")
    assert YOUTH_BSN not in response.text
    bad = gateway.client.get(PATH, params={"traceId": "not-a-trace"}, headers=gateway.auth(RIEC_PO))
    assert_problem(bad, 422, "invalid-input")
    wrong = gateway.client.get(
        PATH, headers={**gateway.auth(RIEC_PO), **by_subject("bsn", "123456789")}
    )
    problem = assert_problem(wrong, 422, "invalid-identifier")
    assert "123456789" not in str(problem)


@pytest.mark.parametrize("who", [RIEC, POLITIE, "riec-noord-nederland.riec-analyst"])
def test_only_privacy_officers_read_the_log(gateway: Gateway, who: str) -> None:
    response = gateway.client.get(PATH, params={"traceId": TRACE}, headers=gateway.auth(who))
    assert_problem(response, 403, "forbidden")


def test_an_outsiders_privacy_officer_reads_nothing_of_the_case(gateway: Gateway) -> None:
    scenario(gateway)
    assert read(gateway, BANK_PO, traceId=TRACE) == []
    assert read(gateway, BANK_PO, processingActivityId=SHARE_ACTIVITY) == []
    assert read(gateway, BANK_PO, headers=by_subject("bsn", YOUTH_BSN)) == []
    # ... its own lookup it sees afterwards
    again = read(gateway, BANK_PO, headers=by_subject("bsn", YOUTH_BSN))
    assert [line["name"] for line in again] == ["subject:processing-log:read"]


def test_identifiers_given_as_one_person_are_one_line(gateway: Gateway) -> None:
    signal = {
        **SIGNAL,
        "subjects": [
            {"type": "kvk", "value": GARAGE_KVK},
            {"type": "bsn", "value": YOUTH_BSN, "person": 1},
            {"type": "name", "value": YOUTH, "person": 1},
            {"type": "name", "value": "Sam Bakker"},
        ],
    }
    response = gateway.client.post(
        "/v1/signals",
        json=signal,
        headers={**gateway.auth(GEMEENTE), "traceparent": f"00-{TRACE}-{CALLER_SPAN}-01"},
    )
    assert response.status_code == 201, response.text
    lines = [line for line in read(gateway, traceId=TRACE) if line["name"] == "case:signal:submit"]
    assert len(lines) == 3  # the garage, the youth (BSN and name), Sam Bakker
    assert len({line["spanId"] for line in lines}) == 3
    youth = read(gateway, headers=by_subject("name", YOUTH))
    found = [line for line in youth if line["name"] == "case:signal:submit"]
    assert len(found) == 1
    # the line names the youth by the identifier asked for
    assert found[0]["attributes"]["dpl.core.data_subject_id_type"] == "name"
    assert found[0]["spanId"] in {line["spanId"] for line in lines}
