"""The lines a partner's Logboek receives, as stored in the outbox and as OpenTelemetry spans.

A line (one processing of one data subject's data, in the fields of the Logboek
Dataverwerkingen) is stored in the outbox as JSON and sent as an OTLP span built with
the SDK's own types, carrying the line's trace id, span id, parent span id, times,
status, resource and attributes unchanged: the partner's Logboek sees the same ids as
the gateway's read API.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags
from sqlmodel import Session

from gateway import __version__
from gateway.clock import as_utc
from gateway.models.audit import AuditEntry

if TYPE_CHECKING:
    from gateway.policy.register_history import RegisterHistory

AttributeValue = str | int | bool
SCOPE = InstrumentationScope("riec-gateway.logboek", __version__)
_STATUS = {"UNSET": StatusCode.UNSET, "OK": StatusCode.OK, "ERROR": StatusCode.ERROR}


class HasAttributes(Protocol):
    """A line's resource (``gateway.audit.ldv.Resource``)."""

    def attributes(self) -> Mapping[str, AttributeValue]:
        """Return the resource attributes (``service.name``, ``service.version``)."""
        ...


class LogLine(Protocol):
    """What the exporter needs of a line (``gateway.audit.ldv.LdvLine`` has these names)."""

    @property
    def trace_id(self) -> str: ...  # 32 hex digits
    @property
    def span_id(self) -> str: ...  # 16 hex digits
    @property
    def parent_span_id(self) -> str | None: ...
    @property
    def name(self) -> str: ...
    @property
    def start_time(self) -> datetime: ...
    @property
    def end_time(self) -> datetime: ...
    @property
    def status_code(self) -> str: ...  # UNSET | OK | ERROR
    @property
    def resource(self) -> HasAttributes: ...

    def otel_attributes(self) -> dict[str, AttributeValue]:
        """Return the line's span attributes (``dpl.core.*`` and the gateway's own)."""
        ...


def _ns(value: datetime) -> int:
    moment = as_utc(value)
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def encode(line: LogLine) -> str:
    """Return the outbox form of ``line``: JSON of everything its span carries."""
    return json.dumps(
        {
            "trace_id": line.trace_id,
            "span_id": line.span_id,
            "parent_span_id": line.parent_span_id,
            "name": line.name,
            "start": _ns(line.start_time),
            "end": _ns(line.end_time),
            "status": line.status_code,
            "resource": dict(line.resource.attributes()),
            "attributes": line.otel_attributes(),
        },
        sort_keys=True,
        separators=(",", ":"),
    )


def span_of(stored: str) -> ReadableSpan:
    """Return the OpenTelemetry span of an outbox line (see ``encode``).

    Raises ValueError (KeyError, json.JSONDecodeError) for a line that is not one.
    """
    doc: dict[str, Any] = json.loads(stored)
    trace_id = int(doc["trace_id"], 16)
    sampled = TraceFlags(TraceFlags.SAMPLED)
    parent = doc.get("parent_span_id")
    return ReadableSpan(
        name=doc["name"],
        context=SpanContext(trace_id, int(doc["span_id"], 16), False, sampled),
        parent=None if not parent else SpanContext(trace_id, int(parent, 16), False, sampled),
        resource=Resource(doc["resource"]),
        attributes=doc["attributes"],
        kind=SpanKind.INTERNAL,
        status=Status(_STATUS[doc["status"]]),
        start_time=int(doc["start"]),
        end_time=int(doc["end"]),
        instrumentation_scope=SCOPE,
    )


def lines_for(
    session: Session, entry: AuditEntry, history: RegisterHistory | None = None
) -> Sequence[LogLine]:
    """Return the Logboek lines of ``entry``: one per person it names (none without any).

    The same lines as the gateway's read API (``gateway.audit.ldv.lines_of_entry``, the
    activity of the register in force when the entry was written), so a partner's Logboek
    sees the same trace, span and activity ids. Pass one ``history`` for a batch of
    entries, so that the activations are read once.
    """
    # imported here: the processing log reaches the sequencer, which imports this module
    from gateway.audit.events import subject_links
    from gateway.audit.ldv import lines_of_entry
    from gateway.audit.processing_log import lookup_for
    from gateway.policy.register_history import RegisterHistory

    document = json.loads(entry.leaf)
    if not document.get("subjects"):
        return []
    links = subject_links(entry.leaf_index, document)
    return lines_of_entry(
        entry,
        [(link["subject_key"], link["id_type"] or "unknown") for link in links],
        persons={link["subject_key"]: link["person"] or link["subject_key"] for link in links},
        activity=lookup_for(history or RegisterHistory(session), entry),
    )
