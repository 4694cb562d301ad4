"""The witness's HTTP interface: ``POST /add-checkpoint`` and ``GET /checkpoints/<origin>``.

A small Starlette app, separate from the gateway's: it has no access to the gateway's
database, settings or keys. Refusals are plain text with the status tlog-witness
assigns; a 409 for a wrong old size carries the cosigned size as ``text/x.tlog.size``.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from gateway.audit.witness_client import SIZE_MEDIA_TYPE
from gateway.witness.service import Witness, WitnessRefused

NOTE_MEDIA_TYPE = "text/plain; charset=utf-8"
MAX_BODY = 64 * 1024


def create_witness_app(witness: Witness) -> Starlette:
    """Return the ASGI app serving ``witness``."""

    async def add_checkpoint(request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_BODY:
            return PlainTextResponse("request body too large\n", status_code=413)
        try:
            line = witness.add_checkpoint(body)
        except WitnessRefused as exc:
            if exc.size is not None:
                return Response(f"{exc.size}\n", exc.status, media_type=SIZE_MEDIA_TYPE)
            return PlainTextResponse(exc.reason + "\n", status_code=exc.status)
        return PlainTextResponse(line, media_type=NOTE_MEDIA_TYPE)

    async def latest(request: Request) -> Response:
        note = witness.latest(request.path_params["origin"])
        if note is None:
            return PlainTextResponse("no checkpoint cosigned for this log\n", status_code=404)
        return PlainTextResponse(note, media_type=NOTE_MEDIA_TYPE)

    async def key(_request: Request) -> Response:
        return PlainTextResponse(witness.key.vkey() + "\n", media_type=NOTE_MEDIA_TYPE)

    async def healthz(_request: Request) -> Response:
        return PlainTextResponse("ok\n")

    return Starlette(
        routes=[
            Route("/add-checkpoint", add_checkpoint, methods=["POST"]),
            Route("/checkpoints/{origin:path}", latest, methods=["GET"]),
            Route("/verifier-key", key, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )
