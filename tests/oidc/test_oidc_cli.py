"""``gateway partners oidc-provider|oidc-person``: the installer registers and links, audited."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import run
from tests.test_cli import env  # noqa: F401  (the CLI's environment fixture)


def test_the_installer_registers_a_provider_and_links_a_person(
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert run(["init"]) == 0
    provider = [
        "partners",
        "oidc-provider",
        "gemeente-smallingerland",
        "--issuer",
        "https://login.smallingerland.example",
        "--client-id",
        "riec-gateway",
        "--acr",
        "urn:gateway:loa:substantial",
    ]
    capsys.readouterr()
    assert run(provider) != 0
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "GATEWAY_OIDC_CLIENT_SECRET" in err
    monkeypatch.setenv("GATEWAY_OIDC_CLIENT_SECRET", "cli-secret-0123456789abcdef")
    assert run(provider) == 0
    out = capsys.readouterr().out
    assert "signs people in through" in out and "cli-secret" not in out
    person = ["partners", "oidc-person", "gemeente-smallingerland.privacy-officer"]
    assert run([*person, "--subject", "gerda"]) == 0
    assert "gerda" not in capsys.readouterr().out
    assert run([*person, "--subject", "gerda"]) != 0
    err = capsys.readouterr().err
    assert "already linked" in err and len(err.strip().splitlines()) == 1
    bad = [*provider[:4], "ftp://x", *provider[5:]]
    assert run(bad) != 0
    assert "https URL" in capsys.readouterr().err
