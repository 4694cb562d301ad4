"""The baseline of ``bench.http``: the least a correct gateway must do per request.

A FastAPI app, served by the same server (uvicorn) with the same workers and database
as the gateway, whose endpoints each run one transaction that reads the rows the
gateway's request reads (the bearer token with its principal and partner; the case,
its participants and, for a read, its records) and inserts one audit row (a share also
inserts the record), through ``Database.write`` as the gateway writes. Built by ``uvicorn --factory
bench.http_baseline:app`` with ``BENCH_DB_URL``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Body, FastAPI, Header, HTTPException
from sqlalchemy import Connection, text

from gateway.db import Database

_CREATE = {
    "sqlite": (
        "CREATE TABLE IF NOT EXISTS bench_audit (id INTEGER PRIMARY KEY AUTOINCREMENT, "
        "at TEXT NOT NULL, doc TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS bench_records (id TEXT PRIMARY KEY, case_id TEXT NOT NULL, "
        "body TEXT NOT NULL)",
    ),
    "postgresql": (
        "CREATE TABLE IF NOT EXISTS bench_audit (id BIGSERIAL PRIMARY KEY, "
        "at TIMESTAMPTZ NOT NULL, doc TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS bench_records (id TEXT PRIMARY KEY, case_id TEXT NOT NULL, "
        "body TEXT NOT NULL)",
    ),
}
_TOKEN = text(
    "SELECT t.secret_sha256, p.role, p.partner_id, pa.kind FROM api_tokens t "
    "JOIN principals p ON p.id = t.principal_id JOIN partners pa ON pa.id = p.partner_id "
    "WHERE t.id = :id"
)
_CASE = text("SELECT id, step, status, riec_partner_id FROM cases WHERE id = :id")
_PARTICIPANTS = text("SELECT partner_id FROM case_participants WHERE case_id = :id")
_RECORDS = text("SELECT id, category, provider_partner_id FROM records WHERE case_id = :id")
_AUDIT = text("INSERT INTO bench_audit (at, doc) VALUES (:at, :doc)")
_RECORD = text("INSERT INTO bench_records (id, case_id, body) VALUES (:id, :case, :body)")


def _caller(conn: Any, authorization: str | None) -> tuple[str, str]:
    if not authorization or not authorization.startswith("Bearer gw_"):
        raise HTTPException(401)
    token_id, _, secret = authorization.removeprefix("Bearer gw_").partition("_")
    row = conn.execute(_TOKEN, {"id": token_id}).one_or_none()
    digest = hashlib.sha256(secret.encode()).hexdigest()
    if row is None or not hmac.compare_digest(digest, row.secret_sha256):
        raise HTTPException(401)
    return str(row.partner_id), str(row.role)


def _audit(conn: Any, doc: str) -> None:
    conn.execute(_AUDIT, {"at": datetime.now(UTC), "doc": doc})


def app() -> FastAPI:
    """Return the baseline app on ``BENCH_DB_URL`` (creating its two tables)."""
    database = Database(os.environ["BENCH_DB_URL"])
    with database.write() as session:
        for statement in _CREATE[database.engine.dialect.name]:
            session.connection().execute(text(statement))
    api = FastAPI()

    @contextmanager
    def transaction() -> Iterator[Connection]:
        # As the gateway writes: Database.write (on SQLite BEGIN IMMEDIATE behind the
        # process's writer lock and the cross-process writer queue), one connection.
        with database.write() as session:
            yield session.connection()

    def check_case(conn: Any, case_id: str, partner: str) -> None:
        case = conn.execute(_CASE, {"id": case_id}).one_or_none()
        participants = {r.partner_id for r in conn.execute(_PARTICIPANTS, {"id": case_id})}
        if case is None or (partner not in participants and partner != case.riec_partner_id):
            raise HTTPException(403)

    def case_rows(conn: Any, case_id: str, partner: str) -> list[Any]:
        check_case(conn, case_id, partner)
        return list(conn.execute(_RECORDS, {"id": case_id}))

    @api.get("/v1/cases/{case_id}/records")
    def read(case_id: str, authorization: str | None = Header(default=None)) -> dict[str, Any]:
        with transaction() as conn:
            partner, _role = _caller(conn, authorization)
            records = case_rows(conn, case_id, partner)
            _audit(conn, f'{{"type":"case:record:read","case":"{case_id}","by":"{partner}"}}')
        return {"records": [{"id": r.id, "category": r.category} for r in records]}

    @api.post("/v1/cases/{case_id}/records", status_code=201)
    def share(
        case_id: str,
        payload: Annotated[dict[str, Any], Body()],
        authorization: str | None = Header(default=None),
    ) -> dict[str, Any]:
        body = json.dumps(payload)
        record_id = secrets.token_hex(8)
        with transaction() as conn:
            partner, _role = _caller(conn, authorization)
            check_case(conn, case_id, partner)  # a share reads no other records
            conn.execute(_RECORD, {"id": record_id, "case": case_id, "body": body})
            _audit(conn, f'{{"type":"case:record:share","case":"{case_id}","by":"{partner}"}}')
        return {"id": record_id}

    @api.post("/access/v1/evaluation")
    def evaluate(
        payload: Annotated[dict[str, Any], Body()],
        authorization: str | None = Header(default=None),
    ) -> dict[str, Any]:
        if "subject" not in payload:
            raise HTTPException(400)
        with transaction() as conn:
            partner, _role = _caller(conn, authorization)
            _audit(conn, f'{{"type":"policy:decision:record","by":"{partner}"}}')
        return {"decision": True}

    return api
