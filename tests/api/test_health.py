"""Liveness, readiness and metrics."""

from __future__ import annotations

from gateway import db as dbmod
from tests.api.test_auth import OPERATOR, assert_problem
from tests.conftest import Gateway


def test_healthz_and_readyz(gateway: Gateway) -> None:
    assert gateway.client.get("/healthz").json() == {"status": "ok"}
    ready = gateway.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"] == "ok"
    assert ready.json()["checks"]["schema"] == "ok"


def test_readyz_fails_when_schema_falls_behind(gateway: Gateway) -> None:
    dbmod.downgrade(gateway.database, "base")
    body = assert_problem(gateway.client.get("/readyz"), 503, "unavailable")
    assert body["checks"]["schema"].startswith("schema at nothing")


def test_metrics_count_requests_by_route_template(gateway: Gateway) -> None:
    gateway.client.get("/v1/partners/politie-noord-nederland", headers=gateway.auth(OPERATOR))
    text = gateway.client.get("/metrics").text
    assert 'route="/v1/partners/{partner_id}"' in text
    assert "politie-noord-nederland" not in text


def test_openapi_is_published(gateway: Gateway) -> None:
    spec = gateway.client.get("/openapi.json").json()
    assert "/v1/partners" in spec["paths"]
    assert gateway.client.get("/docs").status_code == 200
