"""ASGI middleware: request id, body size limit, access log, metrics, last-resort 500.

Written as plain ASGI so the body limit applies while the body streams in, before any
route reads it.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.api.problems import http_problem
from gateway.logging import foreign_operation_var, request_id_var

logger = logging.getLogger("gateway.access")
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
_TRACEPARENT_RE = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")


class HttpMetrics:
    """Prometheus metrics for HTTP traffic, registered on the app's own registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "gateway_http_requests_total",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "gateway_http_request_duration_seconds",
            "HTTP request duration by route template",
            ["route", "method"],
            registry=registry,
        )


class RequestContextMiddleware:
    """Give each request an id, cap its body, log and measure it, and catch the unexpected."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, metrics: HttpMetrics) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = http_problem(
            413, f"the request body exceeds {self.max_body_bytes} bytes", limit=self.max_body_bytes
        )
        await response(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one HTTP request; other scopes pass straight through."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        parent = _TRACEPARENT_RE.fullmatch(headers.get(b"traceparent", b"").decode("latin-1"))
        if _REQUEST_ID_RE.fullmatch(given):
            request_id = given
        elif parent is not None and parent.group(1) != "0" * 32:
            request_id = parent.group(1)  # join the caller's W3C trace
        else:
            request_id = uuid.uuid4().hex
        request_id_var.set(request_id)
        # The caller's span, kept as the LDV foreign operation of what this request logs.
        # W3C: an all-zero trace or parent id is invalid; such a header names no caller.
        caller: tuple[str, str] | None = None
        if parent is not None and parent.group(1) != "0" * 32 and parent.group(2) != "0" * 16:
            caller = (parent.group(1), parent.group(2))
        foreign_operation_var.set(caller)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status_holder: dict[str, Any] = {"status": 500, "started": False}
        overflow = False
        replaced = False

        async def send_wrapper(message: Message) -> None:
            nonlocal replaced
            if overflow:
                # The body was cut off at the limit: whatever the app answers to the
                # truncated body is replaced by one 413 problem.
                if not replaced:
                    replaced = True
                    await self._too_large(scope, receive, send_with_headers)
                return
            await send_with_headers(message)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                status_holder["started"] = True
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                    (b"cache-control", b"no-store"),
                    (b"x-content-type-options", b"nosniff"),
                ]
            await send(message)

        declared = headers.get(b"content-length")
        received = 0

        async def receive_wrapper() -> Message:
            nonlocal received, overflow
            if overflow:
                return {"type": "http.request", "body": b"", "more_body": False}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    overflow = True
                    return {"type": "http.request", "body": b"", "more_body": False}
            return message

        query = scope.get("query_string", b"").lower()
        # No identifier or filter holds NUL, and PostgreSQL text cannot store one.
        nul = "\x00" in scope.get("path", "") or b"%00" in query or b"\x00" in query
        try:
            if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
                await self._too_large(scope, receive, send_with_headers)
            elif nul:
                response = http_problem(400, "the URL must not contain NUL characters")
                await response(scope, receive, send_with_headers)
            else:
                await self.app(scope, receive_wrapper, send_wrapper)
        except Exception as exc:
            logger.error("unhandled error", exc_info=exc)
            if status_holder["started"]:
                raise
            response = http_problem(
                500, "an unexpected error occurred; quote the request id when reporting it"
            )
            await response(scope, receive, send_with_headers)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            status = status_holder["status"]
            self.metrics.requests.labels(template, method, str(status)).inc()
            self.metrics.duration.labels(template, method).observe(elapsed)
            principal = scope.get("state", {}).get("principal_id")
            logger.info(
                "request",
                extra={
                    "fields": {
                        "request_id": request_id,
                        "method": method,
                        "route": template,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                        "principal": principal,
                    }
                },
            )
