"""OpenID AuthZEN Authorization API 1.0 conformance, from the spec's own examples.

The request examples below are copied from the spec text (openid/authzen,
``api/authorization-api-1_0.md``, "Authorization API 1.0 - draft 03"): every one must be
answered 200 with a boolean decision. Three examples are not valid JSON as printed (a
trailing comma in the HTTPS evaluation request and in the ``permit_on_first_permit``
request, ``[...]`` in the options example); they are copied with only that mended.
The error table of the HTTPS binding (400, 401; 403 and 500 have no request form here)
is checked with malformed requests, on both endpoints.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlmodel import select

from gateway.models.policy import PolicyDecisionRecord
from tests.conftest import Gateway


@pytest.fixture
def gateway(module_gateway: Gateway) -> Gateway:
    """One gateway per backend for the whole module: its tests only ask and judge answers."""
    module_gateway.client.cookies.clear()
    return module_gateway


GEMEENTE = "gemeente-smallingerland.partner-system"
EVALUATION = "/access/v1/evaluation"
EVALUATIONS = "/access/v1/evaluations"
PROBLEM = "application/problem+json"

# ----- the spec's examples, as printed ---------------------------------------------------

SUBJECT_EXAMPLES: dict[str, dict[str, Any]] = {
    "subject-example": {"type": "user", "id": "alice@acmecorp.com"},
    "subject-department-example": {
        "type": "user",
        "id": "alice@acmecorp.com",
        "properties": {"department": "Sales"},
    },
    "subject-ip-address-example": {
        "type": "user",
        "id": "alice@acmecorp.com",
        "properties": {"department": "Sales", "ip_address": "172.217.22.14"},
    },
    "subject-device-id-example": {
        "type": "user",
        "id": "alice@acmecorp.com",
        "properties": {
            "department": "Sales",
            "ip_address": "172.217.22.14",
            "device_id": "8:65:ee:17:7e:0b",
        },
    },
}

RESOURCE_EXAMPLES: dict[str, dict[str, Any]] = {
    "resource-example": {"type": "book", "id": "123"},
    "resource-example-structured": {
        "type": "book",
        "id": "123",
        "properties": {"library_record": {"title": "AuthZEN in Action", "isbn": "978-0593383322"}},
    },
}

ACTION_EXAMPLE = {"name": "can_read"}
CONTEXT_EXAMPLE = {"time": "1985-10-26T01:22-07:00"}

REQUEST_EXAMPLE = {
    "subject": {"type": "user", "id": "alice@acmecorp.com"},
    "resource": {"type": "account", "id": "123"},
    "action": {"name": "can_read", "properties": {"method": "GET"}},
    "context": {"time": "1985-10-26T01:22-07:00"},
}

# The HTTPS binding's example (a trailing comma after "id": "1" mended).
HTTPS_REQUEST_EXAMPLE = {
    "subject": {"type": "user", "id": "alice@acmecorp.com"},
    "resource": {"type": "todo", "id": "1"},
    "action": {"name": "can_read"},
    "context": {"time": "1985-10-26T01:22-07:00"},
}


def _alice_reads(document: str, time: str = "2024-05-31T15:22-07:00") -> dict[str, Any]:
    return {
        "subject": {"type": "user", "id": "alice@acmecorp.com"},
        "action": {"name": "can_read"},
        "resource": {"type": "document", "id": document},
        "context": {"time": time},
    }


EVALUATIONS_NO_DEFAULTS = {
    "evaluations": [
        _alice_reads("boxcarring.md"),
        _alice_reads("subject-search.md"),
        _alice_reads("resource-search.md"),
    ]
}

EVALUATIONS_SUBJECT_CONTEXT_DEFAULTS = {
    "subject": {"type": "user", "id": "alice@acmecorp.com"},
    "context": {"time": "2024-05-31T15:22-07:00"},
    "evaluations": [
        {"action": {"name": "can_read"}, "resource": {"type": "document", "id": "boxcarring.md"}},
        {
            "action": {"name": "can_read"},
            "resource": {"type": "document", "id": "subject-search.md"},
        },
        {
            "action": {"name": "can_read"},
            "resource": {"type": "document", "id": "resource-search.md"},
        },
    ],
}

# Also the HTTPS binding's evaluations example, which is the same request.
EVALUATIONS_ACTION_OVERRIDDEN = {
    "subject": {"type": "user", "id": "alice@acmecorp.com"},
    "context": {"time": "2024-05-31T15:22-07:00"},
    "action": {"name": "can_read"},
    "evaluations": [
        {"resource": {"type": "document", "id": "boxcarring.md"}},
        {"resource": {"type": "document", "id": "subject-search.md"}},
        {
            "action": {"name": "can_edit"},
            "resource": {"type": "document", "id": "resource-search.md"},
        },
    ],
}


def _semantic_example(semantic: str) -> dict[str, Any]:
    return {
        "subject": {"type": "user", "id": "alice@example.com"},
        "action": {"name": "read"},
        "options": {"evaluations_semantic": semantic},
        "evaluations": [
            {"resource": {"type": "document", "id": "1"}},
            {"resource": {"type": "document", "id": "2"}},
            {"resource": {"type": "document", "id": "3"}},
        ],
    }


# "evaluations": [...] with one of the spec's evaluations in place of the ellipsis.
OPTIONS_EXAMPLE = {
    "evaluations": [_alice_reads("boxcarring.md")],
    "options": {"evaluation_semantics": "execute_all", "another_option": "value"},
}


def _entity_requests() -> list[tuple[str, dict[str, Any]]]:
    """Return one evaluation request per example entity, the others from the examples."""
    requests = [
        (name, {"subject": subject, "action": ACTION_EXAMPLE, "resource": {"type": "x", "id": "1"}})
        for name, subject in SUBJECT_EXAMPLES.items()
    ]
    requests += [
        (
            name,
            {
                "subject": SUBJECT_EXAMPLES["subject-example"],
                "action": ACTION_EXAMPLE,
                "resource": resource,
            },
        )
        for name, resource in RESOURCE_EXAMPLES.items()
    ]
    requests.append(
        (
            "context-example",
            {**HTTPS_REQUEST_EXAMPLE, "context": CONTEXT_EXAMPLE},
        )
    )
    return requests


SINGLE_EXAMPLES = [
    *_entity_requests(),
    ("request-example", REQUEST_EXAMPLE),
    ("example-access-evaluation-request", HTTPS_REQUEST_EXAMPLE),
]

BATCH_EXAMPLES = [
    ("evaluations-no-defaults", EVALUATIONS_NO_DEFAULTS, 3),
    ("evaluations-subject-context-defaults", EVALUATIONS_SUBJECT_CONTEXT_DEFAULTS, 3),
    ("example-access-evaluations-request", EVALUATIONS_ACTION_OVERRIDDEN, 3),
    ("execute_all", _semantic_example("execute_all"), 3),
    # every answer is false (the gateway does not model users): the first deny stops it
    ("deny_on_first_deny", _semantic_example("deny_on_first_deny"), 1),
    ("permit_on_first_permit", _semantic_example("permit_on_first_permit"), 3),
    ("options-example", OPTIONS_EXAMPLE, 1),
]


def _no_nulls(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, dict):
        return all(_no_nulls(v) for v in value.values())
    if isinstance(value, list):
        return all(_no_nulls(v) for v in value)
    return True


@pytest.mark.parametrize(("name", "body"), SINGLE_EXAMPLES, ids=[n for n, _ in SINGLE_EXAMPLES])
def test_every_spec_evaluation_example_is_answered_200_with_a_boolean_decision(
    gateway: Gateway, name: str, body: dict[str, Any]
) -> None:
    for path in (EVALUATION, EVALUATIONS):  # the evaluations API without evaluations too
        response = gateway.client.post(path, json=body, headers=gateway.auth(GEMEENTE))
        assert response.status_code == 200, (name, path, response.text)
        assert response.headers["content-type"] == "application/json"
        answer = response.json()
        assert isinstance(answer["decision"], bool)
        assert answer["decision"] is False  # a user, a book, an account: not modelled
        assert answer["context"]["reason"]
        assert _no_nulls(answer), answer


@pytest.mark.parametrize(
    ("name", "body", "count"), BATCH_EXAMPLES, ids=[n for n, _, _ in BATCH_EXAMPLES]
)
def test_every_spec_evaluations_example_is_answered_200_with_boolean_decisions(
    gateway: Gateway, name: str, body: dict[str, Any], count: int
) -> None:
    response = gateway.client.post(EVALUATIONS, json=body, headers=gateway.auth(GEMEENTE))
    assert response.status_code == 200, (name, response.text)
    results = response.json()["evaluations"]
    assert len(results) == count
    assert all(isinstance(r["decision"], bool) for r in results)
    assert _no_nulls(response.json())


# ----- the gateway's own questions with the properties the spec names ---------------------


def own_question(**extra: Any) -> dict[str, Any]:
    """Return the gemeente's question about a police incident, with ``extra`` merged in."""
    body: dict[str, Any] = {
        "subject": {"type": "partner", "id": "gemeente-smallingerland"},
        "action": {"name": "case:record:read"},
        "resource": {
            "type": "record",
            "id": "incident-1",
            "properties": {"category": "police-incident", "provider": "politie-noord-nederland"},
        },
        "context": {
            "process": "casusaanpak",
            "step": 3,
            "purpose": "integrale-aanpak-ondermijning",
        },
    }
    for member, value in extra.items():
        body[member] = {**body[member], **value}
    return body


