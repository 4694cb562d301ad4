"""AuthZEN: an evaluation naming a legal basis the partner may not invoke is a recorded false.

Not a 500 and not an allow: the decision is false, its context carries the reason and
the derived rule (``eigen-grondslag-<kind>`` for the asker's own basis,
``grondslag-van-verstrekker-<kind>`` for the data's provider), on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import select

from gateway.models.policy import PolicyDecisionRecord
from tests.conftest import Gateway

GEMEENTE = "gemeente-smallingerland.partner-system"
POLITIE = "politie-noord-nederland.partner-system"
BANK = "voorbeeldbank.partner-system"
RIEC = "riec-noord-nederland.riec-analyst"


def evaluation(
    subject: str,
    action: str,
    legal_basis: str,
    *,
    category: str,
    process: str = "casusaanpak",
    step: int | None = None,
    purpose: str = "none",
    provider: str | None = None,
    role: str | None = None,
) -> dict[str, Any]:
    properties: dict[str, Any] = {"category": category, "legal_basis": legal_basis}
    if provider is not None:
        properties["provider"] = provider
    body: dict[str, Any] = {
        "subject": {"type": "partner", "id": subject},
        "action": {"name": action},
        "resource": {"type": "record", "id": "r-1", "properties": properties},
        "context": {"process": process, "step": step, "purpose": purpose},
    }
    if role is not None:
        body["subject"]["properties"] = {"role": role}
    return body


def signal(subject: str, basis: str) -> dict[str, Any]:
    return evaluation(
        subject,
        "case:signal:submit",
        basis,
        category="signal",
        step=1,
        purpose="signaalbeoordeling",
    )


def rows(subject: str, basis: str, category: str = "money-mule-alert") -> dict[str, Any]:
    return evaluation(
        subject,
        "research:rows:submit",
        basis,
        category=category,
        process="none",
        purpose="wetenschappelijk-onderzoek",
        provider=subject,
    )


def decide(gateway: Gateway, who: str, body: dict[str, Any]) -> dict[str, Any]:
    response = gateway.client.post("/access/v1/evaluation", json=body, headers=gateway.auth(who))
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_a_municipality_asking_to_signal_under_the_police_basis_gets_false_with_the_reason(
    gateway: Gateway,
) -> None:
    body = decide(gateway, GEMEENTE, signal("gemeente-smallingerland", "wpg-20"))
    assert body["decision"] is False
    context = body["context"]
    assert context["rule_id"] == "eigen-grondslag-gemeente"
    assert "legal basis of its own" in context["reason"]
    assert "avg-6-1-e" in context["reason"] and "invoked_by" in context["source"]
    assert context["obligations"] == []
    with gateway.database.read() as session:
        recorded = session.exec(select(PolicyDecisionRecord)).all()
    assert [(r.legal_basis, r.allowed, r.rule_id) for r in recorded] == [
        ("wpg-20", False, "eigen-grondslag-gemeente")
    ]


def test_the_police_asking_to_signal_under_its_own_basis_gets_true(gateway: Gateway) -> None:
    body = decide(gateway, POLITIE, signal("politie-noord-nederland", "wpg-20"))
    assert body["decision"] is True, body


def test_a_bank_asking_to_deliver_rows_under_a_police_basis_gets_false(gateway: Gateway) -> None:
    for basis in ("wpg-22-bpg-4-7", "wjsg-15-39g"):
        body = decide(gateway, BANK, rows("voorbeeldbank", basis))
        assert body["decision"] is False
        assert body["context"]["rule_id"] == "eigen-grondslag-bank"
    allowed = decide(gateway, BANK, rows("voorbeeldbank", "avg-6-1-f"))
    assert allowed["decision"] is True, allowed


@pytest.mark.parametrize(
    ("subject", "role", "action", "basis", "category", "step", "purpose", "rule"),
    [
        (
            "gemeente-smallingerland",
            "analyst",
            "case:record:share",
            "wjsg-39f",
            "municipal",
            3,
            "integrale-aanpak-ondermijning",
            "eigen-grondslag-gemeente",
        ),
        (
            "belastingdienst",
            "partner-system",
            "case:signal:submit",
            "suwi-64",
            "signal",
            1,
            "signaalbeoordeling",
            "eigen-grondslag-belastingdienst",
        ),
        (
            "voorbeeldbank",
            "partner-system",
            "research:rows:submit",
            "wpg-22-bpg-4-7",
            "money-mule-alert",
            None,
            "wetenschappelijk-onderzoek",
            "eigen-grondslag-bank",
        ),
    ],
)
def test_a_riec_analyst_asking_about_another_partner_gets_the_same_refusal(
    gateway: Gateway,
    subject: str,
    role: str,
    action: str,
    basis: str,
    category: str,
    step: int | None,
    purpose: str,
    rule: str,
) -> None:
    body = evaluation(
        subject,
        action,
        basis,
        category=category,
        step=step,
        purpose=purpose,
        role=role,
        process="casusaanpak" if step else "none",
    )
    result = decide(gateway, RIEC, body)
    assert result["decision"] is False
    assert result["context"]["rule_id"] == rule


def test_reading_data_whose_basis_is_not_its_providers_gets_false(gateway: Gateway) -> None:
    body = evaluation(
        "riec-noord-nederland",
        "case:record:read",
        "wpg-20",
        category="municipal",
        step=3,
        purpose="integrale-aanpak-ondermijning",
        provider="gemeente-smallingerland",
    )
    result = decide(gateway, RIEC, body)
    assert result["decision"] is False
    assert result["context"]["rule_id"] == "grondslag-van-verstrekker-gemeente"


def test_a_batch_answers_each_foreign_basis_with_false_and_the_rest_as_usual(
    gateway: Gateway,
) -> None:
    response = gateway.client.post(
        "/access/v1/evaluations",
        json={
            "evaluations": [
                signal("gemeente-smallingerland", "wpg-20"),
                signal("gemeente-smallingerland", "avg-6-1-e"),
                signal("gemeente-smallingerland", "awr-43c"),
            ]
        },
        headers=gateway.auth(GEMEENTE),
    )
    assert response.status_code == 200, response.text
    answers = response.json()["evaluations"]
    assert [a["decision"] for a in answers] == [False, True, False]
    assert answers[0]["context"]["rule_id"] == "eigen-grondslag-gemeente"
    assert answers[2]["context"]["rule_id"] == "eigen-grondslag-gemeente"
