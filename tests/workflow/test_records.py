"""Records called directly: a share is recorded with its decision, a retry answers with the
stored record, a reused key with other content stores nothing, and a read counts what it
withholds."""

from __future__ import annotations

import dataclasses

import pytest
from sqlmodel import func, select

from gateway.audit.events import AuditEventType
from gateway.demo import BELASTING, GEMEENTE, POLITIE, RIEC
from gateway.errors import (
    IdempotencyConflictError,
    InvalidInputError,
    LegalBasisNotOwnError,
    PolicyDeniedError,
)
from gateway.models.cases import Record
from gateway.models.policy import PolicyDecisionRecord
from gateway.workflow import outputs, records, transitions
from gateway.workflow.steps import OutputKind
from tests.helpers.workflow import World, case_at_step_3, police_record


def count(world: World, table: type[Record] | type[PolicyDecisionRecord]) -> int:
    with world.ctx.db.read() as session:
        return int(session.exec(select(func.count()).select_from(table)).one())


def test_a_retry_answers_with_the_stored_record_and_is_audited_as_a_replay(
    world: World,
) -> None:
    case_id = case_at_step_3(world)
    first = records.share_record(
        world.ctx, world[POLITIE], case_id, "key-00000001", police_record()
    )
    again = records.share_record(
        world.ctx, world[POLITIE], case_id, "key-00000001", police_record()
    )
    assert first.created and not again.created and again.record_id == first.record_id
    assert count(world, Record) == 1
    [shared] = world.entries(AuditEventType.RECORD_SHARE)
    [replay] = world.entries(AuditEventType.RECORD_SHARE_REPLAY)
    assert shared["refs"] == {
        "record": first.record_id,
        "category": "police-incident",
        "rule": first.rule_id,
    }
    assert replay["refs"] == {"record": first.record_id, "replay": True, "rule": first.rule_id}
    assert shared["parties"] == ["politie-noord-nederland", "riec-noord-nederland"]


def test_a_reused_key_with_other_content_stores_nothing(world: World) -> None:
    case_id = case_at_step_3(world)
    records.share_record(world.ctx, world[POLITIE], case_id, "key-00000001", police_record())
    other = dataclasses.replace(police_record(), summary="another summary")
    with pytest.raises(IdempotencyConflictError):
        records.share_record(world.ctx, world[POLITIE], case_id, "key-00000001", other)
    with pytest.raises(InvalidInputError):
        records.share_record(world.ctx, world[POLITIE], case_id, "short", police_record())
    assert count(world, Record) == 1
    assert len(world.entries(AuditEventType.RECORD_SHARE)) == 1


def test_a_retry_the_policy_no_longer_allows_is_refused_before_its_key_says_anything(
    world: World,
) -> None:
    case_id = case_at_step_3(world)
    records.share_record(world.ctx, world[POLITIE], case_id, "key-00000001", police_record())
    outputs.write_output(world.ctx, world[RIEC], case_id, OutputKind.ANALYSIS, "analysis")
    transitions.transition(world.ctx, world[RIEC], case_id, 4, None)  # sharing ends at 3
    decisions = count(world, PolicyDecisionRecord)
    other = dataclasses.replace(police_record(), summary="another summary")
    for retry in (police_record(), other):  # neither a replay nor a conflict
        with pytest.raises(PolicyDeniedError):
            records.share_record(world.ctx, world[POLITIE], case_id, "key-00000001", retry)
    assert count(world, PolicyDecisionRecord) == decisions + 2
    assert world.entries(AuditEventType.RECORD_SHARE_REPLAY) == []
    assert count(world, Record) == 1


def test_a_basis_of_another_kind_of_partner_is_refused_and_on_the_record(world: World) -> None:
    case_id = case_at_step_3(world)
    decisions = count(world, PolicyDecisionRecord)
    with pytest.raises(LegalBasisNotOwnError):
        records.share_record(world.ctx, world[GEMEENTE], case_id, "key-00000002", police_record())
    assert count(world, PolicyDecisionRecord) == decisions + 1
    assert count(world, Record) == 0


def test_a_shared_record_is_stored_as_a_core_insert_of_its_values_stores_it(
    world: World,
) -> None:
    """The share's inserts run at the driver; what they store must not differ by a byte."""
    from sqlalchemy import insert, text

    from gateway.db import table_of
    from gateway.models.cases import RecordSubject

    def raw(table: str, where: str) -> list[tuple[object, ...]]:
        with world.ctx.db.read() as session:
            return [tuple(r) for r in session.execute(text(f"SELECT * FROM {table} {where}"))]

    case_id = case_at_step_3(world)
    shared = records.share_record(
        world.ctx, world[POLITIE], case_id, "key-00000001", police_record()
    )
    with world.ctx.db.read() as session:  # the stored values, typed, re-inserted by Core
        record = session.get_one(Record, shared.record_id).model_dump()
        subjects = [s.model_dump() for s in session.exec(select(RecordSubject)).all()]
    assert subjects
    with world.ctx.db.write() as session:
        conn = session.connection()
        conn.execute(insert(table_of(Record)), [{**record, "id": "rec-c", "idempotency_key": "k"}])
        conn.execute(
            insert(table_of(RecordSubject)), [{**s, "record_id": "rec-c"} for s in subjects]
        )
    by_driver = raw("records", f"WHERE id = '{shared.record_id}'")
    by_core = raw("records", "WHERE id = 'rec-c'")
    key = [c.name for c in table_of(Record).columns].index("idempotency_key")
    assert [r[1:key] + r[key + 1 :] for r in by_driver] == [
        r[1:key] + r[key + 1 :] for r in by_core
    ]
    assert [s[1:] for s in raw("record_subjects", f"WHERE record_id = '{shared.record_id}'")] == [
        s[1:] for s in raw("record_subjects", "WHERE record_id = 'rec-c'")
    ]


def test_every_index_on_records_is_read_by_a_query(world: World) -> None:
    """A share writes a page per index: by case (reads), by retention end (the purge), the
    primary key and the unique (provider, idempotency key), which also serves look-ups by
    provider. A single-column provider index beside it was written on every share for
    nothing."""
    from sqlalchemy import inspect

    inspector = inspect(world.ctx.db.engine)
    indexed = {tuple(i["column_names"]) for i in inspector.get_indexes("records")}
    unique = {tuple(u["column_names"]) for u in inspector.get_unique_constraints("records")}
    assert indexed - unique == {("case_id",), ("retention_until",)}
    assert ("provider_partner_id", "idempotency_key") in unique


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_shares_into_one_case_do_not_wait_for_each_other_but_a_transition_waits_for_them(
    world: World,
) -> None:
    """A share locks its case against a change of step or status, not against other
    shares: every share into a busy case queued behind the one before it, holding the
    row for its whole transaction (commit included)."""
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    from gateway.db import Database
    from gateway.identity.actors import Caller
    from gateway.workflow.access import case_state, load_case

    def transition_lock(db: Database, case_id: str, caller: Caller) -> None:
        with db.write() as transition:  # as a transition takes it
            transition.connection().execute(text("SET LOCAL lock_timeout = '200ms'"))
            load_case(transition, case_id, caller, lock=True)

    case_id = case_at_step_3(world)
    db = world.ctx.db
    with db.write() as first:  # a share's transaction, still open
        case_state(first, case_id, world[POLITIE], lock=True)
        with db.write() as second:
            second.connection().execute(text("SET LOCAL lock_timeout = '2s'"))
            assert case_state(second, case_id, world[BELASTING], lock=True).id == case_id
        with pytest.raises(OperationalError, match="lock timeout"):
            transition_lock(db, case_id, world[RIEC])
