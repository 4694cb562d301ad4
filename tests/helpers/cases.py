"""One case walked through the API: the worked example's signal, partners and go decision.

Shared by the workflow tests that need a case at step 3 (``start_case`` then ``go``).
"""

from __future__ import annotations

from typing import Any

import httpx2 as httpx

from gateway import demo_data
from gateway.demo import BELASTING, GEMEENTE, POLITIE, RIEC
from gateway.demo_data import GARAGE_KVK, SIGNAL, YOUTH
from tests.conftest import Gateway

# The data of the brief's example, shortened retention periods for the retention test.
POLICE_RECORD: dict[str, Any] = {**demo_data.POLICE_RECORD, "retention_days": 30}
FISCAL_RECORD: dict[str, Any] = {**demo_data.FISCAL_RECORD, "retention_days": 60}


class Walk:
    """Small helpers over the test client for one case."""

    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway
        self.case_id = ""
        self.keys = 0

    def call(self, who: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.gw.client.request(method, path, headers=self.gw.auth(who), **kwargs)

    def ok(self, who: str, method: str, path: str, **kwargs: Any) -> Any:
        response = self.call(who, method, path, **kwargs)
        assert response.status_code in (200, 201), response.text
        return response.json()

    def case(self, suffix: str = "") -> str:
        return f"/v1/cases/{self.case_id}{suffix}"

    def share(self, who: str, record: dict[str, Any], key: str | None = None) -> httpx.Response:
        self.keys += 1
        return self.gw.client.post(
            self.case("/records"),
            json=record,
            headers={**self.gw.auth(who), "Idempotency-Key": key or f"key-{self.keys:08d}"},
        )

    def records(self, who: str) -> dict[str, Any]:
        result: dict[str, Any] = self.ok(who, "GET", self.case("/records"))
        return result

    def by_category(self, who: str) -> dict[str, dict[str, Any]]:
        return {r["provenance"]["category"]: r for r in self.records(who)["records"]}

    def move(self, to_step: int, **body: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.ok(
            RIEC, "POST", self.case("/transitions"), json={"to_step": to_step, **body}
        )
        assert result["step"] == to_step
        return result


def start_case(gateway: Gateway) -> Walk:
    """Steps 1 and 2 of the example, up to the go decision and step 3."""
    walk = Walk(gateway)
    case = walk.ok(GEMEENTE, "POST", "/v1/signals", json=SIGNAL)
    walk.case_id = case["id"]
    assert case["step"] == 1
    assert case["participants"] == ["gemeente-smallingerland", "riec-noord-nederland"]
    for partner in ("politie-noord-nederland", "belastingdienst", "om-noord-nederland"):
        walk.ok(RIEC, "POST", walk.case("/participants"), json={"partner_id": partner})
    walk.ok(
        POLITIE,
        "POST",
        "/v1/holdings",
        json={"category": "police-incident", "identifiers": [{"type": "name", "value": YOUTH}]},
    )
    walk.ok(
        BELASTING,
        "POST",
        "/v1/holdings",
        json={"category": "fiscal", "identifiers": [{"type": "kvk", "value": GARAGE_KVK}]},
    )
    walk.move(2)
    return walk


def go(walk: Walk) -> None:
    walk.ok(
        RIEC,
        "POST",
        walk.case("/decision"),
        json={
            "decision": "go",
            "purpose": "integrale-aanpak-ondermijning",
            "legal_basis": "riec-convenant",
            "motivation": "Stuurploeg: signaal raakt ondermijning; integrale aanpak.",
        },
    )
    walk.move(3)
