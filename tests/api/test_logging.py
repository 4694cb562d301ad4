"""Logs are JSON lines with the request id, and carry no token or request content."""

from __future__ import annotations

import json
import logging

import pytest

from gateway.logging import JsonFormatter
from tests.api.test_auth import OPERATOR
from tests.conftest import Gateway


def test_access_log_is_json_with_request_id_and_no_secrets(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.access")
    token = gateway.tokens[OPERATOR]
    response = gateway.client.post(
        "/v1/partners",
        json={"id": "x", "kind": "gemeente", "name": "Jan Jansen 123456782"},
        headers={"Authorization": f"Bearer {token}", "X-Request-ID": "req-12345678"},
    )
    assert response.status_code == 422
    records = [r for r in caplog.records if r.name == "gateway.access"]
    assert records
    line = JsonFormatter().format(records[-1])
    doc = json.loads(line)
    assert doc["request_id"] == "req-12345678"
    assert doc["route"] == "/v1/partners"
    assert doc["status"] == 422
    assert doc["principal"] == OPERATOR
    for secret in (token, token.split("_", 2)[2], "Jan Jansen", "123456782"):
        assert secret not in line