def test_spec_named_properties_are_accepted_ignored_and_listed(gateway: Gateway) -> None:
    plain = gateway.client.post(EVALUATION, json=own_question(), headers=gateway.auth(GEMEENTE))
    body = own_question(
        subject={"properties": {"ip_address": "172.217.22.14", "device_id": "8:65:ee:17:7e:0b"}},
        action={"properties": {"method": "GET"}},
        context={"time": "1985-10-26T01:22-07:00"},
    )
    body["resource"]["properties"]["library_record"] = {"isbn": "978-0593383322"}
    response = gateway.client.post(EVALUATION, json=body, headers=gateway.auth(GEMEENTE))
    assert response.status_code == 200, response.text
    answer, before = response.json(), plain.json()
    assert answer["decision"] is before["decision"] is True
    assert answer["context"]["rule_id"] == before["context"]["rule_id"]
    assert answer["context"]["obligations"] == before["context"]["obligations"]
    assert sorted(answer["context"]["ignored"]) == sorted(
        [
            "subject.properties.ip_address",
            "subject.properties.device_id",
            "action.properties.method",
            "resource.properties.library_record",
            "context.time",
        ]
    )
    assert "ignored" not in before["context"]


def test_an_ignored_member_with_an_unshowable_name_is_listed_as_a_star(gateway: Gateway) -> None:
    body = own_question(context={"<b>ECHO-ME</b>": 1, "Time-Zone": "x"})
    response = gateway.client.post(EVALUATION, json=body, headers=gateway.auth(GEMEENTE))
    assert response.status_code == 200, response.text
    assert response.json()["context"]["ignored"] == ["context.*", "context.*"]
    assert "ECHO-ME" not in response.text and "Time-Zone" not in response.text


