"""The ``gateway`` CLI: init, partners, and one-line errors with a non-zero exit."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import run
from tests.conftest import POLICIES


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(__import__("os").environ):
        if name.startswith("GATEWAY_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("GATEWAY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("GATEWAY_KEYS_DIR", str(tmp_path / "keys"))
    monkeypatch.setenv("GATEWAY_POLICIES_DIR", str(POLICIES))
    return tmp_path


def test_init_creates_database_and_prints_demo_tokens_once(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["init"]) == 0
    first = capsys.readouterr().out
    assert "riec-noord-nederland.operator" in first
    assert first.count("gw_") >= 20
    assert (env / "data" / "gateway.db").exists()
    assert (env / "keys").stat().st_mode & 0o077 == 0
    assert run(["init"]) == 0
    second = capsys.readouterr().out
    assert "gw_" not in second and "already exist" in second


def test_partners_add_list_revoke(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["init", "--no-demo"]) == 0
    assert (
        run(
            [
                "partners",
                "add",
                "--id",
                "gemeente-heerenveen",
                "--kind",
                "gemeente",
                "--name",
                "Gemeente Heerenveen",
                "--oin",
                "00000099000008880000",
            ]
        )
        == 0
    )
    assert (
        run(
            [
                "partners",
                "principal",
                "gemeente-heerenveen",
                "--role",
                "analyst",
                "--label",
                "Analist",
            ]
        )
        == 0
    )
    assert "token (shown once" in capsys.readouterr().out
    assert run(["partners", "list"]) == 0
    assert "gemeente-heerenveen" in capsys.readouterr().out
    assert run(["partners", "revoke", "gemeente-heerenveen"]) == 0
    assert run(["partners", "list"]) == 0
    assert "revoked" in capsys.readouterr().out


def test_the_installer_enrols_people_and_privacy_officers_name_their_person(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["init", "--no-demo"]) == 0
    add = ["partners", "add", "--id", "gemeente-heerenveen", "--kind", "gemeente"]
    assert run([*add, "--name", "Gemeente Heerenveen", "--oin", "00000099000008880000"]) == 0
    principal = ["partners", "principal", "gemeente-heerenveen", "--role", "privacy-officer"]
    capsys.readouterr()
    assert run([*principal, "--label", "FG"]) != 0
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "person" in err and len(err.strip().splitlines()) == 1
    person = "fg@heerenveen.example"
    assert run([*principal, "--label", "FG", "--person", person]) == 0
    out = capsys.readouterr().out
    assert "token (shown once" in out and person not in out
    principal_id = out.split()[1]
    assert run(["partners", "enrol", principal_id]) == 0
    out = capsys.readouterr().out
    assert "enrolment code (shown once" in out and "gwe_" in out
    assert run(["partners", "person", principal_id, "--person", "ander@heerenveen.example"]) != 0
    assert "already names its person" in capsys.readouterr().err
    analyst = ["partners", "principal", "gemeente-heerenveen", "--role", "analyst"]
    assert run([*analyst, "--label", "Analist"]) == 0
    analyst_id = capsys.readouterr().out.split()[1]
    assert run(["partners", "person", analyst_id, "--person", "analist@heerenveen.example"]) == 0
    assert "now names its person" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            [
                "partners",
                "add",
                "--id",
                "x1x",
                "--kind",
                "garage",
                "--name",
                "n",
                "--kvk",
                "12345678",
            ],
            "unknown partner kind;",
        ),
        (
            ["partners", "add", "--id", "abc", "--kind", "bank", "--name", "n", "--kvk", "1"],
            "a KVK number has 8 digits",
        ),
        (
            ["partners", "add", "--id", "abc", "--kind", "bank", "--name", "n"],
            "give exactly one of --oin or --kvk",
        ),
        (["partners", "revoke", "nobody"], "no such partner"),
        (["partners", "token", "nobody.analyst"], "no such principal"),
    ],
)
def test_bad_input_is_one_line_and_non_zero(
    env: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert run(["init", "--no-demo"]) == 0
    capsys.readouterr()
    assert run(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err
    assert "\n" not in err and "Traceback" not in err


def test_commands_refuse_an_uninitialised_database(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["partners", "list"]) == 1
    assert "run `gateway init`" in capsys.readouterr().err


def test_production_refusal_is_one_line(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GATEWAY_MODE", "production")
    assert run(["serve"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: GATEWAY_") or err.startswith("error: refusing production mode")
    assert "\n" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["extract", "verify", "bundle.tar"], "'--public-key' / '--fingerprint'"),
        (["nosuch"], "No such command 'nosuch'"),
        (["extract", "verify", "--bogus", "x"], "No such option: --bogus"),
        (["extract"], "a command is needed"),
    ],
)
def test_usage_mistakes_are_one_line_with_a_pointer_to_help(
    env: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert run(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "--help" in err
    assert "\n" not in err and "Traceback" not in err
