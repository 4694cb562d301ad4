"""``gateway partners logboek`` and ``gateway logboek status|flush`` from the command line."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.cli import run
from tests.conftest import POLICIES
from tests.helpers.otlp import Receiver

POLITIE_ID = "politie-noord-nederland"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("GATEWAY_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("GATEWAY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("GATEWAY_KEYS_DIR", str(tmp_path / "keys"))
    monkeypatch.setenv("GATEWAY_POLICIES_DIR", str(POLICIES))
    monkeypatch.setenv("GATEWAY_LOGBOEK_TIMEOUT_SECONDS", "0.5")
    return tmp_path


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    found.start()
    yield found
    found.kill()


def test_an_operator_points_a_partner_at_its_logboek_and_flushes(
    env: Path, receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["init"]) == 0
    url = receiver.url(POLITIE_ID)
    assert run(["partners", "logboek", POLITIE_ID, "--endpoint", url]) == 0
    assert f"lines about {POLITIE_ID} go to {url} (http/protobuf)" in capsys.readouterr().out
    # the partner principal added now is an entry about the police, but names no person:
    # nothing is queued, and flush has nothing to do
    assert run(["logboek", "flush"]) == 0
    assert run(["logboek", "status"]) == 0
    out = capsys.readouterr().out
    assert POLITIE_ID in out and url in out

    receiver.kill()
    assert run(["partners", "logboek", POLITIE_ID, "--remove"]) == 0
    assert run(["partners", "logboek", POLITIE_ID, "--remove"]) == 1
    assert "no Logboek endpoint" in capsys.readouterr().err


def test_logboek_usage_mistakes_are_one_line_and_non_zero(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["init"]) == 0
    capsys.readouterr()
    assert run(["partners", "logboek", POLITIE_ID]) == 1
    assert "exactly one of --endpoint or --remove" in capsys.readouterr().err
    assert run(["partners", "logboek", POLITIE_ID, "--endpoint", "ftp://x.example"]) == 1
    assert capsys.readouterr().err.count("\n") == 1
    assert run(["partners", "logboek", "no-such-partner", "--endpoint", "https://x.example"]) == 1
    assert "no partner" in capsys.readouterr().err
