"""``gateway extract demo-run`` makes a synthetic release that verify and open accept."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from gateway.cli import run
from gateway.keys.age import recipient_of
from tests.conftest import POLICIES

BUNDLE = "jeugdnetwerken-noord-nederland-20261123T090000Z.tar"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("GATEWAY_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("GATEWAY_POLICIES_DIR", str(POLICIES))
    monkeypatch.setenv("GATEWAY_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


def test_demo_run_verify_and_open(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = env / "demo"
    argv = ["extract", "demo-run", "--out", str(out), "--rows", "12000"]
    assert run([*argv, "--at", "2026-11-23T09:00:00"]) == 0
    printed = capsys.readouterr().out
    assert BUNDLE in printed and "rows released" in printed
    for n in (1, 2, 3):
        assert (out / f"researcher-{n}.key").stat().st_mode & 0o777 == 0o600
    key = out / "gateway-signing-key.pub"
    assert run(["extract", "verify", str(out / BUNDLE), "--public-key", str(key)]) == 0
    opened = out / "opened"
    identity = out / "researcher-3.key"
    argv_open = ["--public-key", str(key), "--identity", str(identity), "--out", str(opened)]
    assert run(["extract", "open", str(out / BUNDLE), *argv_open]) == 0
    assert (opened / "data.csv").read_text().count("\n") > 3000
    capsys.readouterr()

    assert run([*argv, "--at", "2026-11-23T09:00:00"]) == 1
    assert "already holds" in capsys.readouterr().err
    assert run([*argv, "--at", "2028-01-01"]) == 1
    assert "nothing is released on 2028-01-01" in capsys.readouterr().err


def test_researcher_keygen_writes_a_private_identity_and_never_overwrites_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "researcher.key"
    assert run(["researcher", "keygen", "--out", str(key)]) == 0
    printed = capsys.readouterr().out
    assert key.stat().st_mode & 0o777 == 0o600
    recipient = recipient_of(key)
    assert f"Public key: {recipient}" in printed and "AGE-SECRET-KEY" not in printed
    before = key.read_bytes()
    assert run(["researcher", "keygen", "--out", str(key)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and key.read_bytes() == before
    age_keygen = shutil.which("age-keygen")
    if age_keygen is not None:  # the standard tool reads it as its own
        shown = subprocess.run([age_keygen, "-y", str(key)], check=True, capture_output=True)
        assert shown.stdout.decode().strip() == recipient
