"""Delivering the outbox to partners' Logboeken over OTLP, and the process's background exporter.

Lines become SDK spans (``ReadableSpan``) and one ``ExportTraceServiceRequest`` per
batch through the OTLP exporters' own encoder; the request goes over OTLP/HTTP
(protobuf) or OTLP/gRPC with exactly the endpoint's own TLS files. The SDK's
``OTLPSpanExporter`` classes are not used for partners on purpose: they merge the
process's ``OTEL_EXPORTER_OTLP_*`` headers and certificates (meant for the operators'
own collector) into every request, which would hand an operator's credentials to every
partner. A batch counts as delivered only when the endpoint answered success with no
rejected spans; anything else leaves the rows queued for a later attempt.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import grpc
import httpx
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from gateway.clock import Clock
from gateway.config import Settings
from gateway.db import Database
from gateway.logboek import outbox
from gateway.logboek.endpoints import LogboekProtocol
from gateway.logboek.lines import span_of
from gateway.models.logboek import LogboekEndpoint

_log = logging.getLogger(__name__)
PROTOBUF = "application/x-protobuf"


class DeliveryFailedError(Exception):
    """A batch was not acknowledged; the message (no personal data) says why."""


@dataclass(frozen=True, slots=True)
class ExportSettings:
    """How the exporter batches, waits and backs off (``GATEWAY_LOGBOEK_*``)."""

    batch: int = 500
    timeout: float = 10.0
    first_delay: timedelta = timedelta(seconds=1)
    max_delay: timedelta = timedelta(minutes=5)

    @property
    def lease(self) -> timedelta:
        """How long a claimed batch is held before another exporter may send it again."""
        return timedelta(seconds=3 * self.timeout + 5)


def export_settings(settings: Settings) -> ExportSettings:
    """Return the exporter's settings from the gateway's."""
    return ExportSettings(
        batch=settings.logboek_batch,
        timeout=settings.logboek_timeout_seconds,
        first_delay=timedelta(seconds=settings.logboek_retry_seconds),
        max_delay=timedelta(seconds=settings.logboek_retry_max_seconds),
    )


def _ssl_context(endpoint: LogboekEndpoint) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=endpoint.ca_file)
    if endpoint.client_cert_file and endpoint.client_key_file:
        context.load_cert_chain(endpoint.client_cert_file, endpoint.client_key_file)
    return context


def _response(data: bytes) -> trace_service_pb2.ExportTraceServiceResponse:
    response = trace_service_pb2.ExportTraceServiceResponse()
    response.ParseFromString(data)
    return response


def _check_partial(response: trace_service_pb2.ExportTraceServiceResponse) -> None:
    rejected = response.partial_success.rejected_spans
    if rejected:
        raise DeliveryFailedError(f"the Logboek rejected {rejected} line(s)")


def send_http(endpoint: LogboekEndpoint, body: bytes, timeout: float) -> None:
    """POST one encoded request to an OTLP/HTTP endpoint; raise DeliveryFailedError unless 2xx."""
    verify: ssl.SSLContext | bool = (
        _ssl_context(endpoint) if endpoint.url.startswith("https:") else False
    )
    try:
        with httpx.Client(verify=verify, timeout=timeout, trust_env=False) as client:
            answer = client.post(endpoint.url, content=body, headers={"Content-Type": PROTOBUF})
    except httpx.HTTPError as exc:
        raise DeliveryFailedError(f"endpoint unreachable ({type(exc).__name__})") from exc
    if not answer.is_success:
        raise DeliveryFailedError(f"endpoint answered HTTP {answer.status_code}")
    if answer.content:
        _check_partial(_response(answer.content))


def send_grpc(endpoint: LogboekEndpoint, request: bytes, timeout: float) -> None:
    """Call TraceService/Export on an OTLP/gRPC endpoint; raise DeliveryFailedError on error."""
    parts = urlsplit(endpoint.url)
    target = f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 4317)}"
    if parts.scheme == "https":
        read = Path.read_bytes
        credentials = grpc.ssl_channel_credentials(
            root_certificates=read(Path(endpoint.ca_file)) if endpoint.ca_file else None,
            private_key=read(Path(endpoint.client_key_file)) if endpoint.client_key_file else None,
            certificate_chain=read(Path(endpoint.client_cert_file))
            if endpoint.client_cert_file
            else None,
        )
        channel = grpc.secure_channel(target, credentials)
    else:
        channel = grpc.insecure_channel(target)
    try:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)  # type: ignore[no-untyped-call]
        message = trace_service_pb2.ExportTraceServiceRequest.FromString(request)
        _check_partial(stub.Export(message, timeout=timeout))
    except grpc.RpcError as exc:
        code = exc.code() if isinstance(exc, grpc.Call) else None
        raise DeliveryFailedError(f"endpoint answered gRPC {code}") from exc
    finally:
        channel.close()


Send = Callable[[LogboekEndpoint, bytes, float], None]
SENDERS: dict[str, Send] = {
    LogboekProtocol.HTTP_PROTOBUF.value: send_http,
    LogboekProtocol.GRPC.value: send_grpc,
}


@dataclass
class FlushResult:
    """What one pass over the outbox did: lines delivered and failures, per partner."""

    delivered: dict[str, int] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


def deliver(batch: outbox.Batch, timeout: float) -> None:
    """Send ``batch`` to its partner's endpoint; raise DeliveryFailedError if not acknowledged."""
    try:
        request = encode_spans([span_of(line) for line in batch.lines])
    except (ValueError, KeyError) as exc:
        raise DeliveryFailedError("a queued line could not be encoded") from exc
    send = SENDERS.get(batch.endpoint.protocol)
    if send is None:
        raise DeliveryFailedError(f"unknown protocol {batch.endpoint.protocol}")
    send(batch.endpoint, request.SerializeToString(), timeout)


