"""``gateway init`` creates the ring; ``gateway keys ...``; a wrong master key: one line, exit 1."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli import run
from gateway.config import DEV_MASTER_KEY
from tests.conftest import POLICIES
from tests.keys.conftest import OTHER_MASTER_KEY


@pytest.fixture
def env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Path:
    for name in list(os.environ):
        if name.startswith("GATEWAY_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("GATEWAY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("GATEWAY_KEYS_DIR", str(tmp_path / "keys"))
    monkeypatch.setenv("GATEWAY_POLICIES_DIR", str(POLICIES))
    assert run(["init", "--no-demo"]) == 0
    out = capsys.readouterr().out
    assert f"key ring created in {tmp_path / 'keys'}" in out
    assert "signing key fingerprint sha256:" in out
    return tmp_path


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_init_creates_a_private_ring_once(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys = env / "keys"
    assert (keys / "keyring.json").stat().st_mode & 0o777 == 0o600
    assert (keys / "system" / "signing.json").stat().st_mode & 0o777 == 0o600
    assert keys.stat().st_mode & 0o777 == 0o700
    ring_file = (keys / "keyring.json").read_bytes()
    assert run(["init", "--no-demo"]) == 0
    assert "key ring opened" in capsys.readouterr().out
    assert (keys / "keyring.json").read_bytes() == ring_file


def test_list_rotate_public(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["keys", "rotate", "--signing"]) == 0
    assert "signing key now at version 2" in capsys.readouterr().out
    assert run(["keys", "public"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines] == ["v1", "v2"]
    assert lines[1].endswith("active") and not lines[0].endswith("active")
    assert run(["keys", "rotate", "--index"]) == 0
    assert "staged blind-index key version 2" in capsys.readouterr().out
    assert run(["keys", "list"]) == 0
    out = capsys.readouterr().out
    assert "verifies only" in out and "staged" in out
    assert "wrapped" not in out
    assert run(["keys", "activate-index", "2"]) == 0
    assert "now use index key version 2" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["keys", "rotate"], "give exactly one of --signing, --case, --index"),
        (["keys", "rotate", "--signing", "--index"], "give exactly one of"),
        (["keys", "rotate", "--case", "case-404"], "no key for case case-404"),
        (["keys", "shred", "--yes"], "give exactly one of --case, --project"),
        (["keys", "shred", "--case", "../x", "--yes"], "case id must be"),
        (["keys", "activate-index", "9"], "the index key has no version 9"),
    ],
)
def test_bad_key_commands_are_one_line(
    env: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert run(argv) == 1
    assert message in one_line_error(capsys)


def test_shred_asks_first_unless_yes(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = "jeugdnetwerken-noord-nederland"  # an agreement of the active version
    monkeypatch.setattr(sys, "stdin", io.StringIO("n\n"))
    assert run(["keys", "shred", "--project", project]) == 1
    assert "aborted" in capsys.readouterr().err
    assert not (env / "keys" / "projects" / f"{project}.json").exists()
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))
    assert run(["keys", "shred", "--project", project]) == 0
    assert f"destroyed the key of research project {project}" in capsys.readouterr().out
    assert run(["keys", "shred", "--project", project, "--yes"]) == 0
    assert "already destroyed" in capsys.readouterr().out
    assert run(["keys", "list"]) == 0
    out = capsys.readouterr().out
    assert project in out and f"research.{project}" in out and "shredded" in out
    assert run(["keys", "rotate", "--case", f"research.{project}"]) == 1
    assert "was destroyed: shredded by operator at" in one_line_error(capsys)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["keys", "shred", "--case", "nosuch", "--yes"], "no such case: nosuch"),
        (["keys", "shred", "--project", "nosuch", "--yes"], "no such research project: nosuch"),
        (["keys", "shred", "--case", "nosuch"], "no such case: nosuch"),  # before asking
    ],
)
def test_shredding_an_unknown_id_is_refused_and_leaves_no_key(
    env: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert run(argv) == 1
    assert one_line_error(capsys) == f"error: {message}"
    assert not list((env / "keys").rglob("nosuch*"))
    assert run(["keys", "list"]) == 0
    assert "nosuch" not in capsys.readouterr().out


def test_rewrap_takes_the_new_key_from_the_environment(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEWAY_NEW_MASTER_KEY", OTHER_MASTER_KEY)
    assert run(["keys", "rewrap"]) == 0
    out = capsys.readouterr().out
    assert "rewrapped 2 key files" in out and OTHER_MASTER_KEY not in out
    monkeypatch.delenv("GATEWAY_NEW_MASTER_KEY")
    for argv in (["keys", "list"], ["partners", "list"], ["init", "--no-demo"]):
        assert run(argv) == 1
        err = one_line_error(capsys)
        assert "the master key does not open the key ring" in err
        assert DEV_MASTER_KEY not in err
    monkeypatch.setenv("GATEWAY_MASTER_KEY", OTHER_MASTER_KEY)
    assert run(["keys", "list"]) == 0
    kek = json.loads((env / "keys" / "keyring.json").read_text())["kek"]
    assert kek["id"] in capsys.readouterr().out


@pytest.mark.filterwarnings("ignore::getpass.GetPassWarning")  # no terminal under pytest
def test_rewrap_prompts_when_no_variable_is_set(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("not a key\nnot a key\n"))
    assert run(["keys", "rewrap"]) == 1
    # getpass warns on stderr that it has no terminal; the error is the last line
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("error: the new master key is not valid base64")


def test_serve_refuses_a_wrong_master_key_with_one_line(env: Path) -> None:
    environment = {**os.environ, "GATEWAY_MASTER_KEY": OTHER_MASTER_KEY}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "gateway"), "serve"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    err = result.stderr.strip()
    assert err.startswith("error: the master key does not open the key ring")
    assert "\n" not in err and OTHER_MASTER_KEY not in err  # the only output: one line
