"""``GET /v1/keys/signing`` for any authenticated caller; readiness; 410 for shredded keys."""

from __future__ import annotations

import base64
import os

from fastapi import FastAPI

from gateway.context import AppContext
from gateway.identity.service import CLI_ACTOR
from gateway.keys import verify
from tests.api.test_auth import ANALYST, OPERATOR, assert_problem
from tests.conftest import Gateway


def ctx_of(gateway: Gateway) -> AppContext:
    app = gateway.client.app
    assert isinstance(app, FastAPI)
    ctx: AppContext = app.state.ctx
    return ctx


def test_signing_public_keys_are_published_to_any_caller(gateway: Gateway) -> None:
    ctx = ctx_of(gateway)
    old_signature = ctx.keys.signer().sign(b"checkpoint")
    with gateway.database.write() as session:
        ctx.keys.rotate_signing_key(session, actor=CLI_ACTOR)
    for principal in (ANALYST, OPERATOR):
        response = gateway.client.get("/v1/keys/signing", headers=gateway.auth(principal))
        assert response.status_code == 200
        keys = response.json()["keys"]
        assert [(k["version"], k["active"], k["algorithm"]) for k in keys] == [
            (1, False, "Ed25519"),
            (2, True, "Ed25519"),
        ]
        assert set(keys[0]) == {
            "version",
            "algorithm",
            "public_key",
            "fingerprint",
            "created_at",
            "active",
        }
    old_public = base64.b64decode(keys[0]["public_key"])
    verify(old_public, b"checkpoint", old_signature)
    assert base64.b64decode(keys[1]["public_key"]) == ctx.keys.signer().public_key
    assert keys[1]["fingerprint"] == ctx.keys.signer().fingerprint


def test_signing_keys_need_a_token(gateway: Gateway) -> None:
    assert_problem(gateway.client.get("/v1/keys/signing"), 401, "unauthenticated")


def test_readiness_checks_the_key_ring(gateway: Gateway) -> None:
    assert gateway.client.get("/readyz").json()["checks"]["keys"] == "ok"
    os.chmod(gateway.settings.keys_dir, 0o750)  # noqa: S103  (the loose mode under test)
    body = assert_problem(gateway.client.get("/readyz"), 503, "unavailable")
    assert "accessible by group or others" in body["checks"]["keys"]


def test_a_shredded_key_is_a_410_problem_that_says_why(gateway: Gateway) -> None:
    ctx = ctx_of(gateway)
    ctx.keys.create_case_key("case-1")
    blob = ctx.keys.seal_field("case-1", "rec-1", "bsn", b"123456782")
    app = gateway.client.app
    assert isinstance(app, FastAPI)

    @app.get("/v1/test-only/read")
    def read() -> dict[str, str]:
        return {"bsn": ctx.keys.open_field("case-1", "rec-1", "bsn", blob).decode()}

    assert gateway.client.get("/v1/test-only/read").json() == {"bsn": "123456782"}
    with gateway.database.write() as session:
        ctx.keys.shred_case(session, "case-1", actor=CLI_ACTOR)
    body = assert_problem(gateway.client.get("/v1/test-only/read"), 410, "key-shredded")
    assert "end of its retention period" in body["detail"]
    assert body["key_kind"] == "case" and body["key_id"] == "case-1"
    assert "123456782" not in str(body)