def test_a_batch_lists_ignored_options_and_members_in_each_decision(gateway: Gateway) -> None:
    body = {
        **own_question(context={"time": "2024-05-31T15:22-07:00"}),
        "options": {"evaluations_semantic": "execute_all", "another_option": "value"},
        "evaluations": [{}, {"action": {"name": "case:record:read", "properties": {"m": 1}}}],
    }
    response = gateway.client.post(EVALUATIONS, json=body, headers=gateway.auth(GEMEENTE))
    assert response.status_code == 200, response.text
    first, second = response.json()["evaluations"]
    assert first["decision"] is True
    assert sorted(first["context"]["ignored"]) == ["context.time", "options.another_option"]
    assert "action.properties.m" in second["context"]["ignored"]


@pytest.mark.parametrize(
    ("member", "value", "reason"),
    [
        ("subject", {"type": "user", "id": "gemeente-smallingerland"}, "type partner"),
        ("resource", {"type": "book", "id": "123"}, "type record"),
    ],
)
def test_a_type_the_gateway_does_not_model_is_a_false_with_the_reason(
    gateway: Gateway, member: str, value: dict[str, Any], reason: str
) -> None:
    body = {**own_question(), member: value}
    with gateway.database.read() as session:
        before = len(session.exec(select(PolicyDecisionRecord)).all())
    response = gateway.client.post(EVALUATION, json=body, headers=gateway.auth(GEMEENTE))
    assert response.status_code == 200, response.text
    assert response.json()["decision"] is False
    assert reason in response.json()["context"]["reason"]
    with gateway.database.read() as session:  # no decision was recorded for it
        assert len(session.exec(select(PolicyDecisionRecord)).all()) == before


