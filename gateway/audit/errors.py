"""The audit log's errors."""

from __future__ import annotations

from gateway.errors import GatewayError


class AuditLogCorruptError(GatewayError):
    """The stored tree head or nodes are missing or inconsistent; appends stop until repaired."""

    code = "audit-log-corrupt"
    title = "Audit log corrupt"


class QueryMissingError(GatewayError):
    """A read of the processing log named no trace, processing activity or data subject.

    The read extension of the Logboek Dataverwerkingen answers such a question with 400:
    the whole log is never handed out at once.
    """

    code = "processing-log-query-missing"
    title = "Processing log query missing"
