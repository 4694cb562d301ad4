"""The audit API: who sees which entries, and proofs that agree with offline verification."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from enum import StrEnum
from typing import Any, cast

import pytest
from fastapi import FastAPI

from gateway.audit import log, sequencer
from gateway.audit.bundle import verify_tlog_proof
from gateway.audit.events import AuditEvent, AuditEventType, canonical_json
from gateway.audit.merkle import leaf_hash, verify_consistency, verify_inclusion
from gateway.audit.note import NoteVerifier, verify_checkpoint
from gateway.context import AppContext
from gateway.keys.signing import Ed25519Signer
from gateway.models.cases import Case, CaseStatus
from tests.audit.test_note import independent_checkpoint_check
from tests.conftest import Gateway

PROBLEM = "application/problem+json"


class CaseEvent(StrEnum):
    """Event types of the case workflow (not built yet), for visibility tests."""

    SHARE = "case:record:share"
    READ = "case:record:read"
    ROTATE = "keys:signing:rotate"


@pytest.fixture
def audited(gateway: Gateway, signer: Ed25519Signer) -> Gateway:
    """The test gateway with a signing key and four events besides the demo set-up.

    Case c1 is run by riec-noord-nederland, case c2 by riec-oost-nederland.
    """
    assert ctx(gateway).signer.public_key == signer.public_key
    with gateway.database.write() as session:
        for case_id, riec in (("c1", "riec-noord-nederland"), ("c2", "riec-oost-nederland")):
            session.add(
                Case(
                    id=case_id,
                    process="casusaanpak",
                    step=3,
                    status=CaseStatus.OPEN,
                    riec_partner_id=riec,
                    created_by=f"{riec}.riec-analyst",
                    created_at=gateway.clock.now(),
                )
            )
    events = [
        ("A", CaseEvent.SHARE, "politie-noord-nederland", ("gemeente-smallingerland",), "c1"),
        ("B", CaseEvent.READ, "gemeente-smallingerland", (), "c1"),
        ("C", CaseEvent.SHARE, "belastingdienst", ("riec-noord-nederland",), "c2"),
        ("D", CaseEvent.ROTATE, "riec-noord-nederland", (), None),
    ]
    for label, kind, actor, parties, case in events:
        gateway.clock.advance(timedelta(hours=1))
        with gateway.database.write() as session:
            log.append(
                session,
                AuditEvent(
                    type=cast(AuditEventType, kind),
                    at=gateway.clock.now(),
                    actor_principal=f"{actor}.partner-system",
                    actor_partner=actor,
                    case_id=case,
                    parties=parties,
                    refs={"label": label},
                    details={"bsn": "123456782"},
                ),
            )
    return gateway


def ctx(gateway: Gateway) -> AppContext:
    app = cast(FastAPI, gateway.client.app)
    context: AppContext = app.state.ctx
    return context


def visible(gateway: Gateway, principal: str, query: str = "") -> list[dict[str, Any]]:
    response = gateway.client.get(
        f"/v1/audit/entries?limit=500{query}", headers=gateway.auth(principal)
    )
    assert response.status_code == 200, response.text
    assert "123456782" not in response.text  # details never leave the store this way
    leaves: list[dict[str, Any]] = [e["leaf"] for e in response.json()["entries"]]
    assert all("details" not in leaf for leaf in leaves)
    return leaves


def labels(gateway: Gateway, principal: str, query: str = "") -> list[str]:
    """The labels of this test's own events (A-D) that ``principal`` sees, in log order."""
    return [
        leaf["refs"]["label"]
        for leaf in visible(gateway, principal, query)
        if "label" in leaf["refs"]
    ]


