"""The audit log's errors."""

from __future__ import annotations

from gateway.errors import GatewayError


class AuditLogCorruptError(GatewayError):
    """The stored tree head or nodes are missing or inconsistent; appends stop until repaired."""

    code = "audit-log-corrupt"
    title = "Audit log corrupt"
