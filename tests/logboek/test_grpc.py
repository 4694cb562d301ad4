"""A Logboek that speaks OTLP/gRPC receives its lines, decoded with ``opentelemetry-proto``."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from gateway.identity.service import CLI_ACTOR
from gateway.logboek import endpoints
from gateway.logboek.endpoints import LogboekProtocol
from gateway.logboek.exporter import ExportSettings, flush
from tests.conftest import Gateway
from tests.logboek.test_export import GEMEENTE_ID, expected, share_and_read, waiting


class Service(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.spans: list[tuple[str, str]] = []

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                self.spans.extend((s.trace_id.hex(), s.span_id.hex()) for s in scope_spans.spans)
        return trace_service_pb2.ExportTraceServiceResponse()


@pytest.fixture
def grpc_logboek() -> Iterator[tuple[Service, int]]:
    service = Service()
    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(service, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield service, port
    server.stop(None)


def test_a_grpc_logboek_gets_every_line_once(
    gateway: Gateway, grpc_logboek: tuple[Service, int]
) -> None:
    service, port = grpc_logboek
    with gateway.database.write() as session:
        endpoints.set_endpoint(
            session,
            gateway.clock,
            CLI_ACTOR,
            GEMEENTE_ID,
            endpoints.EndpointSpec(f"http://127.0.0.1:{port}", LogboekProtocol.GRPC),
            allow_http=True,
        )
    share_and_read(gateway, "incident-0009")
    assert flush(gateway.database, gateway.clock, ExportSettings(timeout=2.0)).failed == {}
    assert waiting(gateway) == 0
    assert sorted(service.spans) == sorted(expected(gateway, GEMEENTE_ID).elements())