def test_a_decision_has_no_null_members(gateway: Gateway) -> None:
    response = gateway.client.post(EVALUATION, json=own_question(), headers=gateway.auth(GEMEENTE))
    assert response.status_code == 200
    assert _no_nulls(response.json())
    assert "error" not in response.json()["context"]
    batch = {**own_question(), "evaluations": [{}]}
    response = gateway.client.post(EVALUATIONS, json=batch, headers=gateway.auth(GEMEENTE))
    assert _no_nulls(response.json())


def test_the_default_values_example_shape_is_honoured(gateway: Gateway) -> None:
    """Top-level members are defaults; an evaluation's own member takes precedence."""
    base = own_question()
    body = {
        "subject": base["subject"],
        "context": base["context"],
        "action": {"name": "case:record:read"},
        "evaluations": [
            {"resource": base["resource"]},
            {
                "resource": {
                    **base["resource"],
                    "properties": {"category": "fiscal", "provider": "belastingdienst"},
                }
            },
            {"action": {"name": "case:record:share"}, "resource": base["resource"]},
        ],
    }
    response = gateway.client.post(EVALUATIONS, json=body, headers=gateway.auth(GEMEENTE))
    assert response.status_code == 200, response.text
    rules = [e["context"]["rule_id"] for e in response.json()["evaluations"]]
    assert rules == [
        "gemeente-ziet-samenvatting-strafrechtelijk",
        "fiscaal-alleen-43c",
        "geen-verstrekking-zonder-grondslag",
    ]


# ----- discovery -------------------------------------------------------------------------


def test_discovery_has_the_issuer_and_advertises_the_batch_limit(gateway: Gateway) -> None:
    response = gateway.client.get("/.well-known/authzen-configuration")
    assert response.status_code == 200
    metadata = response.json()
    assert metadata["issuer"] == "http://testserver"
    assert metadata["access_evaluation_endpoint"] == "http://testserver/access/v1/evaluation"
    assert metadata["max_evaluations"] == 256
    assert metadata["max_request_bytes"] > 0
    assert _no_nulls(metadata)
    items: list[dict[str, Any]] = [{}] * (metadata["max_evaluations"] + 1)
    response = gateway.client.post(
        EVALUATIONS, json={**own_question(), "evaluations": items}, headers=gateway.auth(GEMEENTE)
    )
    assert response.status_code == 400


# ----- the HTTPS binding's error table ---------------------------------------------------

MALFORMED: list[tuple[str, str]] = [
    ("not-json", "{not json"),
    ("truncated", json.dumps(own_question())[:-1]),
    ("trailing-comma", '{"subject": {"type": "user", "id": "a",}}'),
    ("array", "[]"),
    ("string", '"evaluate"'),
    ("missing-subject", json.dumps({k: v for k, v in own_question().items() if k != "subject"})),
    ("missing-action", json.dumps({k: v for k, v in own_question().items() if k != "action"})),
    ("missing-resource", json.dumps({k: v for k, v in own_question().items() if k != "resource"})),
    ("missing-subject-id", json.dumps({**own_question(), "subject": {"type": "partner"}})),
    ("missing-subject-type", json.dumps({**own_question(), "subject": {"id": "x"}})),
    ("missing-resource-id", json.dumps({**own_question(), "resource": {"type": "record"}})),
    ("missing-action-name", json.dumps({**own_question(), "action": {"properties": {}}})),
    ("numeric-subject-id", json.dumps({**own_question(), "subject": {"type": "x", "id": 7}})),
    ("empty-resource-id", json.dumps({**own_question(), "resource": {"type": "r", "id": ""}})),
    ("properties-not-object", json.dumps(own_question(subject={"properties": ["role"]}))),
    ("action-properties-not-object", json.dumps(own_question(action={"properties": 1}))),
    ("context-not-object", json.dumps({**own_question(), "context": "now"})),
    ("step-as-text", json.dumps(own_question(context={"step": "3"}))),
]


