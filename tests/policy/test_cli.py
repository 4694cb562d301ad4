"""``gateway policy lint|test|explain`` and ``gateway init`` refusing a broken pack."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway.cli import run
from tests.conftest import POLICIES
from tests.policy.helpers import copy_pack, line_of


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("GATEWAY_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("GATEWAY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("GATEWAY_KEYS_DIR", str(tmp_path / "keys"))
    monkeypatch.setenv("GATEWAY_POLICIES_DIR", str(POLICIES))
    return tmp_path


def test_lint_and_test_pass_on_the_shipped_pack(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["policy", "lint"]) == 0
    assert "ok:" in capsys.readouterr().out
    assert run(["policy", "test"]) == 0
    out = capsys.readouterr().out
    assert "0 failed" in out and "must-deny" in out


def test_lint_prints_file_and_line(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pack = copy_pack(env)
    rules = pack / "rules" / "20-delen-en-analyseren.yaml"
    rules.write_text(
        rules.read_text(encoding="utf-8").replace("category: om-case", "category: om-zaak", 1),
        encoding="utf-8",
    )
    assert run(["policy", "lint", "--policies", str(pack)]) == 1
    err = capsys.readouterr().err
    assert f"{rules}:{line_of(rules, 'om-zaak')}: unknown category 'om-zaak'" in err
    assert "does not compile (1 problem(s))" in err


def test_test_prints_a_readable_diff_and_fails(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pack = copy_pack(env)
    table = pack / "tests" / "10-voorbeeldcasus.yaml"
    text = table.read_text(encoding="utf-8")
    table.write_text(
        text.replace("    expect: deny\n    rule: fiscaal-alleen-43c", "    expect: allow", 1),
        encoding="utf-8",
    )
    assert run(["policy", "test", "--policies", str(pack)]) == 1
    captured = capsys.readouterr()
    line = line_of(table, "gemeente ziet fiscale gegevens helemaal niet")
    assert f"{table}:{line}: gemeente ziet fiscale gegevens helemaal niet" in captured.out
    assert "expected allow, got deny by rule fiscaal-alleen-43c" in captured.out
    assert "1 failed" in captured.err


def test_explain_names_the_rule_and_the_nearest_misses(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "policy",
        "explain",
        "--action",
        "case:record:read",
        "--partner-kind",
        "gemeente",
        "--role",
        "analyst",
        "--process",
        "casusaanpak",
        "--step",
        "3",
        "--purpose",
        "integrale-aanpak-ondermijning",
        "--category",
        "police-incident",
        "--relation",
        "other",
    ]
    assert run(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("ALLOW by rule gemeente-ziet-samenvatting-strafrechtelijk")
    assert "summary-only" in out and "source: Wpg art. 20" in out
    assert "nearest rules that did not match:" in out
    assert run([*argv[:-1], "nonsense"]) == 1
    assert "relation must be own, other or none" in capsys.readouterr().err


def test_init_refuses_a_pack_that_does_not_compile(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pack = copy_pack(env)
    vocabulary = pack / "vocabulary.yaml"
    vocabulary.write_text(
        vocabulary.read_text(encoding="utf-8").replace(
            "members: [bank, telecom]", "members: [bank, telcom]"
        ),
        encoding="utf-8",
    )
    monkeypatch.setenv("GATEWAY_POLICIES_DIR", str(pack))
    assert run(["init"]) == 1
    err = capsys.readouterr().err
    assert f"{vocabulary}:{line_of(vocabulary, 'telcom')}: group 'private-partners'" in err
    assert "does not compile" in err
    assert not (env / "data" / "gateway.db").exists()
