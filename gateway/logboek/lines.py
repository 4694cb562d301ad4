"""The lines a partner's Logboek receives, as stored in the outbox and as OpenTelemetry spans.

A line (one processing of one data subject's data, in the fields of the Logboek
Dataverwerkingen) is stored in the outbox as JSON and sent as an OTLP span built with
the SDK's own types, carrying the line's trace id, span id, parent span id, times,
status, resource and attributes unchanged: the partner's Logboek sees the same ids as
the gateway's read API.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from gateway import __version__
from gateway.clock import as_utc
from gateway.models.audit import AuditEntry

AttributeValue = str | int | bool
SCOPE = InstrumentationScope("riec-gateway.logboek", __version__)
_STATUS = {"UNSET": StatusCode.UNSET, "OK": StatusCode.OK, "ERROR": StatusCode.ERROR}


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
    def resource(self) -> Mapping[str, AttributeValue]: ...

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
            "resource": dict(line.resource),
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


# --- TEMPORARY ADAPTER (issue 20 part C) ------------------------------------------------
# Until ``gateway.audit.ldv`` exists on this branch, the lines of an entry are built here
# from today's processing-log fields. The merger replaces the body of ``_lines_for`` with
# ``ldv.lines_of_entry(entry, subjects)`` and deletes ``_AdapterLine``; nothing else
# builds lines.

_RESOURCE: dict[str, AttributeValue] = {"service.name": "riec-gateway"}


@dataclass(frozen=True, slots=True)
class _AdapterLine:
    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    start_time: datetime
    end_time: datetime
    status_code: str
    attributes: dict[str, AttributeValue]
    resource: dict[str, AttributeValue] = field(default_factory=lambda: dict(_RESOURCE))

    def otel_attributes(self) -> dict[str, AttributeValue]:
        return dict(self.attributes)


def _lines_for(entry: AuditEntry) -> Sequence[LogLine]:
    """Return the lines of ``entry``: one per data subject it names (none without subjects)."""
    doc = json.loads(entry.leaf)
    subjects: list[str] = doc.get("subjects") or []
    if not subjects:
        return []
    trace = doc.get("trace")
    if not (isinstance(trace, str) and len(trace) == 32):
        trace = hashlib.sha256(f"audit-entry-{entry.leaf_index}".encode()).hexdigest()[:32]
    common: dict[str, AttributeValue] = {
        "dpl.core.processing_activity_id": "urn:riec-gateway:verwerkingsactiviteit:"
        + entry.event_type.replace(":", "-"),
        "gateway.audit_index": entry.leaf_index,
    }
    for key in ("case", "purpose", "legal_basis", "policy_version", "step"):
        if doc.get(key) is not None:
            common[f"gateway.{key}"] = doc[key]
    if entry.actor_partner_id is not None:
        common["gateway.by_partner"] = entry.actor_partner_id
    at = as_utc(entry.occurred_at)
    action_span = f"{entry.leaf_index:016x}"
    return [
        _AdapterLine(
            trace_id=trace,
            span_id=hashlib.sha256(f"{action_span}:{key}".encode()).hexdigest()[:16],
            parent_span_id=action_span,
            name=entry.event_type,
            start_time=at,
            end_time=at,
            status_code="ERROR" if entry.event_type.endswith(":refuse") else "OK",
            attributes={
                **common,
                "dpl.core.data_subject_id": key,
                "dpl.core.data_subject_id_type": "keyed-index",
            },
        )
        for key in subjects
    ]


# --- end of the temporary adapter -------------------------------------------------------
