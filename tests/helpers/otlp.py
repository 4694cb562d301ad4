"""A real OTLP/HTTP receiver for tests: decodes each request with ``opentelemetry-proto``.

One traces path per partner (``/<partner>/v1/traces``, or ``/v1/traces`` for one stream);
it can be killed (the port stops listening) and restarted on the same port.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


def _value(any_value: Any) -> object:
    kind = any_value.WhichOneof("value")
    return None if kind is None else getattr(any_value, kind)


@dataclass(frozen=True)
class Received:
    """One span as the Logboek decoded it."""

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    attributes: str  # JSON, to compare whole spans
    start_ns: int = 0
    end_ns: int = 0
    status: int = 0  # OTLP StatusCode: 0 unset, 1 ok, 2 error


@dataclass
class Receiver:
    """An OTLP/HTTP receiver with one traces path per partner; killable and restartable."""

    port: int = 0
    spans: dict[str, list[Received]] = field(default_factory=dict)
    requests: int = 0
    headers: list[dict[str, str]] = field(default_factory=list)
    die_after: int | None = None
    slow: float = 0.0
    _server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = ExportTraceServiceRequest.FromString(body)
                parts = self.path.split("/")
                partner = parts[1] if len(parts) > 3 else ""
                receiver.headers.append({k.lower(): v for k, v in self.headers.items()})
                for resource_spans in request.resource_spans:
                    for scope_spans in resource_spans.scope_spans:
                        for span in scope_spans.spans:
                            attrs = {a.key: _value(a.value) for a in span.attributes}
                            receiver.spans.setdefault(partner, []).append(
                                Received(
                                    span.trace_id.hex(),
                                    span.span_id.hex(),
                                    span.parent_span_id.hex(),
                                    span.name,
                                    json.dumps(attrs, sort_keys=True),
                                    span.start_time_unix_nano,
                                    span.end_time_unix_nano,
                                    span.status.code,
                                )
                            )
                receiver.requests += 1
                if receiver.slow:  # the batch is kept, but the answer comes too late
                    threading.Event().wait(receiver.slow)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
                if receiver.die_after is not None and receiver.requests >= receiver.die_after:
                    threading.Thread(target=receiver.kill).start()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def kill(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def url(self, partner: str) -> str:
        return f"http://127.0.0.1:{self.port}/{partner}/v1/traces"
