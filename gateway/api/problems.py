"""The one place where errors become RFC 9457 ``application/problem+json`` responses.

Every problem has a stable ``type`` URN (``urn:riec-gateway:problem:<code>``), the
HTTP status, a title, a detail safe to show, and the request id. Unexpected errors
become a 500 with no stack trace, SQL or data in it (see ``middleware``).
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.api.deps import document_authentication
from gateway.audit.errors import AuditLogCorruptError
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
from gateway.identity.errors import ProviderUnavailableError
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
    ProviderUnavailableError: 503,
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


# OpenID AuthZEN's transport table answers a bad request with 400, not 422: on these
# paths a validation failure or an invalid input is a 400 problem (the /v1 API keeps 422).
AUTHZEN_PREFIX = "/access/v1/"


def authzen_status(status: int) -> int:
    """Return the status an AuthZEN path answers for ``status`` (422 becomes 400)."""
    return 400 if status == 422 else status


def _status_at(request: Request, status: int) -> int:
    """Return ``status`` as the request's path answers it (see ``AUTHZEN_PREFIX``)."""
    return authzen_status(status) if request.url.path.startswith(AUTHZEN_PREFIX) else status


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


def _gateway_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, GatewayError)
    status = _status_at(request, status_for(exc))
    headers = None
    if status == 401:
        headers = {"WWW-Authenticate": 'Bearer realm="gateway", error="invalid_token"'}
    return problem(status, exc.code, exc.title, exc.detail, headers=headers, **exc.extensions)


def _known_names(app: FastAPI) -> frozenset[str]:
    """Return every member and parameter name the OpenAPI document declares (lower case)."""
    names: set[str] = {"body", "query", "path", "header", "cookie"}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            properties = node.get("properties")
            if isinstance(properties, dict):
                names.update(str(key).lower() for key in properties)
            if isinstance(node.get("name"), str) and "in" in node:
                names.add(node["name"].lower())
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(app.openapi())
    return frozenset(names)


def _safe_loc(request: Request, loc: Any) -> list[str | int]:
    """Return ``loc`` with every part that is not a declared name replaced by ``*``.

    An unknown member's name and a mapping's key are input: echoing them would let a caller
    put text of its choosing into problem bodies and the pages that show them.
    """
    app = request.app
    names: frozenset[str] | None = getattr(app.state, "problem_known_names", None)
    if names is None:
        names = _known_names(app)
        app.state.problem_known_names = names
    parts: list[str | int] = []
    for part in loc if isinstance(loc, list | tuple) else ():
        if isinstance(part, int) and not isinstance(part, bool):
            parts.append(part)
        else:
            parts.append(str(part) if str(part).lower() in names else "*")
    return parts


def _safe_msg(err: Mapping[str, Any]) -> str:
    """Return pydantic's message unless it quotes the input; then only the error type."""
    msg = str(err.get("msg", ""))
    given = err.get("input")
    if isinstance(given, str) and given and given in msg:
        return str(err.get("type", "invalid"))
    return msg


def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Only where and what (by declared names); never the offending input nor pydantic's
    # ``input``/``ctx``, which may hold personal data or text a caller wants echoed.
    errors = [
        {
            "loc": _safe_loc(request, err.get("loc", ())),
            "msg": _safe_msg(err),
            "type": str(err.get("type", "")),
        }
        for err in exc.errors()
    ]
    return problem(
        _status_at(request, 422),
        "validation-failed",
        "Request validation failed",
        "the request does not match the expected schema",
        errors=errors,
    )


def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else None
    return http_problem(exc.status_code, detail)


# The problem shape as a JSON Schema, for the OpenAPI document.
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An RFC 9457 problem; further members depend on the type.",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "description": f"{TYPE_PREFIX}<code>"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "request_id": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "validation failures: where (declared names; * for others) and what",
            "items": {
                "type": "object",
                "required": ["loc", "msg", "type"],
                "properties": {
                    "loc": {"type": "array", "items": {"type": ["string", "integer"]}},
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
    "additionalProperties": True,
}
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def _problem_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_MEDIA_TYPE: {"schema": _PROBLEM_REF}}}


def document_problems(schema: dict[str, Any]) -> dict[str, Any]:
    """Return the OpenAPI ``schema`` with every error response a problem, changed in place.

    FastAPI documents 422 as its own ``HTTPValidationError``; the gateway answers every
    4xx and 5xx with ``application/problem+json`` instead, so each operation says so.
    """
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    components["Problem"] = PROBLEM_SCHEMA
    for path, item in schema.get("paths", {}).items():
        for operation in item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            if "422" in responses and path.startswith(AUTHZEN_PREFIX):
                del responses["422"]
                responses["400"] = _problem_response("the request does not match its schema")
            elif "422" in responses:
                responses["422"] = _problem_response("the request does not match its schema")
            responses.setdefault("4XX", _problem_response("a problem with the request"))
            responses.setdefault("5XX", _problem_response("the gateway cannot answer now"))
    return schema


def install(app: FastAPI) -> None:
    """Register the problem handlers on ``app`` and document problems in its OpenAPI.

    The document also declares how callers authenticate (``deps.document_authentication``),
    before the problems, so that the validation error of its header is documented as one.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(document_authentication(app, generate()))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_exception_handler(GatewayError, _gateway_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    # Anything else is turned into a 500 problem by RequestContextMiddleware.
