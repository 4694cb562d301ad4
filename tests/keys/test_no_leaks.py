"""Key material never shows: not in ``repr``, not in logs, not in error messages."""

from __future__ import annotations

import base64
import logging

import pytest
from pydantic import SecretStr

from gateway.clock import FixedClock
from gateway.config import DEV_MASTER_KEY, Settings
from gateway.db import Database
from gateway.errors import GatewayError
from gateway.identity.service import CLI_ACTOR
from gateway.keys import KeyRing, MasterSecret
from gateway.keys.ring import INDEX_KEY_ID, SIGNING_KEY_ID, KeyKind
from gateway.logging import JsonFormatter
from tests.keys.conftest import OTHER_MASTER_KEY


def forms(secret: bytes) -> list[str]:
    """The ways a secret could leak into text: hex, base64 (with and without padding), repr."""
    b64 = base64.b64encode(secret).decode()
    return [secret.hex(), secret.hex().upper(), b64, b64.rstrip("="), repr(secret)[2:-1]]


def material(ring: KeyRing) -> list[bytes]:
    """Every unwrapped key the ring holds in memory (reaching into it is the point here)."""
    found = [base64.b64decode(DEV_MASTER_KEY), base64.b64decode(OTHER_MASTER_KEY)]
    for kind, key_id in (
        (KeyKind.CASE, "case-1"),
        (KeyKind.PROJECT, "p1"),
        (KeyKind.INDEX, INDEX_KEY_ID),
        (KeyKind.SIGNING, SIGNING_KEY_ID),
    ):
        found.extend(ring._entry(kind, key_id).material.values())
    return found


def assert_no_material(text: str, secrets: list[bytes]) -> None:
    for secret in secrets:
        for form in forms(secret):
            assert form not in text


def test_no_key_material_in_repr_logs_or_errors(
    settings: Settings, database: Database, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    ring = KeyRing.open(settings, clock=clock)
    ring.create_case_key("case-1")
    blob = ring.seal_field("case-1", "rec-1", "bsn", b"123456782")
    pseudonymiser = ring.pseudonymiser("p1")
    pseudonymiser("bsn", "123456782")
    ring.blind_index("bsn", "123456782")
    signer = ring.signer()
    with database.write() as session:
        ring.rotate_case_key(session, "case-1", actor=CLI_ACTOR)
        ring.rotate_signing_key(session, actor=CLI_ACTOR)
    secrets = material(ring)
    assert len(secrets) >= 8
    with pytest.raises(AssertionError):  # the scan itself finds a leak
        assert_no_material(f"key={base64.b64encode(secrets[-1]).decode()}", secrets)

    texts = [
        repr(ring),
        repr(pseudonymiser),
        repr(signer),
        repr(ring._kek),
        repr(MasterSecret.from_key_text(OTHER_MASTER_KEY)),
        repr(ring._entry(KeyKind.CASE, "case-1")),
        repr(ring.describe()),
        repr(ring.info),
        repr(ring.signing_public_keys()),
    ]
    errors: list[GatewayError] = []
    for attempt in (
        lambda: ring.open_field("case-1", "rec-2", "bsn", blob),
        lambda: KeyRing.open(
            settings.model_copy(update={"master_key": SecretStr(OTHER_MASTER_KEY)})
        ),
        lambda: MasterSecret.from_key_text(OTHER_MASTER_KEY[:-4]),
    ):
        with pytest.raises(GatewayError) as info:
            attempt()
        errors.append(info.value)
    with database.write() as session:
        ring.shred_case(session, "case-1", actor=CLI_ACTOR)
    with pytest.raises(GatewayError) as shredded:
        ring.open_field("case-1", "rec-1", "bsn", blob)
    errors.append(shredded.value)
    texts += [f"{e} {e.extensions}" for e in errors]
    texts += [JsonFormatter().format(record) for record in caplog.records]
    texts.append(caplog.text)
    assert any("key shredded" in t for t in texts)  # the log lines were captured
    for text in texts:
        assert_no_material(text, secrets)
