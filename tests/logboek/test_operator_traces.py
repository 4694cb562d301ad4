"""Operators' traces of the gateway's own requests: off by default, OTLP by standard variables."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from gateway import telemetry
from gateway.app import create_app
from gateway.clock import FixedClock
from gateway.config import Settings
from gateway.db import Database
from gateway.demo import POLITIE
from gateway.identity.service import CLI_ACTOR
from gateway.logboek import endpoints
from gateway.logboek.exporter import ExportSettings, flush
from tests.conftest import Gateway
from tests.helpers.otlp import Receiver
from tests.logboek.test_export import POLITIE_ID, share_and_read

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    found.start()
    yield found
    found.kill()


def test_tracing_is_off_unless_an_otlp_endpoint_is_set() -> None:
    assert telemetry.tracer_provider({}) is None
    assert telemetry.tracer_provider({"OTEL_EXPORTER_OTLP_HEADERS": "a=b"}) is None
    off = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"}
    assert telemetry.tracer_provider(off) is None


def test_operators_see_each_request_by_route_without_its_ids(
    settings: Settings,
    database: Database,
    clock: FixedClock,
    gateway: Gateway,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"http://127.0.0.1:{receiver.port}/v1/traces"
    )
    app = create_app(settings, clock=clock, db=database)
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get(
            "/v1/cases/case-that-names-someone",
            headers={
                **gateway.auth(POLITIE),
                "traceparent": f"00-{CALLER_TRACE}-00f067aa0ba902b7-01",
            },
        )
        assert answer.status_code in (403, 404)
    spans = receiver.spans[""]
    case_span = next(s for s in spans if s.name == "GET /v1/cases/{case_id}")
    attributes = json.loads(case_span.attributes)
    assert attributes["http.route"] == "/v1/cases/{case_id}"
    assert attributes["http.response.status_code"] == answer.status_code
    assert case_span.trace_id == CALLER_TRACE and case_span.parent_span_id == "00f067aa0ba902b7"
    assert "case-that-names-someone" not in json.dumps([vars(s) for s in spans])


def test_the_operators_otlp_headers_never_reach_a_partners_logboek(
    gateway: Gateway, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer operator-collector-key")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-operator=secret")
    with gateway.database.write() as session:
        endpoints.set_endpoint(
            session,
            gateway.clock,
            CLI_ACTOR,
            POLITIE_ID,
            endpoints.EndpointSpec(receiver.url(POLITIE_ID)),
            allow_http=True,
        )
    share_and_read(gateway, "incident-0006")
    assert flush(gateway.database, gateway.clock, ExportSettings(timeout=2.0)).failed == {}
    assert receiver.spans[POLITIE_ID] and receiver.headers
    for headers in receiver.headers:
        assert "authorization" not in headers and "x-operator" not in headers
