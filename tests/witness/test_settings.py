"""Witness settings are checked at start-up: well-formed keys, listed once, a reachable quorum."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from gateway.audit.cosignature import CosignerKey
from gateway.config import Settings
from gateway.keys.signing import Ed25519Signer


def witness(name: str) -> str:
    return f"https://{name} {CosignerKey(name, Ed25519Signer.generate().public_key).vkey()}"


def test_witnesses_and_a_quorum_of_them_are_accepted() -> None:
    items = [witness("w1.test/a"), witness("w2.test/b")]
    settings = Settings(witnesses=items, witness_quorum=1)
    assert settings.witnesses == items


def test_witnesses_come_from_a_json_list_in_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    items = [witness("w1.test/a")]
    monkeypatch.setenv("GATEWAY_WITNESSES", json.dumps(items))
    assert Settings().witnesses == items


@pytest.mark.parametrize(
    ("items", "quorum", "reason"),
    [
        (["https://w.test/a not-a-key"], None, "witness"),
        (["ftp://w.test/a " + witness("w.test/a").split(" ")[1]], None, "URL"),
        ([witness("w.test/a")] * 2, None, "listed once"),
        ([witness("w.test/a")], 2, "cannot exceed"),
        ([], 1, "cannot exceed"),
    ],
)
def test_bad_witness_settings_are_refused_with_a_reason(
    items: list[str], quorum: int | None, reason: str
) -> None:
    with pytest.raises(ValidationError, match=reason):
        Settings(witnesses=items, witness_quorum=quorum)