VISIBLE = {
    "riec-noord-nederland.riec-analyst": ["A", "B", "C", "D"],
    "riec-noord-nederland.privacy-officer": ["A", "B", "C", "D"],
    "gemeente-smallingerland.privacy-officer": ["A", "B"],
    "gemeente-smallingerland.analyst": ["A", "B"],
    "gemeente-smallingerland.partner-system": ["A", "B"],
    "politie-noord-nederland.analyst": ["A"],
    "belastingdienst.partner-system": ["C"],
    "gemeente-leeuwarden.privacy-officer": [],
    "nscr.researcher": [],
    "riec-noord-nederland.operator": ["D"],
    # another RIEC: the case it runs (c2) and the gateway's key event (D), nothing of c1
    "riec-oost-nederland.riec-analyst": ["C", "D"],
    "riec-oost-nederland.privacy-officer": ["C", "D"],
    "riec-oost-nederland.partner-system": [],
}
SEE_ADMIN = {
    "riec-noord-nederland.riec-analyst",
    "riec-noord-nederland.privacy-officer",
    "riec-noord-nederland.operator",
    "riec-oost-nederland.riec-analyst",
    "riec-oost-nederland.privacy-officer",
}


def test_each_role_sees_only_its_entries(audited: Gateway) -> None:
    for principal, expected in VISIBLE.items():
        assert labels(audited, principal) == expected, principal
        admin = [
            leaf["type"]
            for leaf in visible(audited, principal)
            if leaf["type"].startswith(("admin:", "keys:")) and "label" not in leaf["refs"]
        ]
        if principal in SEE_ADMIN:
            assert len(admin) > 40, principal  # the demo partners, principals and tokens
        else:
            assert admin == [], principal
    operator = visible(audited, "riec-noord-nederland.operator")
    assert all(leaf["type"].startswith(("admin:", "keys:")) for leaf in operator)


def test_filters_and_pagination(audited: Gateway) -> None:
    analyst = "riec-noord-nederland.riec-analyst"
    assert labels(audited, analyst, "&case=c1") == ["A", "B"]
    assert labels(audited, analyst, "&partner=gemeente-smallingerland") == ["A", "B"]
    assert labels(audited, analyst, "&partner=riec-noord-nederland") == ["C", "D"]
    start = audited.clock.now() - timedelta(hours=2, minutes=30)
    window = f"&since={start.isoformat()}&until={(start + timedelta(hours=2)).isoformat()}"
    assert labels(audited, analyst, window.replace("+", "%2B")) == ["B", "C"]
    assert labels(audited, "gemeente-smallingerland.analyst", "&case=c2") == []

    collected: list[int] = []
    after = -1
    while True:
        page = audited.client.get(
            f"/v1/audit/entries?limit=7&after={after}", headers=audited.auth(analyst)
        ).json()
        collected += [e["index"] for e in page["entries"]]
        if page["next_after"] is None:
            break
        after = page["next_after"]
    with audited.database.read() as session:
        size = log.read_head(session).size
    assert collected == list(range(size))


def test_entries_are_canonical_leaves_with_their_hash(audited: Gateway) -> None:
    body = audited.client.get(
        "/v1/audit/entries?case=c1", headers=audited.auth("gemeente-smallingerland.analyst")
    ).json()
    for entry in body["entries"]:
        leaf = canonical_json(entry["leaf"])
        assert base64.b64decode(entry["leaf_hash"]) == leaf_hash(leaf)
        assert entry["leaf"]["index"] == entry["index"]
        assert entry["leaf"]["details_sha256"] is not None  # a commitment, not the details


def test_inclusion_proofs_agree_with_offline_verification(audited: Gateway) -> None:
    officer = audited.auth("gemeente-smallingerland.privacy-officer")
    keys = audited.client.get("/v1/audit/verifier-keys", headers=officer)
    assert keys.status_code == 200 and keys.headers["content-type"].startswith("text/plain")
    verifier = NoteVerifier.from_vkey(keys.text.splitlines()[0])
    origin = audited.settings.log_origin
    for entry in audited.client.get("/v1/audit/entries", headers=officer).json()["entries"]:
        response = audited.client.get(
            f"/v1/audit/proofs/inclusion?index={entry['index']}", headers=officer
        )
        assert response.status_code == 200, response.text
        proof = response.json()
        _origin, size, root = independent_checkpoint_check(
            proof["checkpoint"], origin, verifier.public_key
        )
        assert (size, base64.b64encode(root).decode()) == (proof["tree_size"], proof["root_hash"])
        leaf = leaf_hash(canonical_json(entry["leaf"]))
        verify_inclusion(
            entry["index"], size, leaf, [base64.b64decode(h) for h in proof["hashes"]], root
        )
        verified = verify_tlog_proof(
            proof["tlog_proof"], [verifier], leaf_hash_value=leaf, origin=origin
        )
        assert verified.index == entry["index"] and verified.checkpoint.size == size


