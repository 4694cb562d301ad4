"""``gateway policy diff|simulate|versions`` and ``gateway init`` importing the first version,
against the test database (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from gateway.cli import run
from gateway.config import Settings
from tests.conftest import POLICIES, Gateway
from tests.workbench.helpers import (
    BESTUURLIJK_CATEGORIES,
    GEMEENTE_ANALYST,
    RULES_30,
    add_officer,
    record_decisions,
    widened_rules,
)


@pytest.fixture
def env(gateway: Gateway, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Point the CLI at the test gateway's database and key ring."""
    for name in list(os.environ):
        if name.startswith("GATEWAY_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("GATEWAY_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("GATEWAY_KEYS_DIR", str(settings.keys_dir))
    monkeypatch.setenv("GATEWAY_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("GATEWAY_POLICIES_DIR", str(POLICIES))
    return settings


def widened_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "proposed"
    shutil.copytree(POLICIES, folder)
    (folder / RULES_30).write_text(widened_rules(), encoding="utf-8")
    return folder


def test_diff_shows_the_changed_rule_and_the_text(
    env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["policy", "diff"]) == 0
    assert "no differences with the active version" in capsys.readouterr().out
    assert run(["policy", "diff", "--policies", str(widened_folder(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert "0 rule(s) added, 1 changed, 0 removed; 1 file(s) differ" in out
    assert "bestuurlijke-interventie" in out and "when.category" in out
    assert "labour-inspection" in out and RULES_30 in out


def test_diff_and_simulate_refuse_a_pack_that_does_not_compile(
    env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = widened_folder(tmp_path)
    (folder / RULES_30).write_text(
        widened_rules().replace("labour-inspection]", "labour-inspectie]"), encoding="utf-8"
    )
    for command in ("diff", "simulate"):
        assert run(["policy", command, "--policies", str(folder)]) == 1
        err = capsys.readouterr().err
        assert f"{RULES_30}:" in err and "unknown category 'labour-inspectie'" in err


def test_simulate_counts_and_groups_the_flips(
    env: Settings, gateway: Gateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record_decisions(gateway.client, gateway.auth(GEMEENTE_ANALYST), flipping=2)
    folder = widened_folder(tmp_path)
    period = ["--since", "2026-11-23", "--until", "2026-11-23"]
    assert run(["policy", "simulate", "--policies", str(folder), *period]) == 0
    out = capsys.readouterr().out
    assert "5 recorded decision(s)" in out and "2 would flip" in out
    assert "deny->allow: 2" in out
    assert "gemeente-smallingerland" in out and "default-deny -> bestuurlijke-interventie" in out
    assert run(["policy", "simulate", "--policies", str(folder), *period, "--fail-on-flip"]) == 1
    capsys.readouterr()
    earlier = ["--since", "2026-10-01", "--until", "2026-10-31"]
    assert run(["policy", "simulate", "--policies", str(folder), *earlier, "--fail-on-flip"]) == 0
    assert "0 recorded decision(s)" in capsys.readouterr().out
    assert run(["policy", "simulate", "--since", "yesterday"]) == 1
    assert "is not a date" in capsys.readouterr().err


def test_versions_lists_the_imported_version(
    env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["policy", "versions"]) == 0
    out = capsys.readouterr().out
    assert "active" in out and "import" in out


def test_init_imports_once_and_notes_a_changed_folder(
    env: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(["init", "--no-demo"]) == 0
    out = capsys.readouterr().out
    assert "policy version" in out and "active" in out and "(imported)" not in out
    monkeypatch.setenv("GATEWAY_POLICIES_DIR", str(widened_folder(tmp_path)))
    assert BESTUURLIJK_CATEGORIES not in (tmp_path / "proposed" / RULES_30).read_text("utf-8")
    assert run(["init", "--no-demo"]) == 0
    assert "differs from the active version and is not used" in capsys.readouterr().out


def test_init_imports_the_pack_on_disk_into_an_empty_database(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in list(os.environ):
        if name.startswith("GATEWAY_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("GATEWAY_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("GATEWAY_KEYS_DIR", str(settings.keys_dir))
    monkeypatch.setenv("GATEWAY_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("GATEWAY_POLICIES_DIR", str(POLICIES))
    assert run(["policy", "diff"]) == 1
    assert "run `gateway init` first" in capsys.readouterr().err
    assert run(["init", "--no-demo"]) == 0
    assert "active (imported)" in capsys.readouterr().out
    assert run(["policy", "diff"]) == 0
    assert "no differences" in capsys.readouterr().out


def test_propose_a_folder_for_a_riec_officer_to_approve(
    env: Settings, gateway: Gateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = widened_folder(tmp_path)
    vocabulary = folder / "vocabulary.yaml"  # a release may change the vocabulary too
    vocabulary.write_text(vocabulary.read_text("utf-8") + "\n# release 2\n", encoding="utf-8")
    assert run(["policy", "propose", "--policies", str(POLICIES), "--title", "same"]) == 1
    assert "active version already" in capsys.readouterr().err
    assert run(["policy", "propose", "--policies", str(folder), "--title", "Release 2"]) == 0
    out = capsys.readouterr().out
    assert f"({RULES_30}, vocabulary.yaml)" in out
    pid = int(out.split()[1])
    officer_b = {"Authorization": f"Bearer {add_officer(gateway.database, gateway.clock)}"}
    read = gateway.client.get(f"/v1/policies/proposals/{pid}", headers=officer_b).json()
    assert read["proposer_principal_id"] == "system:cli" and read["may_approve"] is True
    approved = gateway.client.post(
        f"/v1/policies/proposals/{pid}/approve", json={}, headers=officer_b
    )
    assert approved.status_code == 200, approved.text
    broken = widened_folder(tmp_path / "again")
    (broken / RULES_30).write_text("rules: [", encoding="utf-8")
    assert run(["policy", "propose", "--policies", str(broken), "--title", "Broken"]) == 1
    assert f"{RULES_30}:" in capsys.readouterr().err
