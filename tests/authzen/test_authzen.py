"""AuthZEN evaluation endpoints through the HTTP client, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import select

from gateway.models.audit import AuditEntry
from gateway.models.policy import PolicyDecisionRecord
from tests.conftest import Gateway

RIEC = "riec-noord-nederland.riec-analyst"
GEMEENTE = "gemeente-smallingerland.partner-system"
GEMEENTE_PO = "gemeente-smallingerland.privacy-officer"
POLITIE = "politie-noord-nederland.partner-system"
OPERATOR = "riec-noord-nederland.operator"


def ask(
    subject: str,
    action: str,
    *,
    role: str | None = None,
    category: str = "police-incident",
    provider: str | None = "politie-noord-nederland",
    step: int | None = 3,
    purpose: str = "integrale-aanpak-ondermijning",
    **resource: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "subject": {"type": "partner", "id": subject},
        "action": {"name": action},
        "resource": {
            "type": "record",
            "id": "r-1",
            "properties": {"category": category, **resource},
        },
        "context": {"process": "casusaanpak", "step": step, "purpose": purpose},
    }
    if provider is not None:
        body["resource"]["properties"]["provider"] = provider
    if role is not None:
        body["subject"]["properties"] = {"role": role}
    return body


def test_readiness_reports_the_policy(gateway: Gateway) -> None:
    response = gateway.client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["policy"] == "ok"


def test_discovery_names_both_endpoints(gateway: Gateway) -> None:
    response = gateway.client.get("/.well-known/authzen-configuration")
    assert response.status_code == 200
    body = response.json()
    assert body["access_evaluation_endpoint"].endswith("/access/v1/evaluation")
    assert body["access_evaluations_endpoint"].endswith("/access/v1/evaluations")
    assert body["policy_decision_point"].startswith("http")


def test_a_partner_asks_about_itself_and_gets_reason_rule_version_obligations(
    gateway: Gateway,
) -> None:
    response = gateway.client.post(
        "/access/v1/evaluation",
        json=ask("gemeente-smallingerland", "case:record:read"),
        headers=gateway.auth(GEMEENTE),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["decision"] is True
    context = body["context"]
    assert context["rule_id"] == "gemeente-ziet-samenvatting-strafrechtelijk"
    assert context["obligations"] == [{"kind": "summary-only"}]
    assert context["reason"] and context["source"]
    assert len(context["policy_version"]) == 64


def test_fiscal_data_is_denied_to_the_gemeente_with_the_reason(gateway: Gateway) -> None:
    response = gateway.client.post(
        "/access/v1/evaluation",
        json=ask(
            "gemeente-smallingerland",
            "case:record:read",
            category="fiscal",
            provider="belastingdienst",
        ),
        headers=gateway.auth(GEMEENTE),
    )
    body = response.json()
    assert body["decision"] is False
    assert body["context"]["rule_id"] == "fiscaal-alleen-43c"
    assert "43c" in body["context"]["source"]
    assert body["context"]["obligations"] == []


def test_every_decision_is_recorded_with_an_audit_entry(gateway: Gateway) -> None:
    for category in ("police-incident", "fiscal"):
        gateway.client.post(
            "/access/v1/evaluation",
            json=ask("gemeente-smallingerland", "case:record:read", category=category),
            headers=gateway.auth(GEMEENTE),
        )
    with gateway.database.read() as session:
        rows = session.exec(select(PolicyDecisionRecord)).all()
        assert [(r.category, r.allowed) for r in rows] == [
            ("police-incident", True),
            ("fiscal", False),
        ]
        assert all(r.actor_principal_id == GEMEENTE for r in rows)
        entries = session.exec(
            select(AuditEntry).where(AuditEntry.event_type == "policy:decision:record")
        ).all()
        assert {e.entry_id for e in entries} == {r.audit_entry_id for r in rows}
        assert len(entries) == len(rows)


@pytest.mark.parametrize("other", ["politie-noord-nederland", "bestaat-niet"])
def test_a_partner_asking_about_another_partner_gets_false_whether_it_exists_or_not(
    gateway: Gateway, other: str
) -> None:
    response = gateway.client.post(
        "/access/v1/evaluation",
        json=ask(other, "case:record:read"),
        headers=gateway.auth(GEMEENTE),
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "decision": False,
        "context": {"reason": "a partner may only ask about itself", "obligations": []},
    }
    with gateway.database.read() as session:
        assert session.exec(select(PolicyDecisionRecord)).all() == []


def test_a_partner_claiming_another_role_gets_false_with_the_reason(gateway: Gateway) -> None:
    response = gateway.client.post(
        "/access/v1/evaluation",
        json=ask("gemeente-smallingerland", "case:record:read", role="riec-analyst"),
        headers=gateway.auth(GEMEENTE),
    )
    assert response.status_code == 200, response.text
    assert response.json()["decision"] is False
    assert response.json()["context"]["reason"] == "a partner may only ask about its own role"


def test_the_riec_analyst_asks_about_a_partner_whose_kind_comes_from_the_registry(
    gateway: Gateway,
) -> None:
    response = gateway.client.post(
        "/access/v1/evaluation",
        json=ask(
            "gemeente-smallingerland",
            "case:record:read",
            role="analyst",
            category="police-investigation",
        ),
        headers=gateway.auth(RIEC),
    )
    assert response.status_code == 200, response.text
    assert response.json()["context"]["rule_id"] == "opsporing-nooit-naar-gemeente"


def test_a_privacy_officer_must_name_the_role(gateway: Gateway) -> None:
    response = gateway.client.post(
        "/access/v1/evaluation",
        json=ask("politie-noord-nederland", "case:record:read"),
        headers=gateway.auth(GEMEENTE_PO),
    )
    assert response.status_code == 400
    assert response.json()["type"] == "urn:riec-gateway:problem:invalid-input"


@pytest.mark.parametrize(
    ("change", "status", "problem"),
    [
        ({"category": "police-incidents"}, 400, "unknown-term"),
        ({"legal_basis": "wpg-21"}, 400, "unknown-term"),
        ({"action": "case:record:steal"}, 400, "unknown-term"),
        ({"provider": "garage-de-scooter"}, 404, "not-found"),
        ({"role": "superuser", "subject": "politie-noord-nederland"}, 400, "unknown-term"),
        ({"subject": "bestaat-niet", "role": "analyst"}, 404, "not-found"),
        ({"step": "3"}, 400, "validation-failed"),
    ],
)
def test_bad_requests_are_problems_with_stable_types(
    gateway: Gateway, change: dict[str, Any], status: int, problem: str
) -> None:
    body = ask(
        change.get("subject", "gemeente-smallingerland"),
        change.get("action", "case:record:read"),
        role=change.get("role"),
        category=change.get("category", "police-incident"),
        provider=change.get("provider", "politie-noord-nederland"),
    )
    if "legal_basis" in change:
        body["resource"]["properties"]["legal_basis"] = change["legal_basis"]
    if "step" in change:
        body["context"]["step"] = change["step"]
    response = gateway.client.post(
        "/access/v1/evaluation", json=body, headers=gateway.auth(GEMEENTE_PO)
    )
    assert response.status_code == status, response.text
    assert response.json()["type"] == f"urn:riec-gateway:problem:{problem}"
    assert "garage" not in response.text  # never echoes the input


def test_a_revoked_provider_or_subject_is_not_found_at_the_next_evaluation(
    gateway: Gateway,
) -> None:
    # Partner kinds are looked up per evaluation, never kept: a revocation counts at once.
    about_police = ask("gemeente-smallingerland", "case:record:read", role="partner-system")
    about_om = ask("om-noord-nederland", "case:record:read", role="partner-system", provider=None)
    for body in (about_police, about_om):
        response = gateway.client.post(
            "/access/v1/evaluation", json=body, headers=gateway.auth(GEMEENTE_PO)
        )
        assert response.status_code == 200, response.text
    for partner in ("politie-noord-nederland", "om-noord-nederland"):
        revoked = gateway.client.post(
            f"/v1/partners/{partner}/revoke", headers=gateway.auth(OPERATOR)
        )
        assert revoked.status_code == 200
    for body in (about_police, about_om):
        response = gateway.client.post(
            "/access/v1/evaluation", json=body, headers=gateway.auth(GEMEENTE_PO)
        )
        assert response.status_code == 404, response.text
        assert response.json()["type"] == "urn:riec-gateway:problem:not-found"


def test_a_token_is_required(gateway: Gateway) -> None:
    response = gateway.client.post("/access/v1/evaluation", json=ask("x-x", "case:record:read"))
    assert response.status_code == 401


def batch(semantic: str | None, evaluations: list[dict[str, Any]]) -> dict[str, Any]:
    base = ask("gemeente-smallingerland", "case:record:read")
    body: dict[str, Any] = {
        "subject": base["subject"],
        "action": base["action"],
        "context": base["context"],
        "resource": base["resource"],
        "evaluations": evaluations,
    }
    if semantic is not None:
        body["options"] = {"evaluations_semantic": semantic}
    return body


def record_of(category: str) -> dict[str, Any]:
    return {
        "resource": {
            "type": "record",
            "id": "r-2",
            "properties": {"category": category, "provider": "politie-noord-nederland"},
        }
    }


ITEMS = [record_of("police-incident"), record_of("fiscal"), record_of("om-case")]


@pytest.mark.parametrize(
    ("semantic", "expected"),
    [
        (None, [True, False, True]),
        ("execute_all", [True, False, True]),
        ("deny_on_first_deny", [True, False]),
        ("permit_on_first_permit", [True]),
    ],
)
def test_batch_semantics(gateway: Gateway, semantic: str | None, expected: list[bool]) -> None:
    response = gateway.client.post(
        "/access/v1/evaluations", json=batch(semantic, ITEMS), headers=gateway.auth(GEMEENTE)
    )
    assert response.status_code == 200, response.text
    assert [e["decision"] for e in response.json()["evaluations"]] == expected
    with gateway.database.read() as session:
        assert len(session.exec(select(PolicyDecisionRecord)).all()) == len(expected)


def test_batch_items_inherit_and_override_defaults(gateway: Gateway) -> None:
    items: list[dict[str, Any]] = [
        {},  # all defaults: police incident, summary
        {"action": {"name": "case:record:share"}},  # no legal basis given
        {
            "context": {
                "process": "casusaanpak",
                "step": 7,
                "purpose": "integrale-aanpak-ondermijning",
            }
        },
    ]
    response = gateway.client.post(
        "/access/v1/evaluations", json=batch(None, items), headers=gateway.auth(GEMEENTE)
    )
    rules = [e["context"]["rule_id"] for e in response.json()["evaluations"]]
    assert rules == [
        "gemeente-ziet-samenvatting-strafrechtelijk",
        "geen-verstrekking-zonder-grondslag",
        "na-afsluiting-alleen-eigen",
    ]


def test_a_failing_batch_item_is_a_deny_with_its_error(gateway: Gateway) -> None:
    items: list[dict[str, Any]] = [
        record_of("police-incident"),
        {"subject": {"type": "partner", "id": "politie-noord-nederland"}},
        record_of("police-incidents"),
        {"action": {"nom": "x"}},
    ]
    response = gateway.client.post(
        "/access/v1/evaluations", json=batch("execute_all", items), headers=gateway.auth(GEMEENTE)
    )
    assert response.status_code == 200
    results = response.json()["evaluations"]
    assert [r["decision"] for r in results] == [True, False, False, False]
    assert "error" not in results[1]["context"]  # another partner: a decision, not an error
    assert results[1]["context"]["reason"] == "a partner may only ask about itself"
    assert [r["context"]["error"]["status"] for r in results[2:]] == [400, 400]
    assert results[2]["context"]["error"]["type"] == "urn:riec-gateway:problem:unknown-term"


def test_a_batch_without_evaluations_is_a_single_evaluation(gateway: Gateway) -> None:
    body = batch(None, [])
    response = gateway.client.post(
        "/access/v1/evaluations", json=body, headers=gateway.auth(GEMEENTE)
    )
    assert response.status_code == 200
    assert response.json()["decision"] is True