def test_inclusion_proofs_of_entries_you_may_not_see_are_not_found(audited: Gateway) -> None:
    with audited.database.read() as session:
        size = log.read_head(session).size
    response = audited.client.get(
        f"/v1/audit/proofs/inclusion?index={size - 2}",  # C: belastingdienst and the RIEC
        headers=audited.auth("gemeente-smallingerland.privacy-officer"),
    )
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"] == "urn:riec-gateway:problem:not-found"


def test_checkpoints_and_consistency_proofs(audited: Gateway, signer: Ed25519Signer) -> None:
    auth = audited.auth("nscr.researcher")
    origin = audited.settings.log_origin
    verifiers = [NoteVerifier(origin, signer.public_key)]
    first = audited.client.get("/v1/audit/checkpoint", headers=auth)
    assert first.status_code == 200 and first.headers["content-type"].startswith("text/plain")
    old = verify_checkpoint(first.text, verifiers, origin)
    assert audited.client.get("/v1/audit/checkpoint", headers=auth).text == first.text
    with audited.database.write() as session:
        log.append(session, AuditEvent(type=AuditEventType.TOKEN_REVOKE, at=audited.clock.now()))
    new = verify_checkpoint(
        audited.client.get("/v1/audit/checkpoint", headers=auth).text, verifiers, origin
    )
    assert new.size == old.size + 1
    response = audited.client.get(
        f"/v1/audit/proofs/consistency?first={old.size}&second={new.size}", headers=auth
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert base64.b64decode(body["first_root"]) == old.root
    verify_consistency(
        old.size, new.size, old.root, new.root, [base64.b64decode(h) for h in body["hashes"]]
    )
    assert (
        audited.client.get(f"/v1/audit/proofs/consistency?first={old.size}", headers=auth).json()[
            "second"
        ]
        == new.size
    )


BAD_REQUESTS = [
    ("/v1/audit/proofs/consistency?first=0", 422, "validation-failed"),
    ("/v1/audit/proofs/consistency?first=3&second=2", 422, "invalid-input"),
    ("/v1/audit/proofs/consistency?first=1&second=100000", 422, "invalid-input"),
    ("/v1/audit/proofs/inclusion?index=100000", 404, "not-found"),
    ("/v1/audit/proofs/inclusion?index=1&size=1", 404, "not-found"),
    ("/v1/audit/proofs/inclusion?index=1&size=100000", 422, "invalid-input"),
    ("/v1/audit/entries?limit=0", 422, "validation-failed"),
    (
        "/v1/audit/entries?since=2026-12-01T00:00:00Z&until=2026-11-01T00:00:00Z",
        422,
        "invalid-input",
    ),
]


def test_bad_requests_are_problems(audited: Gateway) -> None:
    for url, status, code in BAD_REQUESTS:
        response = audited.client.get(
            url, headers=audited.auth("riec-noord-nederland.riec-analyst")
        )
        assert response.status_code == status, (url, response.text)
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["type"] == f"urn:riec-gateway:problem:{code}", url


def test_the_openapi_document_lists_the_audit_routes(gateway: Gateway) -> None:
    paths = json.loads(gateway.client.get("/openapi.json").text)["paths"]
    for path in ("checkpoint", "entries", "proofs/inclusion", "proofs/consistency"):
        assert f"/v1/audit/{path}" in paths


def test_asking_for_proofs_at_many_past_sizes_signs_no_new_checkpoints(
    audited: Gateway, signer: Ed25519Signer
) -> None:
    from sqlmodel import func, select

    from gateway.models.audit import AuditCheckpoint

    auth = audited.auth("nscr.researcher")
    origin = audited.settings.log_origin
    verifiers = [NoteVerifier(origin, signer.public_key)]
    newest = verify_checkpoint(
        audited.client.get("/v1/audit/checkpoint", headers=auth).text, verifiers, origin
    )
    officer = audited.auth("riec-noord-nederland.privacy-officer")
    index = 0  # the first entry: in every tree

    def rows() -> int:
        with audited.database.read() as session:
            return session.exec(select(func.count()).select_from(AuditCheckpoint)).one()

    before = rows()
    for size in range(1, newest.size + 1):
        response = audited.client.get(
            f"/v1/audit/proofs/inclusion?index={index}&size={size}", headers=officer
        )
        assert response.status_code == 200, response.text
        proof = response.json()
        signed = verify_checkpoint(proof["checkpoint"], verifiers, origin)
        assert signed.size == newest.size == proof["tree_size"]
        verified = verify_tlog_proof(proof["tlog_proof"], verifiers, origin=origin)
        assert verified.index == index
        # the tree the caller asked about is a prefix of the signed one
        with audited.database.read() as session:
            asked_root = log.root_at(session, size)
        verify_consistency(
            size,
            signed.size,
            asked_root,
            signed.root,
            [base64.b64decode(h) for h in proof["consistency_hashes"]],
        )
        assert proof["requested_size"] == size
    assert rows() == before


def append_deferred(gateway: Gateway, actor: str, parties: tuple[str, ...] = ()) -> int:
    """Append one event while commits only wake an integrator that never runs; return its id."""
    integrator = sequencer.Integrator(gateway.database)
    integrator.attach()
    try:
        with gateway.database.write() as session:
            return log.append(
                session,
                AuditEvent(
                    type=AuditEventType.TOKEN_ISSUE,
                    at=gateway.clock.now(),
                    actor_principal=f"{actor}.partner-system",
                    actor_partner=actor,
                    parties=parties,
                ),
            )
    finally:
        integrator.stop()


def test_a_pending_entry_id_says_retry_after_then_names_its_index(audited: Gateway) -> None:
    entry_id = append_deferred(audited, "politie-noord-nederland", ("belastingdienst",))
    actor, party = "politie-noord-nederland.partner-system", "belastingdienst.privacy-officer"
    pending = audited.client.get(f"/v1/audit/entry-ids/{entry_id}", headers=audited.auth(actor))
    assert pending.status_code == 202, pending.text
    assert pending.headers["Retry-After"] == "1"
    assert pending.json() == {"entry_id": entry_id, "status": "pending", "retry_after_ms": 200}
    assert (
        audited.client.get(f"/v1/audit/entry-ids/{entry_id}", headers=audited.auth(party))
    ).status_code == 202
    stranger = audited.client.get(
        f"/v1/audit/entry-ids/{entry_id}",
        headers=audited.auth("gemeente-smallingerland.privacy-officer"),
    )
    assert stranger.status_code == 404
    assert stranger.headers["content-type"] == PROBLEM

    sequencer.integrate_pending(audited.database)
    placed = audited.client.get(f"/v1/audit/entry-ids/{entry_id}", headers=audited.auth(actor))
    assert placed.status_code == 200, placed.text
    index = placed.json()["index"]
    with audited.database.read() as session:
        assert sequencer.index_of(session, entry_id) == index
    proof = audited.client.get(placed.json()["proof"], headers=audited.auth(actor))
    assert proof.status_code == 200, proof.text
    assert proof.json()["index"] == index


def test_reads_integrate_what_is_pending_first(audited: Gateway) -> None:
    entry_id = append_deferred(audited, "riec-noord-nederland")
    leaves = visible(audited, "riec-noord-nederland.riec-analyst")
    with audited.database.read() as session:
        index = sequencer.index_of(session, entry_id)
    assert index is not None
    assert leaves[-1]["index"] == index
