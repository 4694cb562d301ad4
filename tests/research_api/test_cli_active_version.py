"""Every command decides with the policy version privacy officers approved, not the files.

A proposal that removes the research release rule is approved through the API; from
then on ``gateway extract run`` refuses exactly as the API does, and ``gateway
retention run`` records the new version, although ``GATEWAY_POLICIES_DIR`` still holds
the old rule. On a database without a version, such commands refuse with one line.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import col, select

from gateway import app as gateway_app
from gateway.cli import run
from gateway.clock import Clock, FixedClock
from gateway.config import Settings
from gateway.context import AppContext
from gateway.db import Database
from gateway.demo import RIEC
from gateway.models.audit import AuditEntry
from gateway.models.cases import Case
from gateway.models.policy import PolicyDecisionRecord
from gateway.models.policy_versions import PolicyActive, PolicyVersion
from gateway.models.research import ResearchRelease
from gateway.policy import versions
from tests.helpers.cases import start_case
from tests.research_api.conftest import AGREEMENT, NSCR, Study
from tests.workbench.helpers import OFFICER_A, add_officer

RULES_40 = "rules/40-onderzoek.yaml"


def without_release_rule(study: Study) -> str:
    """Return rules/40 of the test pack without the rule that lets researchers receive."""
    text = (study.gw.settings.policies_dir / RULES_40).read_text(encoding="utf-8")
    start = text.index("  - id: extract-vrijgeven")
    return text[:start].rstrip() + "\n"


def approve_removal(study: Study) -> PolicyVersion:
    """Propose and approve (four eyes) the removal of the release rule; return the version."""
    gw = study.gw
    proposed = gw.client.post(
        "/v1/policies/proposals",
        json={
            "title": "Stop research releases",
            "description": "the study is paused",
            "files": {RULES_40: without_release_rule(study)},
        },
        headers=gw.auth(OFFICER_A),
    )
    assert proposed.status_code == 201, proposed.text
    other = {"Authorization": f"Bearer {add_officer(gw.database, gw.clock)}"}
    approved = gw.client.post(
        f"/v1/policies/proposals/{proposed.json()['id']}/approve",
        json={"note": "ok"},
        headers=other,
    )
    assert approved.status_code == 200, approved.text
    with gw.database.read() as session:
        return versions.active_version(session)


def test_extract_run_refuses_a_release_the_approved_version_no_longer_allows(
    cli_env: Study, synthetic_rows: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    study = cli_env
    study.consent_all()
    study.submit_synthetic(synthetic_rows)
    new = approve_removal(study)
    assert "id: extract-vrijgeven" in (study.gw.settings.policies_dir / RULES_40).read_text(
        encoding="utf-8"
    )  # the files on disk still allow it
    refused = study.release()
    assert refused.status_code == 409, refused.text

    capsys.readouterr()
    assert run(["extract", "run", "--agreement", AGREEMENT, "--declare-use", "non-commercial"]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert errors[-1].startswith("error: no provider of agreement")
    with study.gw.database.read() as session:
        assert session.exec(select(ResearchRelease)).all() == []
        last = session.exec(
            select(PolicyDecisionRecord).order_by(col(PolicyDecisionRecord.id).desc())
        ).first()
    assert last is not None and not last.allowed
    assert last.policy_version == new.policy_version
    assert last.actor_principal_id == "system:cli"


def test_retention_run_records_the_approved_version(
    cli_env: Study, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    study = cli_env
    walk = start_case(study.gw)
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
    new = approve_removal(study)
    later: Clock = FixedClock(study.gw.clock.now() + timedelta(days=400))
    real = gateway_app.build_command_context
    seen: list[AppContext] = []

    def at_a_later_time(settings: Settings, *, db: Database | None = None) -> AppContext:
        ctx = real(settings, clock=later, db=db)
        seen.append(ctx)
        return ctx

    monkeypatch.setattr("gateway.cli.cases.build_command_context", at_a_later_time)
    assert run(["retention", "run"]) == 0
    assert "1 case key(s) destroyed" in capsys.readouterr().out
    assert seen[0].policy.version == new.policy_version
    assert re.fullmatch(r"[0-9a-f]{64}", new.policy_version)
    with study.gw.database.read() as session:
        case = session.get(Case, walk.case_id)
        assert case is not None and case.status == "shredded"
        shred = session.exec(
            select(AuditEntry)
            .where(AuditEntry.event_type == "case:case:shred")
            .order_by(col(AuditEntry.leaf_index).desc())
        ).first()
    assert shred is not None
    assert new.policy_version in shred.leaf


def test_commands_that_decide_refuse_a_database_without_a_policy_version(
    cli_env: Study, capsys: pytest.CaptureFixture[str]
) -> None:
    with cli_env.gw.database.write() as session:
        session.exec(select(PolicyActive)).one()
        session.delete(session.exec(select(PolicyActive)).one())
    for argv in (
        ["extract", "run", "--agreement", AGREEMENT, "--declare-use", "non-commercial"],
        ["extract", "shred", "--agreement", AGREEMENT, "--yes"],
        ["retention", "run"],
        ["partners", "add", "--id", "abc", "--kind", "bank", "--name", "n", "--kvk", "12345678"],
    ):
        capsys.readouterr()
        assert run(argv) == 1, argv
        err = capsys.readouterr().err
        assert err == "error: no policy version is stored yet; run `gateway init` first\n", argv


def test_servers_and_commands_take_the_agreements_of_the_approved_version(
    cli_env: Study, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    study = cli_env
    path = f"agreements/{AGREEMENT}.yaml"
    text = (study.gw.settings.policies_dir / path).read_text(encoding="utf-8")
    old_title = "Fenomeenonderzoek (cyber)criminele jeugdnetwerken Noord-Nederland (vervolgmeting)"
    assert old_title in text
    proposed = study.gw.client.post(
        "/v1/policies/proposals",
        json={
            "title": "Rename the study",
            "description": "new title",
            "files": {path: text.replace(old_title, "Jeugdnetwerken, herzien")},
        },
        headers=study.gw.auth(OFFICER_A),
    )
    assert proposed.status_code == 201, proposed.text
    other = {"Authorization": f"Bearer {add_officer(study.gw.database, study.gw.clock)}"}
    approved = study.gw.client.post(
        f"/v1/policies/proposals/{proposed.json()['id']}/approve", json={}, headers=other
    )
    assert approved.status_code == 200, approved.text
    served = study.ok(NSCR, "GET", f"/v1/research/agreements/{AGREEMENT}")
    assert served["title"] == "Jeugdnetwerken, herzien"
    ctx = gateway_app.build_command_context(study.gw.settings, db=study.gw.database)
    assert ctx.agreements[AGREEMENT].title == "Jeugdnetwerken, herzien"


def test_a_new_server_starts_on_the_active_version_even_when_the_files_are_broken(
    cli_env: Study,
) -> None:
    study = cli_env
    new = approve_removal(study)
    (study.gw.settings.policies_dir / RULES_40).write_text("rules: [broken\n", encoding="utf-8")
    app = gateway_app.create_app(study.gw.settings, db=study.gw.database, run_preflight=False)
    ctx: AppContext = app.state.ctx
    assert ctx.policy.version == new.policy_version
    assert AGREEMENT in ctx.agreements
