"""The OpenAPI document is valid and describes the error responses the gateway really sends.

``/openapi.json`` passes ``openapi-spec-validator``; a sample of real 4xx responses (401,
403, 404, 409, 422 on ``/v1`` and the AuthZEN 400s) is validated with ``jsonschema``
against the schema the document declares for that operation, status and media type.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from tests.api.test_auth import OPERATOR
from tests.conftest import Gateway

GEMEENTE = "gemeente-smallingerland.partner-system"
PROBLEM = "application/problem+json"

NEW_PARTNER = {
    "id": "gemeente-heerenveen",
    "kind": "gemeente",
    "name": "Gemeente Heerenveen",
    "identifier_type": "oin",
    "identifier": "00000099000009990000",
}
EVALUATION = {
    "subject": {"type": "partner", "id": "gemeente-smallingerland"},
    "action": {"name": "case:record:read"},
    "resource": {"type": "record", "id": "r-1", "properties": {"category": "police-incident"}},
}


def _operation(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    """Return the operation of ``document`` whose path template matches ``path``."""
    for template, item in document["paths"].items():
        pattern = "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path) and method.lower() in item:
            operation: dict[str, Any] = item[method.lower()]
            return operation
    raise AssertionError(f"{method} {path} is not in the OpenAPI document")


def _declared(operation: dict[str, Any], status: int) -> dict[str, Any]:
    """Return the response the operation declares for ``status`` (exact, then ``4XX``)."""
    responses = operation["responses"]
    for key in (str(status), f"{str(status)[0]}XX", "default"):
        if key in responses:
            declared: dict[str, Any] = responses[key]
            return declared
    raise AssertionError(f"no response declared for {status}")


def assert_matches_document(
    document: dict[str, Any], method: str, path: str, response: Any
) -> None:
    """Assert ``response`` is declared by its operation and its body fits that schema."""
    declared = _declared(_operation(document, method, path), response.status_code)
    media_type = response.headers["content-type"].split(";")[0]
    assert media_type in declared["content"], (path, response.status_code, declared)
    schema = {**declared["content"][media_type]["schema"], "components": document["components"]}
    Draft202012Validator(schema).validate(response.json())


def test_the_openapi_document_is_valid_openapi(gateway: Gateway) -> None:
    document = gateway.client.get("/openapi.json").json()
    validate(document)


def test_every_4xx_is_documented_as_a_problem_and_no_authzen_path_declares_422(
    gateway: Gateway,
) -> None:
    document = gateway.client.get("/openapi.json").json()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            for status, declared in responses.items():
                if status.startswith("4"):
                    assert list(declared["content"]) == [PROBLEM], (method, path, status)
                    assert declared["content"][PROBLEM]["schema"] == {
                        "$ref": "#/components/schemas/Problem"
                    }
            if path.startswith("/access/v1/"):
                assert "422" not in responses and "400" in responses, (method, path)


@pytest.mark.parametrize(
    ("method", "path", "who", "body", "status"),
    [
        ("GET", "/v1/me", None, None, 401),
        ("POST", "/v1/partners", GEMEENTE, NEW_PARTNER, 403),
        ("GET", "/v1/partners/bestaat-niet", OPERATOR, None, 404),
        ("POST", "/v1/partners", OPERATOR, {**NEW_PARTNER, "id": "gemeente-smallingerland"}, 409),
        ("POST", "/v1/partners", OPERATOR, {**NEW_PARTNER, "kind": 1}, 422),
        ("POST", "/v1/partners", OPERATOR, {**NEW_PARTNER, "kind": "gemeentee"}, 422),
        ("POST", "/access/v1/evaluation", None, EVALUATION, 401),
        ("POST", "/access/v1/evaluation", GEMEENTE, {"subject": EVALUATION["subject"]}, 400),
        (
            "POST",
            "/access/v1/evaluation",
            GEMEENTE,
            {**EVALUATION, "action": {"name": "case:record:steal"}},
            400,
        ),
        ("POST", "/access/v1/evaluations", GEMEENTE, {"evaluations": 1}, 400),
    ],
)
def test_a_real_error_response_fits_the_schema_the_document_declares(
    gateway: Gateway, method: str, path: str, who: str | None, body: Any, status: int
) -> None:
    document = gateway.client.get("/openapi.json").json()
    headers = gateway.auth(who) if who else {}
    response = gateway.client.request(method, path, json=body, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert_matches_document(document, method, path, response)


def test_a_malformed_json_body_fits_the_declared_problem_on_both_apis(gateway: Gateway) -> None:
    document = gateway.client.get("/openapi.json").json()
    headers = {**gateway.auth(OPERATOR), "Content-Type": "application/json"}
    for path, status in (("/v1/partners", 422), ("/access/v1/evaluation", 400)):
        response = gateway.client.post(path, content="{oops", headers=headers)
        assert response.status_code == status, response.text
        assert_matches_document(document, "POST", path, response)


def test_a_decision_fits_the_declared_success_schema(gateway: Gateway) -> None:
    document = gateway.client.get("/openapi.json").json()
    for path, body in (
        ("/access/v1/evaluation", EVALUATION),
        ("/access/v1/evaluations", {**EVALUATION, "evaluations": [{}]}),
    ):
        response = gateway.client.post(path, json=body, headers=gateway.auth(GEMEENTE))
        assert response.status_code == 200, response.text
        assert_matches_document(document, "POST", path, response)
    response = gateway.client.get("/.well-known/authzen-configuration")
    assert_matches_document(document, "GET", "/.well-known/authzen-configuration", response)


def test_ready_rendered_answers_fit_the_document(gateway: Gateway) -> None:
    """Record share (new and retried), record read and AuthZEN return bodies FastAPI does
    not validate (``gateway.api.responses``): each still fits the schema the document
    declares for its status, and the statuses are the declared ones."""
    from gateway.demo import GEMEENTE as GEMEENTE_DEMO
    from gateway.demo import POLITIE, RIEC
    from tests.helpers.cases import POLICE_RECORD, go, start_case

    document = gateway.client.get("/openapi.json").json()
    walk = start_case(gateway)
    go(walk)
    path = walk.case("/records")
    created = walk.share(POLITIE, POLICE_RECORD, key="conformance-1")
    retried = walk.share(POLITIE, POLICE_RECORD, key="conformance-1")
    assert (created.status_code, retried.status_code) == (201, 200)
    assert created.json() == {**retried.json(), "created": True}
    assert created.headers["content-type"] == "application/json"
    for response in (created, retried):
        assert_matches_document(document, "POST", path, response)
    for reader in (RIEC, GEMEENTE_DEMO):
        read = walk.call(reader, "GET", path)
        assert read.status_code == 200
        assert_matches_document(document, "GET", path, read)
    assert [r["provenance"]["category"] for r in walk.records(RIEC)["records"]] == [
        "police-incident"
    ]
    answer = gateway.client.post(
        "/access/v1/evaluation", json=EVALUATION, headers=gateway.auth(GEMEENTE)
    )
    assert answer.status_code == 200
    assert_matches_document(document, "POST", "/access/v1/evaluation", answer)
    assert None not in answer.json()["context"].values()  # null members left out
