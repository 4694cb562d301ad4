"""Robustness at the edges: no input makes a 500, no type is juggled, no error echoes input.

Each finding of the fuzzers (schemathesis, a boundary fuzzer) is pinned here through the
HTTP client, on both backends.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gateway.demo_data import SIGNAL
from gateway.logging import JsonFormatter
from gateway.schemas.base import MAX_LOG_INDEX, MAX_ROW_ID
from tests.api.test_auth import OPERATOR, PROBLEM, assert_problem
from tests.conftest import Gateway
from tests.workbench.test_web import csrf_of


@pytest.fixture
def gateway(module_gateway: Gateway) -> Gateway:
    """One gateway per backend for the whole module: its tests only ask and judge answers."""
    module_gateway.client.cookies.clear()
    return module_gateway


RIEC = "riec-noord-nederland.riec-analyst"
GEMEENTE = "gemeente-smallingerland.partner-system"
GEMEENTE_PO = "gemeente-smallingerland.privacy-officer"
RIEC_PO = "riec-noord-nederland.privacy-officer"
POLITIE_PO = "politie-noord-nederland.privacy-officer"
AGREEMENT = "jeugdnetwerken-noord-nederland"
MARKER = "<script>ECHO-ME-1234</script>"
BEYOND_INT64 = str(2**63)
HUGE = str(2**200)


def evaluation_body(**context: Any) -> dict[str, Any]:
    """Return a valid AuthZEN evaluation with ``context`` members replaced."""
    return {
        "subject": {"type": "partner", "id": "gemeente-smallingerland"},
        "action": {"name": "case:record:read"},
        "resource": {"type": "record", "id": "r-1", "properties": {"category": "police-incident"}},
        "context": {"process": "casusaanpak", "step": 3, **context},
    }


# ----- no 500 from input ----------------------------------------------------------------


def test_an_empty_evaluations_list_without_defaults_is_a_400_problem(gateway: Gateway) -> None:
    response = gateway.client.post(
        "/access/v1/evaluations", json={"evaluations": []}, headers=gateway.auth(GEMEENTE)
    )
    body = assert_problem(response, 400, "validation-failed")  # AuthZEN answers 400
    assert {tuple(e["loc"]) for e in body["errors"]} >= {("body", "subject"), ("body", "action")}


def test_an_empty_evaluations_list_with_defaults_is_the_single_evaluation(
    gateway: Gateway,
) -> None:
    response = gateway.client.post(
        "/access/v1/evaluations",
        json={**evaluation_body(), "evaluations": []},
        headers=gateway.auth(GEMEENTE),
    )
    assert response.status_code == 200, response.text
    assert isinstance(response.json()["decision"], bool)


AUDIT_QUERIES = [
    ("/v1/audit/entries", "after"),
    ("/v1/audit/proofs/inclusion?index=0", "size"),
    ("/v1/audit/proofs/inclusion", "index"),
    ("/v1/audit/proofs/consistency", "first"),
    ("/v1/audit/proofs/consistency?first=1", "second"),
]


@pytest.mark.parametrize("number", [BEYOND_INT64, HUGE, str(MAX_LOG_INDEX + 1)])
@pytest.mark.parametrize(("path", "name"), AUDIT_QUERIES)
def test_audit_integers_beyond_their_bound_are_422_problems(
    gateway: Gateway, path: str, name: str, number: str
) -> None:
    joiner = "&" if "?" in path else "?"
    response = gateway.client.get(f"{path}{joiner}{name}={number}", headers=gateway.auth(RIEC_PO))
    body = assert_problem(response, 422, "validation-failed")
    assert [e["loc"] for e in body["errors"]] == [["query", name]]
    assert number not in response.text


POLICY_PATHS = [
    ("GET", "/v1/policies/versions/{n}"),
    ("POST", "/v1/policies/versions/{n}/rollback"),
    ("GET", "/v1/policies/proposals/{n}"),
    ("GET", "/v1/policies/proposals/{n}/simulation"),
    ("POST", "/v1/policies/proposals/{n}/approve"),
    ("POST", "/v1/policies/proposals/{n}/reject"),
]


@pytest.mark.parametrize("number", [BEYOND_INT64, HUGE, str(MAX_ROW_ID + 1), "0", "-1"])
@pytest.mark.parametrize(("method", "path"), POLICY_PATHS)
def test_version_and_proposal_ids_out_of_range_are_422_problems(
    gateway: Gateway, method: str, path: str, number: str
) -> None:
    response = gateway.client.request(
        method,
        path.format(n=number),
        json={} if method == "POST" else None,
        headers=gateway.auth(RIEC_PO),
    )
    body = assert_problem(response, 422, "validation-failed")
    assert body["errors"][0]["loc"][0] == "path"


@pytest.mark.parametrize(
    "path",
    [
        "/v1/policies/proposals/1/simulation?until=0001-01-01T00:00:00Z",
        "/v1/policies/proposals/1/simulation?since=9999-12-31T23:59:59-14:00",
        "/v1/audit/entries?since=0001-01-01T00:00:00%2B14:00",
        "/v1/audit/entries?until=9999-12-31T23:59:59-14:00",
    ],
)
def test_date_times_beyond_sane_years_are_422_problems(gateway: Gateway, path: str) -> None:
    response = gateway.client.get(path, headers=gateway.auth(RIEC_PO))
    body = assert_problem(response, 422, "validation-failed")
    assert body["errors"][0]["loc"][0] == "query"


@pytest.mark.parametrize("since", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_a_processing_log_period_beyond_sane_years_is_a_422_problem(
    gateway: Gateway, since: str
) -> None:
    response = gateway.client.post(
        "/v1/subjects/processing-log",
        json={"identifiers": [{"type": "bsn", "value": "111222333"}], "since": since},
        headers=gateway.auth(RIEC_PO),
    )
    body = assert_problem(response, 422, "validation-failed")
    assert ["body", "since"] in [e["loc"] for e in body["errors"]]


@pytest.mark.parametrize(
    "path",
    [
        "/v1/audit/entries?case=a%00b",
        "/v1/research/releases/a%00b",
        "/v1/cases/a%00b",
        "/v1/partners/a%00b",
        "/v1/research/releases?agreement=%00",
    ],
)
def test_a_nul_in_the_url_is_a_400_problem(gateway: Gateway, path: str) -> None:
    who = OPERATOR if path.startswith("/v1/partners") else RIEC_PO
    assert_problem(gateway.client.get(path, headers=gateway.auth(who)), 400, "bad-request")


@pytest.mark.parametrize(
    ("path", "who", "body"),
    [
        (
            "/v1/partners",
            OPERATOR,
            {
                "id": "gemeente-nul",
                "kind": "gemeente",
                "name": "Nul\x00gemeente",
                "identifier_type": "oin",
                "identifier": "00000099000000098000",
            },
        ),
        ("/v1/policies/proposals", RIEC_PO, {"title": "a\x00b", "files": {"rules/x.yaml": "x"}}),
        ("/v1/policies/lint", RIEC_PO, {"files": {"rules/x.yaml": "rules: []\n\x00"}}),
        ("/v1/policies/lint", RIEC_PO, {"files": {"rules/x\x00.yaml": "rules: []\n"}}),
        ("/v1/signals", GEMEENTE, {**SIGNAL, "subjects": [{"type": "name", "value": "a\x00"}]}),
    ],
)
def test_a_nul_in_a_body_is_a_422_problem(
    gateway: Gateway, path: str, who: str, body: dict[str, Any]
) -> None:
    response = gateway.client.post(path, json=body, headers=gateway.auth(who))
    problem = assert_problem(response, 422, "validation-failed")
    assert problem["errors"][0]["type"] == "string_nul"


@pytest.mark.parametrize(
    "path",
    [
        "/workbench/proposals/{n}",
        "/workbench/proposals/{n}/simulation",
        "/workbench/audit/{n}/proof",
        "/workbench/audit?before={n}",
        "/workbench/audit?since=0001-01-01T00:00:00%2B14:00",
        "/workbench/proposals/1/simulation?until=0001-01-01",
    ],
)
def test_workbench_numbers_and_dates_out_of_range_never_make_a_500(
    gateway: Gateway, path: str
) -> None:
    client = TestClient(
        gateway.client.app, base_url="https://testserver", raise_server_exceptions=False
    )
    page = client.get("/workbench/sign-in")
    signed = client.post(
        "/workbench/sign-in",
        data={"token": gateway.tokens[RIEC_PO], "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert signed.status_code == 303
    for number in (BEYOND_INT64, HUGE):
        response = client.get(path.format(n=number), follow_redirects=False)
        assert 200 <= response.status_code < 500, response.text
        assert response.status_code != 303  # signed in: the page itself answered
    client.close()


def test_every_integer_input_of_the_api_declares_both_bounds(gateway: Gateway) -> None:
    document = gateway.client.get("/openapi.json").json()
    unbounded: list[str] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            if node.get("type") == "integer" and not ("maximum" in node and "minimum" in node):
                unbounded.append(where)
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}/{i}")

    for path, item in document["paths"].items():
        for method, operation in item.items():
            walk(operation.get("parameters", []), f"{method.upper()} {path} parameters")
    for name, schema in document["components"]["schemas"].items():
        if name.endswith(("In", "Request")) or name in {"Subject", "Context", "Action"}:
            walk(schema, name)
    assert unbounded == []


def test_the_openapi_document_says_every_error_is_a_problem(gateway: Gateway) -> None:
    document = gateway.client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "Problem" in schemas
    for path, item in document["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            errors = {code for code in responses if code[0] in "45"}
            assert {"4XX", "5XX"} <= errors, f"{method} {path}"
            for code in errors:
                assert list(responses[code]["content"]) == [PROBLEM], f"{method} {path} {code}"


# ----- strict request bodies --------------------------------------------------------------


@pytest.mark.parametrize("to_step", [True, "2", 2.0, "two"])
def test_a_transition_step_must_be_a_json_integer(gateway: Gateway, to_step: Any) -> None:
    case = gateway.client.post("/v1/signals", json=SIGNAL, headers=gateway.auth(GEMEENTE))
    assert case.status_code == 201, case.text
    response = gateway.client.post(
        f"/v1/cases/{case.json()['id']}/transitions",
        json={"to_step": to_step},
        headers=gateway.auth(RIEC),
    )
    body = assert_problem(response, 422, "validation-failed")
    assert [e["loc"] for e in body["errors"]] == [["body", "to_step"]]


@pytest.mark.parametrize(
    ("path", "who", "body", "field"),
    [
        ("/v1/signals", GEMEENTE, {**SIGNAL, "description": 12345}, "description"),
        ("/v1/signals", GEMEENTE, {**SIGNAL, "subjects": [{"type": "bsn", "value": 1}]}, "value"),
        (
            "/v1/partners/gemeente-groningen/principals",
            OPERATOR,
            {"role": "analyst", "label": 5},
            "label",
        ),
        (
            "/v1/partners/gemeente-groningen/principals",
            OPERATOR,
            {"role": 1, "label": "x"},
            "role",
        ),
        (
            "/v1/subjects/processing-log",
            RIEC_PO,
            {"identifiers": [{"type": "bsn", "value": "111222333"}], "since": 1700000000},
            "since",
        ),
        (
            f"/v1/research/agreements/{AGREEMENT}/consents",
            POLITIE_PO,
            {"decision": "consent", "note": False},
            "note",
        ),
        ("/v1/policies/proposals/1/reject", RIEC_PO, {"note": 1}, "note"),
        ("/access/v1/evaluation", GEMEENTE, evaluation_body(step="3"), "step"),
        ("/access/v1/evaluation", GEMEENTE, evaluation_body(step=True), "step"),
    ],
)
def test_request_bodies_never_juggle_types(
    gateway: Gateway, path: str, who: str, body: dict[str, Any], field: str
) -> None:
    response = gateway.client.post(path, json=body, headers=gateway.auth(who))
    status = 400 if path.startswith("/access/") else 422  # AuthZEN's table says 400
    problem = assert_problem(response, status, "validation-failed")
    assert field in {part for e in problem["errors"] for part in e["loc"]}


def test_a_strict_body_still_takes_enum_values_and_date_times_as_json_strings(
    gateway: Gateway,
) -> None:
    response = gateway.client.post(
        "/v1/subjects/processing-log",
        json={
            "identifiers": [{"type": "bsn", "value": "111222333"}],
            "since": "2026-01-01T00:00:00Z",
        },
        headers=gateway.auth(RIEC_PO),
    )
    assert response.status_code == 200, response.text
    response = gateway.client.post(  # the operator's own partner: an enum value as a string
        "/v1/partners/riec-noord-nederland/principals",
        json={"role": "partner-system", "label": "Systeem"},
        headers=gateway.auth(OPERATOR),
    )
    assert response.status_code == 201, response.text


# ----- no echo of input -------------------------------------------------------------------


def _marked_requests(case_id: str) -> list[tuple[str, str, str, dict[str, Any]]]:
    """Return (who, method, path, body) with the marker in one string field each."""
    records = f"/v1/cases/{case_id}/records"
    record = {
        "category": "police-incident",
        "legal_basis": "wpg-20",
        "purposes": ["integrale-aanpak-ondermijning"],
        "retention_days": 30,
        "fields": {"incident_id": "x"},
    }
    holdings = {"category": "fiscal", "identifiers": [{"type": "kvk", "value": "12345678"}]}
    partner = {
        "id": "gemeente-echo",
        "kind": "gemeente",
        "name": "Echo",
        "identifier_type": "oin",
        "identifier": "00000099000000099000",
    }
    proposal = {"title": "t", "files": {"rules/x.yaml": "rules: []\n"}}
    politie = "politie-noord-nederland.partner-system"
    return [
        (GEMEENTE, "POST", "/v1/holdings", {**holdings, "category": MARKER}),
        (GEMEENTE, "POST", "/v1/holdings", {**holdings, "identifiers": [{"type": MARKER}]}),
        (GEMEENTE, "POST", "/v1/signals", {**SIGNAL, "process": MARKER}),
        (GEMEENTE, "POST", "/v1/signals", {**SIGNAL, "riec": MARKER}),
        (GEMEENTE, "POST", "/v1/signals", {**SIGNAL, "legal_basis": MARKER}),
        (GEMEENTE, "POST", "/v1/signals", {**SIGNAL, MARKER: "x"}),
        (OPERATOR, "POST", "/v1/partners", {**partner, "kind": MARKER}),
        (OPERATOR, "POST", "/v1/partners", {**partner, "id": MARKER}),
        (OPERATOR, "POST", "/v1/partners", {**partner, "identifier_type": MARKER}),
        (OPERATOR, "GET", f"/v1/partners/{MARKER}", {}),
        (OPERATOR, "POST", f"/v1/principals/{MARKER}/tokens", {}),
        (OPERATOR, "POST", f"/v1/tokens/{MARKER}/revoke", {}),
        (politie, "POST", records, {**record, "category": MARKER}),
        (politie, "POST", records, {**record, "legal_basis": MARKER}),
        (politie, "POST", records, {**record, "purposes": [MARKER]}),
        (politie, "POST", records, {**record, "fields": {MARKER: "x"}}),
        (politie, "POST", records, {**record, "onward": MARKER}),
        (RIEC, "GET", f"/v1/cases/{MARKER}", {}),
        (
            GEMEENTE,
            "POST",
            "/access/v1/evaluation",
            {**evaluation_body(), "action": {"name": MARKER}},
        ),
        (GEMEENTE, "POST", "/access/v1/evaluation", evaluation_body(purpose=MARKER)),
        (GEMEENTE, "POST", "/access/v1/evaluation", evaluation_body(process=MARKER)),
        (
            GEMEENTE,
            "POST",
            "/access/v1/evaluations",
            {**evaluation_body(), "evaluations": [{"action": {"name": MARKER}}]},
        ),
        (
            GEMEENTE,
            "POST",
            "/access/v1/evaluations",
            {
                **evaluation_body(),
                "evaluations": [{"subject": {**evaluation_body()["subject"], MARKER: 1}}],
            },
        ),
        (RIEC_PO, "POST", "/v1/policies/proposals", {**proposal, "files": {MARKER: "x"}}),
        (RIEC_PO, "POST", "/v1/policies/proposals", {**proposal, "files": {"../" + MARKER: "x"}}),
        (RIEC_PO, "POST", "/v1/policies/proposals", {**proposal, "title": [MARKER]}),
        (RIEC_PO, "POST", "/v1/policies/proposals", {**proposal, MARKER: 1}),
        (RIEC_PO, "POST", "/v1/policies/lint", {"files": {MARKER: None}}),
        (RIEC_PO, "GET", f"/v1/policies/proposals/{MARKER}", {}),
        (RIEC_PO, "GET", f"/v1/policies/proposals?status={MARKER}", {}),
        (POLITIE_PO, "POST", f"/v1/research/agreements/{AGREEMENT}/consents", {"decision": MARKER}),
        (POLITIE_PO, "POST", f"/v1/research/agreements/{MARKER}/consents", {"decision": "consent"}),
        (RIEC_PO, "GET", f"/v1/research/agreements/{MARKER}", {}),
        (RIEC_PO, "GET", f"/v1/research/releases?agreement={MARKER}", {}),
        (RIEC_PO, "GET", f"/v1/research/releases/{MARKER}", {}),
        (
            "politie-noord-nederland.partner-system",
            "POST",
            f"/v1/research/agreements/{AGREEMENT}/rows",
            {"instrument": MARKER, "rows": [{"x": 1}]},
        ),
        (
            "politie-noord-nederland.partner-system",
            "POST",
            f"/v1/research/agreements/{AGREEMENT}/rows",
            {"instrument": "politie-incidenten", "rows": [{MARKER: 1}]},
        ),
        (RIEC_PO, "GET", f"/v1/audit/entries?after={MARKER}", {}),
        (RIEC_PO, "GET", f"/v1/audit/entries?since={MARKER}", {}),
    ]


def test_no_error_echoes_the_input_in_its_body_or_the_logs(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    case = gateway.client.post("/v1/signals", json=SIGNAL, headers=gateway.auth(GEMEENTE))
    case_id = case.json()["id"]
    for who, method, path, body in _marked_requests(case_id):
        headers = {**gateway.auth(who), "Idempotency-Key": "echo-test-key-1"}
        response = gateway.client.request(
            method, path, json=body if method == "POST" else None, headers=headers
        )
        # a batch answers 200 with each failing evaluation a deny carrying its error
        assert response.status_code < 500, (path, body, response.text)
        if response.status_code >= 400:
            assert response.headers["content-type"].startswith(PROBLEM), (path, response.text)
        assert "ECHO-ME-1234" not in response.text, (path, body, response.text)
    formatter = JsonFormatter()
    for record in caplog.records:
        if not record.name.startswith("gateway"):
            continue  # the test client's own log names the URLs it called
        line = formatter.format(record)
        assert "ECHO-ME-1234" not in line, line
        json.loads(line)