def flush_once(db: Database, clock: Clock, settings: ExportSettings) -> FlushResult:
    """Claim one batch per due partner, send each, and record the outcome; return it."""
    result = FlushResult()
    with db.read() as session:
        if not outbox.has_due(session, clock.now()):
            return result
    with db.write() as session:
        batches = outbox.claim(
            session,
            clock.now(),
            lease=settings.lease,
            limit=settings.batch,
            is_postgres=not db.is_sqlite,
        )
    for batch in batches:
        try:
            deliver(batch, settings.timeout)
        except DeliveryFailedError as exc:
            with db.write() as session:
                outbox.postpone(
                    session,
                    batch,
                    clock.now(),
                    str(exc),
                    first_delay=settings.first_delay,
                    max_delay=settings.max_delay,
                )
            result.failed[batch.partner_id] = str(exc)
            _log.warning("Logboek of %s: batch not delivered: %s", batch.partner_id, exc)
            continue
        with db.write() as session:
            outbox.acknowledge(session, batch)
        result.delivered[batch.partner_id] = result.delivered.get(batch.partner_id, 0) + len(
            batch.ids
        )
    return result


def flush(db: Database, clock: Clock, settings: ExportSettings) -> FlushResult:
    """Deliver everything that is due, pass after pass, until a pass delivers nothing."""
    total = FlushResult()
    while True:
        result = flush_once(db, clock, settings)
        for partner, count in result.delivered.items():
            total.delivered[partner] = total.delivered.get(partner, 0) + count
        total.failed.update(result.failed)
        if not result.delivered:
            return total


class LogboekExporter:
    """The serving process's background exporter: a thread flushing the outbox every ``poll``.

    Any number of processes may run one: claims are leases, so each batch is sent by one.
    """

    def __init__(
        self, db: Database, clock: Clock, settings: ExportSettings, *, poll: float = 1.0
    ) -> None:
        self.db, self.clock, self.settings, self.poll = db, clock, settings, poll
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread."""
        self._thread = threading.Thread(target=self._run, name="logboek-exporter", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread after its current batch."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                flush(self.db, self.clock, self.settings)
            except Exception:
                _log.exception("Logboek exporter: pass failed; retrying")
            self._stop.wait(self.poll)
