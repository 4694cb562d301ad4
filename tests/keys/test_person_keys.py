"""Person keys: keyed HMACs of person identifiers that survive index key rotation."""

from __future__ import annotations

from gateway.db import Database
from gateway.identity.people import normalise_person, person_key
from gateway.identity.service import CLI_ACTOR
from gateway.keys import KeyRing


def test_a_person_key_is_keyed_stable_across_index_rotation_and_unlike_a_blind_index(
    ring: KeyRing, scratch_db: Database
) -> None:
    value = normalise_person("  J.Jansen@Example.ORG ")
    assert value == "j.jansen@example.org"
    before = ring.person_key(value)
    assert len(before) == 64 and value not in before
    assert before != ring.blind_index("person", value)
    with scratch_db.write() as session:
        staged = ring.rotate_index_key(session, actor=CLI_ACTOR)
        ring.activate_index_key(session, staged, actor=CLI_ACTOR)
    assert ring.blind_index_version() == staged
    assert ring.person_key(value) == before  # four-eyes checks compare keys stored long ago
    assert person_key("j.jansen@example.org", ring.person_key) == before
    assert ring.person_key("p.pietersen@example.org") != before