@pytest.mark.parametrize("path", [EVALUATION, EVALUATIONS])
@pytest.mark.parametrize(("name", "raw"), MALFORMED, ids=[n for n, _ in MALFORMED])
def test_a_malformed_request_is_a_400_with_an_error_message(
    gateway: Gateway, path: str, name: str, raw: str
) -> None:
    headers = {**gateway.auth(GEMEENTE), "Content-Type": "application/json"}
    response = gateway.client.post(path, content=raw, headers=headers)
    assert response.status_code == 400, (name, response.text)
    assert response.headers["content-type"].startswith(PROBLEM)
    problem = response.json()
    assert problem["status"] == 400
    assert problem["type"] == "urn:riec-gateway:problem:validation-failed"
    assert isinstance(problem["detail"], str) and problem["detail"]


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("evaluations-not-a-list", {"evaluations": {"a": 1}}),
        ("evaluation-not-an-object", {**own_question(), "evaluations": [1]}),
        (
            "unknown-semantic",
            {
                **own_question(),
                "evaluations": [{}],
                "options": {"evaluations_semantic": "deny_on_everything"},
            },
        ),
        ("options-not-an-object", {**own_question(), "evaluations": [{}], "options": 1}),
    ],
)
def test_a_malformed_batch_is_a_400(gateway: Gateway, name: str, body: dict[str, Any]) -> None:
    response = gateway.client.post(EVALUATIONS, json=body, headers=gateway.auth(GEMEENTE))
    assert response.status_code == 400, (name, response.text)
    assert response.headers["content-type"].startswith(PROBLEM)
    assert "deny_on_everything" not in response.text


def test_a_batch_entry_missing_its_resource_id_is_a_false_with_a_400_error(
    gateway: Gateway,
) -> None:
    body = {**own_question(), "evaluations": [{}, {"resource": {"type": "record"}}]}
    response = gateway.client.post(EVALUATIONS, json=body, headers=gateway.auth(GEMEENTE))
    assert response.status_code == 200, response.text
    first, second = response.json()["evaluations"]
    assert first["decision"] is True
    assert second["decision"] is False
    assert second["context"]["error"]["status"] == 400


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"category": "police-incidentz"}, "unknown-term"),
        ({"legal_basis": "wet-op-alles"}, "unknown-term"),
        ({"consent": "maybe"}, "validation-failed"),
    ],
)
def test_an_unknown_policy_term_is_a_400_that_does_not_echo_it(
    gateway: Gateway, change: dict[str, str], code: str
) -> None:
    body = own_question()
    body["resource"]["properties"] = {**body["resource"]["properties"], **change}
    response = gateway.client.post(EVALUATION, json=body, headers=gateway.auth(GEMEENTE))
    assert response.status_code == 400, response.text
    assert response.json()["type"] == f"urn:riec-gateway:problem:{code}"
    assert next(iter(change.values())) not in response.text


@pytest.mark.parametrize("path", [EVALUATION, EVALUATIONS])
@pytest.mark.parametrize("token", [None, "gw_0000000000000000_not-a-token"])
def test_an_unauthenticated_request_is_a_401_with_an_error_message(
    gateway: Gateway, path: str, token: str | None
) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = gateway.client.post(path, json=REQUEST_EXAMPLE, headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith(PROBLEM)
    assert isinstance(response.json()["detail"], str)


def test_the_v1_api_keeps_its_422_for_malformed_json(gateway: Gateway) -> None:
    headers = {**gateway.auth(GEMEENTE), "Content-Type": "application/json"}
    response = gateway.client.post("/v1/signals", content="{not json", headers=headers)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith(PROBLEM)


def test_the_request_id_is_returned(gateway: Gateway) -> None:
    request_id = "bfe9eb29-ab87-4ca3-be83-a1d5d8305716"
    headers = {**gateway.auth(GEMEENTE), "X-Request-ID": request_id}
    response = gateway.client.post(EVALUATION, json=REQUEST_EXAMPLE, headers=headers)
    assert response.status_code == 200
    assert response.headers["x-request-id"] == request_id
