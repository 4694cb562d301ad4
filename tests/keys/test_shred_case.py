"""``gateway keys shred --case``: the case closes, every link to its subjects goes, and a
client is told who shredded it and when; retention's shred says the retention ended."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from fastapi import FastAPI
from sqlmodel import col, select

from gateway.cli import run
from gateway.context import AppContext
from gateway.demo import GEMEENTE, POLITIE, RIEC
from gateway.identity.service import CLI_ACTOR
from gateway.keys import KeyKind
from gateway.models.audit import AuditEntry
from gateway.models.cases import Case, CaseSubject, Record, RecordSubject
from gateway.workflow import retention
from tests.api.test_auth import assert_problem
from tests.conftest import Gateway
from tests.helpers.cases import POLICE_RECORD, go, start_case


@pytest.fixture
def cli(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> Gateway:
    """The CLI pointed at the test gateway's store and key ring."""
    for name in list(os.environ):
        if name.startswith("GATEWAY_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("GATEWAY_DATABASE_URL", gateway.database.url)
    monkeypatch.setenv("GATEWAY_DATA_DIR", str(gateway.settings.data_dir))
    monkeypatch.setenv("GATEWAY_KEYS_DIR", str(gateway.settings.keys_dir))
    monkeypatch.setenv("GATEWAY_POLICIES_DIR", str(gateway.settings.policies_dir))
    return gateway


def ctx_of(gateway: Gateway) -> AppContext:
    app = gateway.client.app
    assert isinstance(app, FastAPI)
    ctx: AppContext = app.state.ctx
    return ctx


def test_shredding_a_case_closes_it_unlinks_its_subjects_and_says_who_and_when(
    cli: Gateway, capsys: pytest.CaptureFixture[str]
) -> None:
    walk = start_case(cli)
    go(walk)
    assert walk.share(POLITIE, POLICE_RECORD).status_code == 201
    with cli.database.read() as session:
        record_ids = session.exec(select(Record.id).where(Record.case_id == walk.case_id)).all()
        assert session.exec(
            select(RecordSubject).where(col(RecordSubject.record_id).in_(record_ids))
        ).all()
        assert session.exec(select(CaseSubject).where(CaseSubject.case_id == walk.case_id)).all()

    assert run(["keys", "shred", "--case", walk.case_id, "--yes"]) == 0
    assert f"destroyed the key of case {walk.case_id}" in capsys.readouterr().out

    with cli.database.read() as session:
        case = session.get(Case, walk.case_id)
        assert case is not None and case.status == "shredded" and case.closed_at is not None
        assert not session.exec(
            select(RecordSubject).where(col(RecordSubject.record_id).in_(record_ids))
        ).all()
        assert not session.exec(
            select(CaseSubject).where(CaseSubject.case_id == walk.case_id)
        ).all()
        events = session.exec(
            select(AuditEntry.event_type, AuditEntry.leaf).order_by(
                col(AuditEntry.leaf_index).desc()
            )
        ).all()[:3]
    assert sorted(e for e, _ in events) == ["case:case:shred", "keys:key:shred", "keys:key:shred"]
    assert all("operator" in leaf for _, leaf in events)
    keys = ctx_of(cli).keys
    assert keys.shredded_error(KeyKind.CASE, walk.case_id) is not None
    assert keys.shredded_error(KeyKind.PROJECT, f"case.{walk.case_id}") is not None

    for who in (POLITIE, GEMEENTE, RIEC):
        body = assert_problem(walk.call(who, "GET", walk.case("/records")), 410, "key-shredded")
        assert "shredded by operator at 2026-" in body["detail"]
        assert "retention" not in body["detail"]
    refused = walk.share(POLITIE, POLICE_RECORD, key="after-the-shred")
    assert refused.status_code == 409, refused.text  # the case is closed

    assert run(["keys", "shred", "--case", walk.case_id, "--yes"]) == 0
    assert "already destroyed" in capsys.readouterr().out


def test_a_case_shredded_by_retention_says_its_retention_ended(gateway: Gateway) -> None:
    walk = start_case(gateway)
    closed = walk.ok(
        RIEC,
        "POST",
        walk.case("/decision"),
        json={
            "decision": "no-go",
            "purpose": "integrale-aanpak-ondermijning",
            "legal_basis": "riec-convenant",
            "motivation": "Geen aanwijzingen.",
        },
    )
    assert closed["status"] == "closed"
    ctx = ctx_of(gateway)
    gateway.clock.advance(timedelta(days=31))
    report = retention.run(ctx, CLI_ACTOR, case_retention_days=30)
    assert report.shredded_cases == [walk.case_id]
    with gateway.database.read() as session:
        assert not session.exec(
            select(CaseSubject).where(CaseSubject.case_id == walk.case_id)
        ).all()
    body = assert_problem(walk.call(RIEC, "GET", walk.case("/records")), 410, "key-shredded")
    assert "end of its retention period" in body["detail"]
    assert "shredded by" not in body["detail"]
