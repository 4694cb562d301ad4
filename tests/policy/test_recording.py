"""Every decision is recorded with its audit entry, deduplicated, and can be replayed."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from gateway.clock import FixedClock
from gateway.db import Database
from gateway.identity.service import Actor
from gateway.models.audit import AuditEntry, AuditTreeHead
from gateway.models.policy import PolicyDecisionRecord
from gateway.policy.decision import Action, DecisionRequest, Relation
from gateway.policy.engine import PolicyEngine
from gateway.policy.recording import record_decisions, recorded_decisions
from tests.conftest import POLICIES

ENGINE = PolicyEngine.from_directory(POLICIES)
ACTOR = Actor(principal_id="riec-noord-nederland.riec-analyst", partner_id="riec-noord-nederland")


def read(category: str, kind: str = "gemeente") -> DecisionRequest:
    return DecisionRequest(
        partner_id=f"{kind}-x",
        partner_kind=kind,
        role="analyst",
        action=Action.RECORD_READ,
        process="casusaanpak",
        step=3,
        purpose="integrale-aanpak-ondermijning",
        category=category,
        provider_kind="politie",
        relation=Relation.OTHER,
    )


def test_record_dedupes_and_audits_in_the_same_transaction(
    database: Database, clock: FixedClock
) -> None:
    requests = [read("police-incident"), read("fiscal"), read("police-incident")]
    pairs = [(r, ENGINE.decide(r)) for r in requests]
    with database.write() as session:
        ids = record_decisions(session, ACTOR, pairs, clock.now(), case_id="case-1")
    assert len(ids) == 2
    with database.read() as session:
        rows = session.exec(select(PolicyDecisionRecord)).all()
        entries = session.exec(select(AuditEntry)).all()
        head = session.get(AuditTreeHead, 1)
    assert [(r.category, r.allowed, r.rule_id) for r in rows] == [
        ("police-incident", True, "gemeente-ziet-samenvatting-strafrechtelijk"),
        ("fiscal", False, "fiscaal-alleen-43c"),
    ]
    assert {r.policy_version for r in rows} == {ENGINE.version}
    assert [e.event_type for e in entries] == ["policy:decision:record"] * 2
    assert {e.case_id for e in entries} == {"case-1"}
    assert head is not None and head.size == 2
    assert '"allowed":false' in entries[1].leaf


def test_nothing_is_recorded_when_the_transaction_fails(
    database: Database, clock: FixedClock
) -> None:
    request = read("police-incident")
    try:
        with database.write() as session:
            record_decisions(session, ACTOR, [(request, ENGINE.decide(request))], clock.now())
            raise RuntimeError("the change the decision was for failed")
    except RuntimeError:
        pass
    with database.read() as session:
        assert session.exec(select(PolicyDecisionRecord)).all() == []
        assert session.exec(select(AuditEntry)).all() == []


def test_recorded_requests_replay_against_a_policy(database: Database, clock: FixedClock) -> None:
    requests = [read("police-incident"), read("fiscal", "politie"), read("om-case", "uwv")]
    with database.write() as session:
        record_decisions(session, ACTOR, [(r, ENGINE.decide(r)) for r in requests], clock.now())
    clock.advance(timedelta(hours=1))
    with database.write() as session:
        late = read("municipal")
        record_decisions(session, ACTOR, [(late, ENGINE.decide(late))], clock.now())
    with database.read() as session:
        everything = recorded_decisions(session)
        first_hour = recorded_decisions(session, until=clock.now())
    assert [r.request for r in everything] == [*requests, late]
    assert [r.request for r in first_hour] == requests
    for recorded in everything:
        replayed = ENGINE.decide(recorded.request)
        assert replayed.allowed == recorded.decision.allowed
        assert replayed.rule_id == recorded.decision.rule_id
        assert replayed.obligations == recorded.decision.obligations


def test_a_recorded_decision_maintains_only_the_index_replays_read(database: Database) -> None:
    """Every decided request inserts a row: an index no query reads is a page written for
    nothing on each (and copied again at every checkpoint). Replays select by period."""
    from sqlalchemy import inspect

    indexes = inspect(database.engine).get_indexes("policy_decisions")
    assert [index["column_names"] for index in indexes] == [["decided_at"]]


def test_decision_rows_store_what_a_core_insert_of_the_same_rows_stores(
    database: Database, clock: FixedClock
) -> None:
    from sqlalchemy import insert, text

    from gateway.db import table_of
    from gateway.policy import recording

    pairs = [(r, ENGINE.decide(r)) for r in (read("police-incident"), read("fiscal", "politie"))]
    with database.write() as session:
        record_decisions(session, ACTOR, pairs, clock.now(), case_id="case-1")
    with database.read() as session:
        stored = [tuple(r) for r in session.execute(text("SELECT * FROM policy_decisions"))]
        entry_ids = [r.audit_entry_id for r in session.exec(select(PolicyDecisionRecord))]
    rows = [
        recording._row(ACTOR, clock.now(), "case-1", r, d, r.digest(), entry_id)
        for (r, d), entry_id in zip(pairs, entry_ids, strict=True)
    ]
    with database.write() as session:
        session.connection().execute(insert(table_of(PolicyDecisionRecord)), rows)
    with database.read() as session:
        again = [tuple(r) for r in session.execute(text("SELECT * FROM policy_decisions"))][2:]
    assert len(stored) == len(again) == 2
    assert [r[1:] for r in stored] == [r[1:] for r in again]  # all but the id
