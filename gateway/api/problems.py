"""The one place where errors become RFC 9457 ``application/problem+json`` responses.

Every problem has a stable ``type`` URN (``urn:riec-gateway:problem:<code>``), the
HTTP status, a title, a detail safe to show, and the request id. Unexpected errors
become a 500 with no stack trace, SQL or data in it (see ``middleware``).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.audit.log import AuditLogCorruptError
from gateway.errors import (
    AuthenticationError,
    ConflictError,
    GatewayError,
    IntegrityCheckFailed,
    InvalidInputError,
    KeyRingError,
    KeyShreddedError,
    NotFoundError,
    PermissionDeniedError,
    SchemaNotCurrentError,
)
from gateway.logging import request_id_var
from gateway.research.errors import ReleaseExpiredError

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:riec-gateway:problem:"

# Domain error class -> HTTP status. Subclasses inherit their nearest ancestor's status.
STATUS_BY_ERROR: dict[type[GatewayError], int] = {
    GatewayError: 400,
    InvalidInputError: 422,
    NotFoundError: 404,
    ConflictError: 409,
    AuthenticationError: 401,
    PermissionDeniedError: 403,
    SchemaNotCurrentError: 503,
    IntegrityCheckFailed: 500,
    KeyRingError: 503,
    KeyShreddedError: 410,
    AuditLogCorruptError: 500,
    ReleaseExpiredError: 410,
}

# Problems that do not come from a domain error.
HTTP_CODES: dict[int, tuple[str, str]] = {
    400: ("bad-request", "Bad request"),
    401: ("unauthenticated", "Authentication required"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    409: ("conflict", "Conflict"),
    410: ("gone", "Gone"),
    413: ("payload-too-large", "Request body too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("validation-failed", "Request validation failed"),
    429: ("too-many-requests", "Too many requests"),
    500: ("internal-error", "Internal server error"),
    503: ("unavailable", "Service unavailable"),
}


def status_for(error: GatewayError) -> int:
    """Return the HTTP status for a domain error (nearest mapped ancestor)."""
    for cls in type(error).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 400


def problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    """Return a problem+json response; extension members must be safe to show."""
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + code,
        "title": title,
        "status": status,
        "detail": detail,
    }
    request_id = request_id_var.get()
    if request_id:
        body["instance"] = f"urn:request:{request_id}"
        body["request_id"] = request_id
    body.update({k: v for k, v in extensions.items() if k not in body})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def http_problem(status: int, detail: str | None = None, **extensions: Any) -> JSONResponse:
    """Return the generic problem for an HTTP status."""
    code, title = HTTP_CODES.get(status, ("http-error", HTTPStatus(status).phrase))
    headers = {"WWW-Authenticate": 'Bearer realm="gateway"'} if status == 401 else None
    return problem(status, code, title, detail or title, headers=headers, **extensions)


def _gateway_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, GatewayError)
    status = status_for(exc)
    headers = None
    if status == 401:
        headers = {"WWW-Authenticate": 'Bearer realm="gateway", error="invalid_token"'}
    return problem(status, exc.code, exc.title, exc.detail, headers=headers, **exc.extensions)


def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Only where and what; never the offending input, which may be personal data.
    errors = [
        {
            "loc": [str(part) for part in err.get("loc", ())],
            "msg": err.get("msg", ""),
            "type": err.get("type", ""),
        }
        for err in exc.errors()
    ]
    return problem(
        422,
        "validation-failed",
        "Request validation failed",
        "the request does not match the expected schema",
        errors=errors,
    )


def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else None
    return http_problem(exc.status_code, detail)


def install(app: FastAPI) -> None:
    """Register the problem handlers on ``app``."""
    app.add_exception_handler(GatewayError, _gateway_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    # Anything else is turned into a 500 problem by RequestContextMiddleware.
