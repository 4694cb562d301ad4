"""The use-case seam: a refusal is on the record, a change commits with its decisions and
audit entry or not at all, other refusals are audited, retries follow one rule."""

from __future__ import annotations

import json

import pytest
from sqlmodel import col, select

from gateway.app import build_context
from gateway.audit.events import AuditEventType
from gateway.clock import FixedClock
from gateway.config import Settings
from gateway.context import AppContext
from gateway.db import Database
from gateway.errors import (
    IdempotencyConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    PolicyDeniedError,
)
from gateway.identity.actors import Actor
from gateway.models.audit import AuditEntry
from gateway.models.policy import PolicyDecisionRecord
from gateway.policy.decision import Action, DecisionRequest, Relation
from gateway.usecase import (
    allow_or_refuse,
    check_idempotency_key,
    record,
    refusals,
    same_content,
)

ACTOR = Actor(principal_id="gemeente-x.analyst", partner_id="gemeente-x")


def read(category: str) -> DecisionRequest:
    return DecisionRequest(
        partner_id="gemeente-x",
        partner_kind="gemeente",
        role="analyst",
        action=Action.RECORD_READ,
        process="casusaanpak",
        step=3,
        purpose="integrale-aanpak-ondermijning",
        category=category,
        provider_kind="politie",
        relation=Relation.OTHER,
    )


@pytest.fixture
def ctx(settings: Settings, database: Database, clock: FixedClock) -> AppContext:
    return build_context(settings, clock=clock, db=database)


def entries(database: Database) -> list[AuditEntry]:
    with database.read() as session:
        return list(session.exec(select(AuditEntry).order_by(col(AuditEntry.leaf_index))).all())


def test_a_refusal_records_every_decision_and_names_the_rule(
    ctx: AppContext, database: Database
) -> None:
    with pytest.raises(PolicyDeniedError) as refused:
        allow_or_refuse(
            ctx, ACTOR, [read("police-incident"), read("fiscal")], "reading", case_id="c-1"
        )
    assert refused.value.extensions["rule_id"] == "fiscaal-alleen-43c"
    assert str(refused.value).startswith("reading is not allowed")
    with database.read() as session:
        rows = session.exec(select(PolicyDecisionRecord)).all()
    assert [(r.category, r.allowed) for r in rows] == [
        ("police-incident", True),
        ("fiscal", False),
    ]
    assert {e.case_id for e in entries(database)} == {"c-1"}


def test_allowed_requests_write_nothing_until_recorded(ctx: AppContext, database: Database) -> None:
    decisions = allow_or_refuse(ctx, ACTOR, [read("police-incident")], "reading")
    assert [d.allowed for d in decisions] == [True]
    assert entries(database) == []


def test_record_commits_decisions_and_event_together_or_not_at_all(
    ctx: AppContext, database: Database
) -> None:
    request = read("police-incident")
    (decision,) = allow_or_refuse(ctx, ACTOR, [request], "reading")

    def fail_after_recording() -> None:
        with database.write() as session:
            record(
                session,
                ctx.clock,
                ACTOR,
                AuditEventType.RECORD_READ,
                decisions=[(request, decision)],
                case_id="c-1",
            )
            raise RuntimeError("the change failed after recording")

    with pytest.raises(RuntimeError):
        fail_after_recording()
    assert entries(database) == []

    with database.write() as session:
        record(
            session,
            ctx.clock,
            ACTOR,
            AuditEventType.RECORD_READ,
            decisions=[(request, decision), (request, decision)],
            case_id="c-1",
            parties=["politie"],
            refs={"records": 2},
        )
    written = entries(database)
    assert [e.event_type for e in written] == [AuditEventType.RECORD_READ.value]
    read_event = written[-1]
    with database.read() as session:
        rows = session.exec(select(PolicyDecisionRecord)).all()
    assert [(r.rule_id, r.audit_entry_id) for r in rows] == [
        (decision.rule_id, read_event.entry_id)
    ]  # the same decision twice is recorded once, naming the read's entry
    assert '"rule":"' + decision.rule_id + '"' in read_event.leaf
    assert '"records":2' in read_event.leaf
    assert '"gemeente-x"' in read_event.leaf and '"politie"' in read_event.leaf


def test_a_change_no_policy_decides_names_no_rule_and_only_the_parties_given(
    ctx: AppContext, database: Database
) -> None:
    with database.write() as session:
        record(
            session,
            ctx.clock,
            ACTOR,
            AuditEventType.PARTNER_ADD,
            refs={"partner": "gemeente-y"},
            decided=False,
            policy_version="v-retention",
        )
        record(session, ctx.clock, ACTOR, AuditEventType.PARTNER_ADD, refs={"partner": "z"})
    undecided, decided = (json.loads(e.leaf) for e in entries(database))
    assert undecided["refs"] == {"partner": "gemeente-y"} and undecided["parties"] == []
    assert undecided["policy_version"] == "v-retention"
    assert decided["refs"] == {"partner": "z", "rule": None}
    assert decided["parties"] == ["gemeente-x"] and decided["policy_version"] is None


def test_refusals_audits_a_role_refusal_but_not_a_policy_one_twice(
    ctx: AppContext, database: Database
) -> None:
    with pytest.raises(PermissionDeniedError), refusals(ctx, ACTOR, case_id="c-2"):
        raise PermissionDeniedError("the role analyst has no access")
    with pytest.raises(NotFoundError), refusals(ctx, ACTOR, case_id="c-2"):
        raise NotFoundError("no such case")
    written = entries(database)
    assert [e.event_type for e in written] == [AuditEventType.ACCESS_REFUSE.value]
    assert '"refusal":"forbidden"' in written[0].leaf

    with pytest.raises(PolicyDeniedError), refusals(ctx, ACTOR, case_id="c-2"):
        allow_or_refuse(ctx, ACTOR, [read("fiscal")], "reading", case_id="c-2")
    assert [e.event_type for e in entries(database)][1:] == [AuditEventType.POLICY_DECISION.value]


@pytest.mark.parametrize("key", ["short", "x" * 129, "eight\nchars"])
def test_a_bad_idempotency_key_is_invalid_input(key: str) -> None:
    with pytest.raises(InvalidInputError):
        check_idempotency_key(key)


def test_a_reused_key_with_other_content_is_a_conflict() -> None:
    check_idempotency_key("retry-0001")
    same_content("sha-a", "sha-a")
    with pytest.raises(IdempotencyConflictError):
        same_content("sha-a", "sha-b")
