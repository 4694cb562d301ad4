"""The data model of the Logboek Dataverwerkingen (Logius), as tests check lines against it.

From the standard's "Component: Logboek" interface table: ``trace_id`` (16 bytes),
``span_id`` (8 bytes), ``status_code`` (enum UNSET/OK/ERROR), ``name``, ``start_time``,
``end_time`` (required); ``parent_span_id`` (8 bytes), ``foreign_operation`` (a message of
``trace_id``, ``span_id`` and ``entity``, a URI), ``resource`` (a message of attributes)
(optional); ``attributes``: key-value pairs in the ``dpl.`` namespace, of which
``dpl.core.processing_activity_id`` (a URI), ``dpl.core.data_subject_id`` and
``dpl.core.data_subject_id_type``. Source:
https://github.com/Logius-standaarden/logboek-dataverwerkingen
(sections/03-specificaties/02-component-logboek.md).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import datetime
from typing import Any

from sqlmodel import col, select

from gateway.audit.ldv import action_line, lines_of_entry
from gateway.db import Database
from gateway.models.audit import AuditEntry, AuditSubject

FIELDS = {
    "trace_id",
    "span_id",
    "parent_span_id",
    "name",
    "start_time",
    "end_time",
    "status_code",
    "resource",
    "foreign_operation",
    "attributes",
}
STATUS_CODES = {"UNSET", "OK", "ERROR"}
HEX16 = re.compile(r"^[0-9a-f]{32}$")
HEX8 = re.compile(r"^[0-9a-f]{16}$")
URI = re.compile(r"^[a-z][a-z0-9+.-]*:\S+$")
NAMESPACES = ("dpl.", "nl.riec.gateway.")


def _time(value: Any) -> datetime:
    assert isinstance(value, str) and value.endswith("Z"), value
    return datetime.fromisoformat(value)


def assert_ldv_line(line: dict[str, Any]) -> None:
    """Fail unless ``line`` (``LdvLine.to_json``) has exactly the standard's fields and types."""
    assert set(line) == FIELDS, set(line) ^ FIELDS
    assert HEX16.fullmatch(line["trace_id"]) and line["trace_id"] != "0" * 32
    assert HEX8.fullmatch(line["span_id"]) and line["span_id"] != "0" * 16
    assert line["parent_span_id"] is None or HEX8.fullmatch(line["parent_span_id"])
    assert isinstance(line["name"], str) and line["name"]
    assert line["status_code"] in STATUS_CODES
    assert _time(line["start_time"]) <= _time(line["end_time"])
    resource = line["resource"]["attributes"]
    assert isinstance(resource["service.name"], str) and isinstance(
        resource["service.version"], str
    )
    foreign = line["foreign_operation"]
    if foreign is not None:
        assert set(foreign) == {"trace_id", "span_id", "entity"}
        assert HEX16.fullmatch(foreign["trace_id"]) and HEX8.fullmatch(foreign["span_id"])
        assert URI.fullmatch(foreign["entity"])
    attributes = line["attributes"]
    for key, value in attributes.items():
        assert key.startswith(NAMESPACES), key
        assert isinstance(value, str | int | bool), (key, value)
    assert URI.fullmatch(attributes["dpl.core.processing_activity_id"])
    if "dpl.core.data_subject_id" in attributes:
        # the keyed index, never the identifier; its type beside it
        assert re.fullmatch(r"[0-9a-f]{64}", attributes["dpl.core.data_subject_id"])
        assert isinstance(attributes["dpl.core.data_subject_id_type"], str)
        assert line["parent_span_id"] is not None  # a subject's line is a child span


def every_line(database: Database) -> list[tuple[AuditEntry, list[dict[str, Any]]]]:
    """Return each audit entry with its lines (a line per person it names, or its own)."""
    with database.read() as session:
        entries = session.exec(select(AuditEntry).order_by(col(AuditEntry.leaf_index))).all()
        links = session.exec(select(AuditSubject)).all()
    by_entry: dict[int, list[AuditSubject]] = {}
    for link in links:
        by_entry.setdefault(link.leaf_index, []).append(link)
    found = []
    for entry in entries:
        named = by_entry.get(entry.leaf_index, [])
        lines = lines_of_entry(
            entry,
            [(s.subject_key, s.id_type or "unknown") for s in named],
            persons={s.subject_key: s.person or s.subject_key for s in named},
        )
        found.append((entry, [line.to_json() for line in lines]))
    return found


def assert_one_span_per_person(entry: AuditEntry, lines: list[dict[str, Any]]) -> None:
    """Fail unless the entry's subject lines are distinct child spans of its action's span."""
    doc = json.loads(entry.leaf)
    parent = action_line(entry).span_id
    spans = Counter(line["span_id"] for line in lines)
    assert all(n == 1 for n in spans.values()), spans
    if doc["subjects"] or (doc.get("refs") or {}).get("subjects"):
        assert all(line["parent_span_id"] == parent for line in lines)
        assert parent not in spans
        people = len(doc.get("persons") or ()) or None
        if people is not None:
            assert len(lines) == people, (entry.event_type, len(lines), people)
