"""Bearer tokens: every /v1 endpoint needs one; bad ones get a 401 problem, wrong roles 403."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from gateway.models.partners import ApiToken
from tests.conftest import Gateway
from tests.helpers.problems import PROBLEM as PROBLEM
from tests.helpers.problems import assert_problem as assert_problem
from tests.identity.helpers import operator_of

OPERATOR = "riec-noord-nederland.operator"
ANALYST = "politie-noord-nederland.analyst"


def test_me_answers_who_the_caller_is(gateway: Gateway) -> None:
    response = gateway.client.get("/v1/me", headers=gateway.auth(ANALYST))
    assert response.status_code == 200
    assert response.json() == {
        "principal_id": ANALYST,
        "partner_id": "politie-noord-nederland",
        "partner_kind": "politie",
        "role": "analyst",
    }


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic dXNlcjpwdw=="},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Bearer gw_0123456789abcdef_short"},
    ],
    ids=["missing", "basic", "empty", "malformed", "short-secret"],
)
def test_missing_or_malformed_token_is_401(gateway: Gateway, headers: dict[str, str]) -> None:
    response = gateway.client.get("/v1/me", headers=headers)
    assert_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_unknown_token_and_wrong_secret_are_401(gateway: Gateway) -> None:
    real = gateway.tokens[ANALYST]
    token_id = real.split("_")[1]
    forged_secret = "A" * 43
    for token in (f"gw_{'f' * 16}_{forged_secret}", f"gw_{token_id}_{forged_secret}"):
        response = gateway.client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
        body = assert_problem(response, 401, "unauthenticated")
        assert body["reason"] == "unknown"
        assert forged_secret not in response.text


def test_expired_token_is_401(gateway: Gateway) -> None:
    gateway.clock.advance(timedelta(days=gateway.settings.token_ttl_days, seconds=1))
    body = assert_problem(
        gateway.client.get("/v1/me", headers=gateway.auth(ANALYST)), 401, "unauthenticated"
    )
    assert body["reason"] == "expired"


def test_revoked_token_is_401_at_once(gateway: Gateway) -> None:
    token_id = gateway.tokens[ANALYST].split("_")[1]
    assert gateway.client.get("/v1/me", headers=gateway.auth(ANALYST)).status_code == 200
    politie_operator = operator_of(gateway, "politie-noord-nederland")
    response = gateway.client.post(f"/v1/tokens/{token_id}/revoke", headers=politie_operator)
    assert response.status_code == 200
    body = assert_problem(
        gateway.client.get("/v1/me", headers=gateway.auth(ANALYST)), 401, "unauthenticated"
    )
    assert body["reason"] == "revoked"


def test_revoked_partner_locks_out_all_its_principals(gateway: Gateway) -> None:
    response = gateway.client.post(
        "/v1/partners/politie-noord-nederland/revoke", headers=gateway.auth(OPERATOR)
    )
    assert response.status_code == 200
    assert response.json()["active"] is False
    for principal in ("politie-noord-nederland.analyst", "politie-noord-nederland.partner-system"):
        assert gateway.client.get("/v1/me", headers=gateway.auth(principal)).status_code == 401


def test_tokens_are_stored_only_as_hashes(gateway: Gateway) -> None:
    with gateway.database.read() as session:
        rows = session.exec(select(ApiToken)).all()
    stored = " ".join(f"{r.id} {r.secret_sha256}" for r in rows)
    for token in gateway.tokens.values():
        secret = token.split("_", 2)[2]
        assert secret not in stored
    assert all(len(r.secret_sha256) == 64 for r in rows)


@pytest.mark.parametrize(
    "principal",
    [
        ANALYST,
        "riec-noord-nederland.privacy-officer",
        "nscr.researcher",
        "riec-noord-nederland.riec-analyst",
    ],
)
def test_partner_registry_is_for_operators_only(gateway: Gateway, principal: str) -> None:
    body = assert_problem(
        gateway.client.get("/v1/partners", headers=gateway.auth(principal)), 403, "forbidden"
    )
    assert body["required_roles"] == ["operator"]


def test_every_v1_route_requires_a_token(gateway: Gateway) -> None:
    for route in gateway.client.app.routes:  # type: ignore[attr-defined]
        path = getattr(route, "path", "")
        if not path.startswith("/v1"):
            continue
        for method in getattr(route, "methods", set()) - {"HEAD", "OPTIONS"}:
            concrete = path.replace("{", "").replace("}", "")
            response = gateway.client.request(method, concrete, json={})
            assert response.status_code == 401, f"{method} {path} answered {response.status_code}"


def test_an_over_long_acting_principal_header_is_a_validation_problem(gateway: Gateway) -> None:
    sent = "p" * 65
    for headers in (gateway.auth(ANALYST), {}):
        response = gateway.client.get("/v1/me", headers=headers | {"Gateway-Principal": sent})
        body = assert_problem(response, 422, "validation-failed")
        assert body["errors"] == [
            {
                "loc": ["header", "gateway-principal"],
                "msg": "String should have at most 64 characters",
                "type": "string_too_long",
            }
        ]
        assert sent not in response.text
    ok = gateway.client.get("/v1/me", headers=gateway.auth(ANALYST) | {"Gateway-Principal": "p"})
    assert ok.status_code == 200


def test_the_document_declares_a_token_exactly_where_one_is_asked_for(gateway: Gateway) -> None:
    """Each operation answering 401 without a token declares the bearer scheme and the
    optional Gateway-Principal header; no other operation does."""
    document = gateway.client.get("/openapi.json").json()
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    checked = 0
    for path, item in document["paths"].items():
        concrete = path.replace("{", "").replace("}", "")
        for method, operation in item.items():
            answered = gateway.client.request(method.upper(), concrete, json={}).status_code
            declared = operation.get("security") == [{"HTTPBearer": []}]
            headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
            assert declared == (answered == 401), f"{method} {path}: {answered}"
            assert declared == ("gateway-principal" in headers), f"{method} {path}"
            if declared:
                assert {"422", "400"} & set(operation["responses"]), f"{method} {path}"
                checked += 1
    assert checked > 50
