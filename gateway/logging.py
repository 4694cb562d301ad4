"""Structured JSON logs with the request id; nothing else is added implicitly.

Callers pass only ids, counts and outcomes in ``extra={"fields": {...}}``; tokens,
identifiers and record content never go to a log. ``Authorization`` headers and
query strings are never logged.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
foreign_operation_var: ContextVar[tuple[str, str] | None] = ContextVar(
    "foreign_operation", default=None
)
"""The caller's W3C trace context (trace id, parent span id) from its ``traceparent``."""
_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")


def current_trace_id() -> str | None:
    """Return the W3C trace id (32 lowercase hex digits) of the current request, or None.

    The request id is the trace id when it has that form (the gateway generates such ids
    and adopts the trace id of an incoming ``traceparent``); otherwise it is derived
    from the request id.
    """
    request_id = request_id_var.get()
    if request_id is None:
        return None
    if _TRACE_ID.fullmatch(request_id) and request_id != "0" * 32:
        return request_id
    return hashlib.sha256(request_id.encode()).hexdigest()[:32]


def current_foreign_operation() -> tuple[str, str] | None:
    """Return the caller's (trace id, parent span id) of the current request, or None.

    Set from a valid incoming W3C ``traceparent``; the Logboek Dataverwerkingen keeps it as
    the line's ``foreign_operation``.
    """
    return foreign_operation_var.get()


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the JSON line for ``record``."""
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            doc["request_id"] = request_id
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            doc.update(fields)
        if record.exc_info and record.exc_info[0] is not None:
            # The exception type only: messages and tracebacks can carry SQL parameters.
            doc["error"] = record.exc_info[0].__name__
        return json.dumps(doc, default=str, ensure_ascii=False)


_base_factory = logging.getLogRecordFactory()


def _record_with_request_id(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record = _base_factory(*args, **kwargs)
    record.request_id = request_id_var.get()
    return record


def configure(level: str = "INFO") -> None:
    """Send all logging to stderr as JSON lines at ``level``; silence uvicorn's access log.

    Every record is stamped with the current request id when it is created.
    """
    logging.setLogRecordFactory(_record_with_request_id)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    access = logging.getLogger("uvicorn.access")
    access.handlers[:] = []
    access.propagate = False
    access.disabled = True
