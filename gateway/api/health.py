"""Liveness, readiness and Prometheus metrics; no authentication, no personal data."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.api.deps import Ctx
from gateway.api.problems import http_problem

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> dict[str, str]:
    """Return ok while the process is running."""
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: database, schema, keys and policy are usable")
def readyz(ctx: Ctx) -> JSONResponse:
    """Run every readiness check; 200 with their results, or a 503 problem naming failures."""
    results: dict[str, str] = {}
    for name, check in ctx.readiness.items():
        try:
            reason = check()
        except Exception as exc:  # a check that crashes means not ready; say which
            reason = f"check failed ({type(exc).__name__})"
        results[name] = "ok" if reason is None else reason
    if any(value != "ok" for value in results.values()):
        return http_problem(503, "the gateway is not ready", checks=results)
    return JSONResponse({"status": "ready", "checks": results})


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(ctx: Ctx) -> Response:
    """Return the metrics in the Prometheus text format."""
    return Response(generate_latest(ctx.registry), media_type=CONTENT_TYPE_LATEST)
