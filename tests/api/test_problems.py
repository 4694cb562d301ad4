"""Every error class is an RFC 9457 problem with a stable type; nothing leaks."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter
from fastapi.testclient import TestClient

from tests.api.test_auth import OPERATOR, assert_problem
from tests.conftest import Gateway


def test_unknown_route_is_404_problem(gateway: Gateway) -> None:
    assert_problem(gateway.client.get("/v1/nothing-here"), 404, "not-found")


def test_wrong_method_is_405_problem(gateway: Gateway) -> None:
    assert_problem(gateway.client.delete("/healthz"), 405, "method-not-allowed")


def test_schema_violation_is_422_without_echoing_input(gateway: Gateway) -> None:
    secret_looking = "123456782-Jansen"
    response = gateway.client.post(
        "/v1/partners",
        json={"id": secret_looking, "kind": "gemeente", "unexpected": secret_looking},
        headers=gateway.auth(OPERATOR),
    )
    body = assert_problem(response, 422, "validation-failed")
    # an unknown member's name is input too: it is located as "*", never echoed
    assert {(tuple(e["loc"]), e["type"]) for e in body["errors"]} >= {
        (("body", "name"), "missing"),
        (("body", "*"), "extra_forbidden"),
    }
    assert "unexpected" not in response.text
    assert secret_looking not in response.text


def test_malformed_json_is_422_problem(gateway: Gateway) -> None:
    response = gateway.client.post(
        "/v1/partners",
        content=b"{not json",
        headers={**gateway.auth(OPERATOR), "Content-Type": "application/json"},
    )
    assert_problem(response, 422, "validation-failed")


def test_oversized_body_is_413_by_declared_length(gateway: Gateway) -> None:
    limit = gateway.settings.max_body_bytes
    response = gateway.client.post(
        "/v1/partners",
        content=b"x" * (limit + 1),
        headers={**gateway.auth(OPERATOR), "Content-Type": "application/json"},
    )
    body = assert_problem(response, 413, "payload-too-large")
    assert body["limit"] == limit


def test_oversized_streamed_body_is_413(gateway: Gateway) -> None:
    limit = gateway.settings.max_body_bytes

    def chunks() -> Iterator[bytes]:
        for _ in range(limit // 1024 + 2):
            yield b"x" * 1024

    response = gateway.client.post(
        "/v1/partners",
        content=chunks(),
        headers={**gateway.auth(OPERATOR), "Content-Type": "application/json"},
    )
    assert_problem(response, 413, "payload-too-large")


def test_unexpected_error_is_500_without_internals(gateway: Gateway) -> None:
    router = APIRouter()

    @router.get("/boom")
    def boom() -> None:
        raise RuntimeError("SELECT bsn FROM people WHERE bsn='123456782'")

    gateway.client.app.include_router(router)  # type: ignore[attr-defined]
    client = TestClient(gateway.client.app, raise_server_exceptions=False)
    response = client.get("/boom")
    body = assert_problem(response, 500, "internal-error")
    assert "SELECT" not in response.text and "123456782" not in response.text
    assert "Traceback" not in response.text and "RuntimeError" not in response.text
    assert "request id" in body["detail"]


def test_request_id_is_echoed_or_generated(gateway: Gateway) -> None:
    given = gateway.client.get("/healthz", headers={"X-Request-ID": "trace-abcdef12"})
    assert given.headers["x-request-id"] == "trace-abcdef12"
    bogus = gateway.client.get("/healthz", headers={"X-Request-ID": "<script>"})
    assert bogus.headers["x-request-id"] != "<script>"
    assert len(bogus.headers["x-request-id"]) == 32
