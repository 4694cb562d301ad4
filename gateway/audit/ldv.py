"""Processing-log lines in the data model of the Logboek Dataverwerkingen (LDV).

Logius's standard "logboek-dataverwerkingen" describes each processing of personal data
as a line with the fields ``trace_id`` (16 bytes), ``span_id`` (8 bytes), optional
``parent_span_id``, ``name``, ``start_time``/``end_time``, ``status_code`` (UNSET, OK or
ERROR), optional ``foreign_operation`` (the calling action at an external party:
``trace_id``, ``span_id``, ``entity``), optional ``resource`` (the application) and
``attributes`` in the ``dpl.`` namespace: ``dpl.core.processing_activity_id`` (a URI into
the register of processing activities), ``dpl.core.data_subject_id`` (never the
identifier itself: here its keyed index) and ``dpl.core.data_subject_id_type``.

Each audit entry is one action (span id derived from the entry); each data subject it
concerns gets a child span of its own (span id derived from the entry and the person),
one per person: a person named by BSN and by name in one action is one line. An action
the gateway refused is ``ERROR``; one it completed (committed with its audit entry) is
``OK``. The gateway's own context travels as ``nl.riec.gateway.*`` attributes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from gateway import __version__
from gateway.audit.events import AuditEventType, person_of
from gateway.clock import as_utc
from gateway.models.audit import AuditEntry

__all__ = [
    "ForeignOperation",
    "LdvLine",
    "Resource",
    "StatusCode",
    "action_line",
    "lines_of_entry",
]

SERVICE_NAME = "riec-liec-gateway"
PARTNER_URI = "urn:riec-gateway:partner:"
GATEWAY_NS = "nl.riec.gateway."
# The identifier a line names when a person was named by several: the most specific first.
_TYPE_ORDER = ("bsn", "name", "kvk", "iban", "phone", "plate", "address")
REFUSALS = frozenset(
    {
        AuditEventType.ACCESS_REFUSE,
        AuditEventType.REGISTRY_REFUSE,
        AuditEventType.POLICY_PROPOSAL_REFUSE,
        AuditEventType.WORKBENCH_SIGN_IN_REFUSE,
    }
)

ActivityLookup = Callable[[str, str | None, str | None], tuple[str, str, int | None]]
"""(event type, purpose, legal basis) -> (processing activity URI, its name, its version)."""


class StatusCode(StrEnum):
    """The LDV ``status_code``: 0 UNSET, 1 OK, 2 ERROR (OpenTelemetry's span status)."""

    UNSET = "UNSET"
    OK = "OK"
    ERROR = "ERROR"

    @property
    def number(self) -> int:
        """Return the enum's number in the standard (and OTLP): 0, 1 or 2."""
        return ("UNSET", "OK", "ERROR").index(self.value)

    @property
    def read_api(self) -> str:
        """Return the spelling of the read extension's ``status``: Unset, Ok or Error."""
        return self.value.capitalize()


@dataclass(frozen=True, slots=True)
class ForeignOperation:
    """The calling action at an external party: its W3C trace and span id, and who it is."""

    trace_id: str
    span_id: str
    entity: str

    def to_json(self) -> dict[str, str]:
        """Return the message as JSON: ``trace_id``, ``span_id``, ``entity``."""
        return {"trace_id": self.trace_id, "span_id": self.span_id, "entity": self.entity}


@dataclass(frozen=True, slots=True)
class Resource:
    """The application that processed the data (OpenTelemetry resource attributes)."""

    service_name: str = SERVICE_NAME
    service_version: str = __version__

    def attributes(self) -> dict[str, str]:
        """Return the resource attributes with OpenTelemetry's semantic-convention keys."""
        return {"service.name": self.service_name, "service.version": self.service_version}


@dataclass(frozen=True, slots=True)
class LdvLine:
    """One processing in the LDV data model (see the module docstring for each field)."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    start_time: datetime
    end_time: datetime
    status_code: StatusCode
    resource: Resource
    foreign_operation: ForeignOperation | None
    processing_activity_id: str
    processing_activity_name: str
    processing_activity_version: int | None
    data_subject_id: str | None
    data_subject_id_type: str | None
    event_type: str
    audit_index: int
    actor_partner: str | None
    parties: tuple[str, ...]
    case_id: str | None
    step: int | None
    purpose: str | None
    legal_basis: str | None
    policy_version: str | None
    category: str | None

    def otel_attributes(self) -> dict[str, str | int | bool]:
        """Return the line's attributes as one flat OpenTelemetry attribute dict.

        ``dpl.core.*`` keys as the standard names them (the foreign operation under
        ``dpl.core.foreign_operation.*``, ``processor`` as the read extension names the
        external party), the gateway's own under ``nl.riec.gateway.*``; absent values
        are left out (OpenTelemetry attributes have no null).
        """
        values: dict[str, str | int | bool | None] = {
            "dpl.core.processing_activity_id": self.processing_activity_id,
            "dpl.core.data_subject_id": self.data_subject_id,
            "dpl.core.data_subject_id_type": self.data_subject_id_type,
        }
        if self.foreign_operation is not None:
            values["dpl.core.foreign_operation.trace_id"] = self.foreign_operation.trace_id
            values["dpl.core.foreign_operation.span_id"] = self.foreign_operation.span_id
            values["dpl.core.foreign_operation.processor"] = self.foreign_operation.entity
        own: dict[str, str | int | bool | None] = {
            "processing_activity_name": self.processing_activity_name,
            "processing_activity_version": self.processing_activity_version,
            "event_type": self.event_type,
            "audit_index": self.audit_index,
            "actor_partner": self.actor_partner,
            "parties": ",".join(self.parties) or None,
            "case_id": self.case_id,
            "step": self.step,
            "purpose": self.purpose,
            "legal_basis": self.legal_basis,
            "policy_version": self.policy_version,
            "category": self.category,
        }
        values.update({GATEWAY_NS + key: value for key, value in own.items()})
        return {key: value for key, value in values.items() if value is not None}

    def to_json(self) -> dict[str, Any]:
        """Return the line as JSON: the standard's field names, times in RFC 3339 UTC."""
        return {
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "parent_span_id": self.parent_span_id,
            "name": self.name,
            "start_time": _time(self.start_time),
            "end_time": _time(self.end_time),
            "status_code": self.status_code.value,
            "resource": {"attributes": self.resource.attributes()},
            "foreign_operation": None
            if self.foreign_operation is None
            else self.foreign_operation.to_json(),
            "attributes": self.otel_attributes(),
        }


def _time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _span(*parts: object) -> str:
    """Return a deterministic 8-byte span id (hex); never the invalid all-zero id."""
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()
    span = digest[:16]
    return span if span != "0" * 16 else digest[16:32]


def trace_of(doc: Mapping[str, Any], index: int) -> str:
    """Return the entry's W3C trace id; a stable stand-in for entries logged without one."""
    trace = doc.get("trace")
    if isinstance(trace, str) and len(trace) == 32:
        return trace
    return hashlib.sha256(f"audit-entry-{index}".encode()).hexdigest()[:32]


def status_of(event_type: str, refs: Mapping[str, Any]) -> StatusCode:
    """Return ERROR for a refused action (a refusal entry or a denying decision), else OK."""
    if event_type in REFUSALS or refs.get("allowed") is False:
        return StatusCode.ERROR
    return StatusCode.OK


def _default_activity(
    event_type: str, purpose: str | None, legal_basis: str | None
) -> tuple[str, str, int | None]:
    """No register at hand: the per-event ``unregistered-`` activity, with no version."""
    from gateway.audit.processing_log import activity_for  # the register's resolver
    from gateway.policy.register import EMPTY

    return activity_for(EMPTY, event_type, purpose, legal_basis)


def _base(entry: AuditEntry, doc: Mapping[str, Any], activity: ActivityLookup) -> dict[str, Any]:
    refs = doc.get("refs") or {}
    at = as_utc(entry.occurred_at)
    purpose, basis = doc.get("purpose"), doc.get("legal_basis")
    activity_id, activity_name, activity_version = activity(entry.event_type, purpose, basis)
    foreign = doc.get("foreign")
    return {
        "trace_id": trace_of(doc, entry.leaf_index),
        "name": entry.event_type,
        "start_time": at,
        "end_time": at,
        "status_code": status_of(entry.event_type, refs),
        "resource": Resource(),
        "foreign_operation": None
        if not isinstance(foreign, dict)
        else ForeignOperation(
            trace_id=str(foreign["trace"]),
            span_id=str(foreign["span"]),
            entity=PARTNER_URI + (entry.actor_partner_id or "unknown"),
        ),
        "processing_activity_id": activity_id,
        "processing_activity_name": activity_name,
        "processing_activity_version": activity_version,
        "event_type": entry.event_type,
        "audit_index": entry.leaf_index,
        "actor_partner": entry.actor_partner_id,
        "parties": tuple(doc.get("parties") or ()),
        "case_id": entry.case_id,
        "step": doc.get("step"),
        "purpose": purpose,
        "legal_basis": basis,
        "policy_version": doc.get("policy_version"),
        "category": refs.get("category") if isinstance(refs.get("category"), str) else None,
    }


def _action_span(base: Mapping[str, Any], index: int) -> str:
    return _span("ldv-action", base["trace_id"], index)


def action_line(entry: AuditEntry, *, activity: ActivityLookup | None = None) -> LdvLine:
    """Return the line of the action itself (the parent span of its subjects' lines).

    It names no data subject; its parent is the caller's span only through
    ``foreign_operation`` (that span is in another party's log).
    """
    doc = json.loads(entry.leaf)
    base = _base(entry, doc, activity or _default_activity)
    return LdvLine(
        span_id=_action_span(base, entry.leaf_index),
        parent_span_id=None,
        data_subject_id=None,
        data_subject_id_type=None,
        **base,
    )


def lines_of_entry(
    entry: AuditEntry,
    subjects: Sequence[tuple[str, str]],
    *,
    persons: Mapping[str, str] | None = None,
    activity: ActivityLookup | None = None,
) -> list[LdvLine]:
    """Return one line per data subject (person) of ``subjects`` the entry concerns.

    ``subjects`` are (keyed index, identifier type) pairs of the entry; keys of one person
    (by the entry's own grouping, or ``persons``: key -> person key, as ``audit_subjects``
    stores it) make one line, naming the most specific identifier given (BSN before name).
    Each line is a child span of the action's span, its span id derived from the entry
    and the person, so it is the same whichever identifier found it. Without subjects:
    the action's own line (``action_line``) alone.
    """
    if not subjects:
        return [action_line(entry, activity=activity)]
    doc = json.loads(entry.leaf)
    base = _base(entry, doc, activity or _default_activity)
    grouped = person_of(doc)
    by_person: dict[str, list[tuple[str, str]]] = {}
    for key, id_type in subjects:
        person = (persons or {}).get(key) or (grouped[key][0] if key in grouped else key)
        by_person.setdefault(person, []).append((key, id_type))
    parent = _action_span(base, entry.leaf_index)
    lines = []
    for person, given in by_person.items():
        key, id_type = min(
            given,
            key=lambda p: (_TYPE_ORDER.index(p[1]) if p[1] in _TYPE_ORDER else 99, p[0]),
        )
        lines.append(
            LdvLine(
                span_id=_span("ldv-subject", base["trace_id"], entry.leaf_index, person),
                parent_span_id=parent,
                data_subject_id=key,
                data_subject_id_type=id_type,
                **base,
            )
        )
    return lines
