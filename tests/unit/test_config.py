"""Settings: safe development defaults; production refuses unsafe values with a reason."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.cli.app import settings_error_message
from gateway.config import DEV_MASTER_KEY, DEV_SESSION_SECRET, Settings

GOOD_PRODUCTION = {
    "mode": "production",
    "database_url": "postgresql+psycopg://gateway@db/gateway",
    "master_key": "c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seS0zMi1ieXQ=",
    "session_secret": "x" * 40,
    "operating_partner": "riec-noord-nederland",
}


def refusal(**overrides: object) -> str:
    with pytest.raises(ValidationError) as info:
        Settings(**{**GOOD_PRODUCTION, **overrides})  # type: ignore[arg-type]
    return settings_error_message(info.value)


def test_development_defaults_are_usable(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(__import__("os").environ):
        if name.startswith("GATEWAY_"):
            monkeypatch.delenv(name)
    settings = Settings()
    assert settings.mode == "development"
    assert settings.resolved_database_url.startswith("sqlite:///")
    assert settings.resolved_database_url.endswith("/data/gateway.db")
    assert settings.effective_master_key() is not None
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)


def test_environment_prefix_is_gateway(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_BIND", "0.0.0.0:9000")
    assert Settings().port == 9000


def test_good_production_settings_are_accepted() -> None:
    assert Settings(**GOOD_PRODUCTION).mode == "production"  # type: ignore[arg-type]


def test_production_refuses_development_master_key() -> None:
    assert "GATEWAY_MASTER_KEY is the public development key" in refusal(master_key=DEV_MASTER_KEY)


def test_production_refuses_missing_master_key() -> None:
    assert "set GATEWAY_MASTER_KEY or GATEWAY_MASTER_PASSPHRASE" in refusal(master_key=None)


def test_production_refuses_default_session_secret() -> None:
    assert "GATEWAY_SESSION_SECRET is the public development secret" in refusal(
        session_secret=DEV_SESSION_SECRET
    )


@pytest.mark.parametrize(
    "url", ["sqlite://", "sqlite:///:memory:", "sqlite:///file:x?mode=memory&uri=true"]
)
def test_production_refuses_in_memory_sqlite(url: str) -> None:
    assert "in-memory SQLite" in refusal(database_url=url)


def test_refusal_lists_every_problem_in_one_line() -> None:
    message = refusal(master_key=None, session_secret=DEV_SESSION_SECRET, database_url="sqlite://")
    assert "\n" not in message
    assert message.count(";") >= 2


@pytest.mark.parametrize("bind", ["8080", "localhost", "host:99999", ":80"])
def test_bad_bind_is_refused(bind: str) -> None:
    with pytest.raises(ValidationError) as info:
        Settings(bind=bind)
    assert "GATEWAY_BIND" in settings_error_message(info.value)


def test_secrets_do_not_show_in_repr() -> None:
    settings = Settings(**GOOD_PRODUCTION)  # type: ignore[arg-type]
    assert GOOD_PRODUCTION["master_key"] not in repr(settings)
    assert "x" * 40 not in repr(settings)
