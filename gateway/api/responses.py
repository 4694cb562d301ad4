"""Ready JSON responses for hot routes.

FastAPI validates a sync route's return value against its ``response_model`` in a worker
thread of its own: a second thread hop per request, to check a value the route has just
built from its own types. The hot routes (record read and share, AuthZEN) return the
value rendered here instead, with ``response_model`` still declared so the OpenAPI
document is unchanged.
"""

from __future__ import annotations

from typing import Any

from fastapi import Response
from pydantic import TypeAdapter

_ADAPTERS: dict[type, TypeAdapter[Any]] = {}


def _adapter(kind: type) -> TypeAdapter[Any]:
    adapter = _ADAPTERS.get(kind)
    if adapter is None:  # built once per type (a race builds it twice, harmlessly)
        adapter = _ADAPTERS[kind] = TypeAdapter(kind)
    return adapter


def ready_json(value: Any, *, status_code: int = 200, exclude_none: bool = False) -> Response:
    """Render ``value`` (a pydantic model or dataclass) as FastAPI would for a route whose
    ``response_model`` is its type."""
    body = _adapter(type(value)).dump_json(value, by_alias=True, exclude_none=exclude_none)
    return Response(body, status_code=status_code, media_type="application/json")
