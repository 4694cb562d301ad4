"""A request leaves one audit entry: the decisions that allowed it are listed in its details.

A record read decides once per record; those decisions are no longer entries of their
own but items of the read's entry (and ``policy_decisions`` rows naming that entry), so
the log grows by one entry per request while every decision stays visible. Runs on
SQLite and PostgreSQL (the ``gateway`` fixture).
"""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import col, select

from gateway.audit import sequencer
from gateway.demo import BELASTING, GEMEENTE, POLITIE, RIEC
from gateway.models.audit import AuditDetail, AuditEntry
from gateway.models.policy import PolicyDecisionRecord
from tests.conftest import Gateway
from tests.helpers.cases import FISCAL_RECORD, POLICE_RECORD, Walk, go, start_case


def new_entries(walk: Walk, since: int) -> list[tuple[AuditEntry, dict[str, Any] | None]]:
    """Return the entries after leaf ``since`` with their details (None if they have none)."""
    sequencer.catch_up(walk.gw.database)
    with walk.gw.database.read() as session:
        rows = session.exec(
            select(AuditEntry, AuditDetail)
            .join(
                AuditDetail, col(AuditDetail.leaf_index) == col(AuditEntry.leaf_index), isouter=True
            )
            .where(col(AuditEntry.leaf_index) >= since)
            .order_by(col(AuditEntry.leaf_index))
        ).all()
    return [(e, None if d is None else json.loads(d.body)) for e, d in rows]


def log_size(walk: Walk) -> int:
    sequencer.catch_up(walk.gw.database)
    with walk.gw.database.read() as session:
        return len(session.exec(select(AuditEntry.leaf_index)).all())


def decisions_of(walk: Walk, entry: AuditEntry) -> list[PolicyDecisionRecord]:
    """Return the decision rows that name ``entry``, oldest first."""
    entry_id = entry.entry_id
    assert entry_id is not None  # entries written by requests always have one
    with walk.gw.database.read() as session:
        return list(
            session.exec(
                select(PolicyDecisionRecord)
                .where(PolicyDecisionRecord.audit_entry_id == entry_id)
                .order_by(col(PolicyDecisionRecord.id))
            ).all()
        )


def case_with_two_records(gateway: Gateway) -> Walk:
    walk = start_case(gateway)
    go(walk)
    walk.share(POLITIE, POLICE_RECORD)
    walk.share(BELASTING, FISCAL_RECORD)
    return walk


def test_a_read_of_two_records_leaves_one_entry_listing_both_decisions(gateway: Gateway) -> None:
    walk = case_with_two_records(gateway)
    before = log_size(walk)
    view = walk.records(GEMEENTE)
    assert len(view["records"]) + view["withheld"] == 2

    [(entry, details)] = new_entries(walk, before)
    assert entry.event_type == "case:record:read"
    assert details is not None
    listed = details["decisions"]
    assert len(listed) == 2  # one per record: different categories, different rules
    assert {d["request"]["category"] for d in listed} == {"police-incident", "fiscal"}
    assert all(d["action"] == "case:record:read" and d["reason"] for d in listed)
    assert all(d["partner"] == "gemeente-smallingerland" for d in listed)
    rows = decisions_of(walk, entry)
    assert [(r.category, r.rule_id, r.allowed) for r in rows] == [
        (d["request"]["category"], d["rule"], d["allowed"]) for d in listed
    ]
    assert {r.request_sha256 for r in rows} == {d["request_sha256"] for d in listed}


def test_the_same_decision_for_many_records_is_listed_once(gateway: Gateway) -> None:
    walk = case_with_two_records(gateway)
    walk.share(POLITIE, {**POLICE_RECORD, "summary": "a second incident"})
    before = log_size(walk)
    walk.records(RIEC)
    [(entry, details)] = new_entries(walk, before)
    assert entry.event_type == "case:record:read" and details is not None
    categories = sorted(d["request"]["category"] for d in details["decisions"])
    assert categories == ["fiscal", "police-incident"]  # three records, two distinct decisions
    assert len(decisions_of(walk, entry)) == 2


def test_a_share_leaves_one_entry_that_names_its_decision(gateway: Gateway) -> None:
    walk = start_case(gateway)
    go(walk)
    before = log_size(walk)
    walk.share(POLITIE, POLICE_RECORD)
    [(entry, details)] = new_entries(walk, before)
    assert entry.event_type == "case:record:share"
    assert details is not None
    [listed] = details["decisions"]
    cited = json.loads(entry.leaf)["refs"]["rule"]
    assert listed["rule"] == cited and listed["allowed"] is True
    [row] = decisions_of(walk, entry)
    assert row.rule_id == cited and row.action == "case:record:share"


def test_two_reads_are_two_entries_and_nothing_else(gateway: Gateway) -> None:
    walk = case_with_two_records(gateway)
    before = log_size(walk)
    walk.records(GEMEENTE)
    walk.records(RIEC)
    kinds = [e.event_type for e, _ in new_entries(walk, before)]
    assert kinds == ["case:record:read", "case:record:read"]
