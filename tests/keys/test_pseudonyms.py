"""Pseudonyms and blind indexes: keyed, per type, per project; checked against a stdlib HKDF."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

import pytest

from gateway.clock import FixedClock
from gateway.config import Settings
from gateway.db import Database
from gateway.errors import InvalidInputError
from gateway.identity.service import CLI_ACTOR
from gateway.keys import KeyRing, Pseudonymiser

TYPES = ["bsn", "kvk", "iban", "phone", "name_birthdate", "sim_iccid"]
VALUES = {
    "bsn": "123456782",
    "kvk": "12345678",
    "iban": "NL91ABNA0417164300",
    "phone": "+31612345678",
    "name_birthdate": "jan jansen|2008-04-01",
    "sim_iccid": "8931000000000000001",
}


def hkdf_sha256(secret: bytes, info: bytes, length: int = 32) -> bytes:
    """RFC 5869 with an empty salt, written independently of the code under test."""
    prk = hmac.new(b"\x00" * 32, secret, hashlib.sha256).digest()
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def expected_pseudonym(secret: bytes, project: str, id_type: str, value: str) -> str:
    info = b"riec-gateway/pseudonym/v1\x00" + project.encode() + b"\x00" + id_type.encode()
    return hmac.new(hkdf_sha256(secret, info), value.encode(), hashlib.sha256).hexdigest()


@pytest.mark.parametrize("id_type", TYPES)
def test_known_answers_against_an_independent_hkdf(id_type: str) -> None:
    secret = bytes(range(32))
    p = Pseudonymiser("youth-networks", 1, secret, lambda: None)
    value = VALUES[id_type]
    assert p(id_type, value) == expected_pseudonym(secret, "youth-networks", id_type, value)


def test_pseudonyms_are_stable_within_a_project_and_differ_across(ring: KeyRing) -> None:
    p1, p1_again, p2 = (
        ring.pseudonymiser("study-a"),
        ring.pseudonymiser("study-a"),
        ring.pseudonymiser("study-b"),
    )
    assert (p1.key_id, p1.key_version) == ("project:study-a", 1)
    for id_type in TYPES:
        value = VALUES[id_type]
        pseudonym = p1(id_type, value)
        assert len(pseudonym) == 64 and int(pseudonym, 16) >= 0
        assert pseudonym == p1(id_type, value) == p1_again(id_type, value)
        assert pseudonym != p2(id_type, value)
        assert pseudonym != hashlib.sha256(value.encode()).hexdigest()
    # the same digits as a KvK number and as a BSN prefix do not collide across types
    assert p1("bsn", "12345678") != p1("kvk", "12345678")
    assert len({p1(t, "12345678") for t in TYPES}) == len(TYPES)


def test_pseudonyms_survive_a_reopen(keys_settings: Settings, ring: KeyRing) -> None:
    before = ring.pseudonymiser("study-a")("bsn", "123456782")
    assert KeyRing.open(keys_settings).pseudonymiser("study-a")("bsn", "123456782") == before


def test_blind_index_is_keyed_typed_and_stable(keys_settings: Settings, ring: KeyRing) -> None:
    index = ring.blind_index("bsn", "123456782")
    assert len(index) == 64
    assert index != hashlib.sha256(b"123456782").hexdigest()
    assert index != hashlib.sha256(b"bsn:123456782").hexdigest()
    assert index == KeyRing.open(keys_settings).blind_index("bsn", "123456782")
    assert index != ring.blind_index("kvk", "123456782")
    assert index != ring.blind_index("bsn", "123456783")
    assert index != ring.pseudonymiser("p")("bsn", "123456782")


@pytest.mark.parametrize("bad", ["", "x" * 65, "bsn\x00kvk", "tab\there"])
def test_odd_identifier_types_are_refused(ring: KeyRing, bad: str) -> None:
    with pytest.raises(InvalidInputError, match="identifier type"):
        ring.blind_index(bad, "1")
    with pytest.raises(InvalidInputError, match="identifier type"):
        ring.pseudonymiser("p")(bad, "1")


def test_index_key_rotation_is_staged_until_activated(
    settings: Settings, database: Database, clock: FixedClock
) -> None:
    ring = KeyRing.open(settings, clock=clock)
    before = ring.blind_index("bsn", "123456782")
    with database.write() as session:
        assert ring.rotate_index_key(session, actor=CLI_ACTOR) == 2
    assert ring.blind_index_version() == 1
    assert ring.blind_index("bsn", "123456782") == before  # nothing changed silently
    staged = ring.blind_index("bsn", "123456782", version=2)
    assert staged != before
    with pytest.raises(InvalidInputError, match="no version 3"):
        ring.blind_index("bsn", "1", version=3)
    with database.write() as session:
        ring.activate_index_key(session, 2, actor=CLI_ACTOR)
    assert ring.blind_index_version() == 2
    assert ring.blind_index("bsn", "123456782") == staged
    assert ring.blind_index("bsn", "123456782", version=1) == before


def best_of(runs: int, loop: Callable[[], None]) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        loop()
        best = min(best, time.perf_counter() - start)
    return best


def test_pseudonymiser_runs_within_3x_of_a_bare_hmac_loop(ring: KeyRing) -> None:
    values = [str(100_000_000 + 7 * i) for i in range(20_000)]
    encoded = [v.encode() for v in values]
    key = bytes(32)
    p = ring.pseudonymiser("bench")

    def bare() -> None:
        for v in encoded:
            hmac.new(key, v, hashlib.sha256).hexdigest()

    def pseudonymise() -> None:
        for v in values:
            p("bsn", v)

    ratio = best_of(5, pseudonymise) / best_of(5, bare)
    assert ratio < 3, f"pseudonymiser is {ratio:.2f}x a bare HMAC loop"
