"""Sharing a record: a partner shares one into a case as the policy allows.

A record is shared under the provider's own legal basis and sealed with the case's key;
a retried share (same Idempotency-Key, same content) answers with the stored record.
Reading records is ``gateway.workflow.reading``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam
from sqlalchemy import select as core_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from gateway import usecase
from gateway.audit.events import AuditEventType
from gateway.audit.statements import DriverInsert
from gateway.context import AppContext
from gateway.db import table_of
from gateway.errors import InvalidInputError
from gateway.identity.actors import Caller
from gateway.models.cases import Record, RecordSubject
from gateway.policy.decision import Action, Decision, DecisionRequest, Relation
from gateway.policy.schema import validate_record
from gateway.workflow import sealing
from gateway.workflow.access import (
    CaseState,
    allow,
    case_state,
    decide,
    known_term,
    must_be_open,
    new_id,
    record_in_case,
    refusals,
    state_of,
    with_case_state,
)
from gateway.workflow.subjects import Subject, subjects_of, unique
from gateway.workflow.views import ShareResult

ONWARD_CONDITIONS = frozenset({"never", "with-provider-consent", "per-policy"})
MAX_RETENTION_DAYS = 20 * 365


@dataclass(frozen=True, slots=True)
class RecordIn:
    """A record a partner shares into a case, with its provenance."""

    category: str
    legal_basis: str
    purposes: tuple[str, ...]
    onward: str
    retention_days: int
    fields: Mapping[str, Any]
    summary: str | None = None


def _share_request(caller: Caller, case: CaseState, record: RecordIn) -> DecisionRequest:
    """Return the policy's question for sharing ``record`` under the caller's own kind."""
    return decide(
        caller,
        Action.RECORD_SHARE,
        case,
        category=record.category,
        legal_basis=record.legal_basis,
        provider_kind=caller.partner_kind,
        relation=Relation.OWN,
    )


def _checked(ctx: AppContext, caller: Caller, case_id: str, record: RecordIn) -> list[Subject]:
    """Return the record's subjects once its terms, basis and fields are known to be valid.

    A basis of another kind of partner is refused by the policy (and recorded) before
    anything else is said. Raises InvalidInputError or PolicyDeniedError.
    """
    vocabulary = ctx.policy.compiled.vocabulary
    known_term(ctx, "category", record.category)
    known_term(ctx, "legal_basis", record.legal_basis)
    if not vocabulary.may_invoke(caller.partner_kind, record.legal_basis):
        # A basis of another kind of partner: refused and recorded before any retry answer.
        with ctx.db.read() as session:
            owner = case_state(session, case_id, caller)
        allow(ctx, caller, _share_request(caller, owner, record), "sharing this record", case_id)
    for purpose in record.purposes:
        known_term(ctx, "purpose", purpose)
    if record.onward not in ONWARD_CONDITIONS:
        raise InvalidInputError(
            f"onward must be one of {', '.join(sorted(ONWARD_CONDITIONS))}", field="onward"
        )
    if not 1 <= record.retention_days <= MAX_RETENTION_DAYS:
        raise InvalidInputError(
            f"retention_days must be 1 to {MAX_RETENTION_DAYS}", field="retention_days"
        )
    schema = vocabulary.schema(record.category)
    if not schema.fields:
        raise InvalidInputError(
            "the category is not one records can be shared in", field="category"
        )
    problems = validate_record(schema, record.fields)
    if problems:
        raise InvalidInputError("the record does not match its category: " + "; ".join(problems))
    return subjects_of(ctx.keys, schema, record.fields)


def _content_key(ctx: AppContext, case_id: str, record: RecordIn) -> str:
    """Return the keyed digest of what was shared, to tell a retry from a reused key."""
    return ctx.keys.blind_index(
        "record-content",
        json.dumps(
            {
                "category": record.category,
                "legal_basis": record.legal_basis,
                "purposes": sorted(record.purposes),
                "onward": record.onward,
                "retention_days": record.retention_days,
                "fields": record.fields,
                "summary": record.summary,
                "case": case_id,
            },
            sort_keys=True,
            default=str,
        ),
    )


# Core statements on the session's connection, built once: the ORM's flush bookkeeping
# and entity loading cost more than the statements themselves.
_RECORDS_TABLE = table_of(Record)
# At the driver, as the audit log's hot inserts (``DriverInsert``: what a Core insert
# stores, without SQLAlchemy's per-statement work): every share runs both.
_INSERT_RECORD = DriverInsert(
    _RECORDS_TABLE,
    (
        "id",
        "case_id",
        "provider_partner_id",
        "provided_by",
        "step",
        "category",
        "legal_basis",
        "purposes",
        "onward",
        "retention_days",
        "retention_until",
        "idempotency_key",
        "content_key",
        "fields_sealed",
        "summary_sealed",
        "created_at",
    ),
)
_INSERT_RECORD_SUBJECTS = DriverInsert(
    table_of(RecordSubject), ("record_id", "subject_key", "id_type")
)
_EARLIER_SHARE = core_select(_RECORDS_TABLE.c.id, _RECORDS_TABLE.c.content_key).where(
    _RECORDS_TABLE.c.provider_partner_id == bindparam("partner_id"),
    _RECORDS_TABLE.c.idempotency_key == bindparam("idempotency_key"),
)


# The case's state and, for a participant, the record its partner stored under the key.
_CASE_AND_EARLIER_SHARE = with_case_state(
    _RECORDS_TABLE,
    and_(
        _RECORDS_TABLE.c.provider_partner_id == bindparam("partner_id"),
        _RECORDS_TABLE.c.idempotency_key == bindparam("key"),
    ),
    _RECORDS_TABLE.c.id.label("earlier_id"),
    _RECORDS_TABLE.c.content_key,
)


def share_record(
    ctx: AppContext, caller: Caller, case_id: str, idempotency_key: str, record: RecordIn
) -> ShareResult:
    """Share a record into a case under the provider's legal basis.

    A retry with the same idempotency key and content returns the stored record
    (``created`` False, audited as a replay); the same key with other content is a
    conflict (IdempotencyConflictError). Authority (participant, role and policy) is
    checked before the key, so a caller that may not share learns nothing about what
    was shared before. Raises InvalidInputError, PolicyDeniedError, NotParticipantError.
    """
    usecase.check_idempotency_key(idempotency_key)
    found = _checked(ctx, caller, case_id, record)
    content_key = _content_key(ctx, case_id, record)
    # One look-up, not a read transaction: the write below checks the case again, locked,
    # and a concurrent first use of the key is caught by its unique index.
    params = {"case_id": case_id, "partner_id": caller.partner_id, "key": idempotency_key}
    with refusals(ctx, caller, case_id), ctx.db.lookup() as conn:
        looked_up = conn.execute(_CASE_AND_EARLIER_SHARE, params).one_or_none()
        case = state_of(looked_up, case_id)
        must_be_open(case)
    earlier = (
        None
        if looked_up is None or looked_up.earlier_id is None
        else _EarlierShare(looked_up.earlier_id, looked_up.content_key)
    )
    request = _share_request(caller, case, record)
    # Before anything is said about the key: a caller that may not share learns nothing.
    decision = allow(ctx, caller, request, "sharing this record", case_id)
    if earlier is not None:
        return _replayed(ctx, caller, case, request, decision, earlier, content_key)
    now = ctx.clock.now()
    record_id = new_id("rec")
    # Sealed before the write begins, so the case lock is held for the inserts only.
    fields_sealed = sealing.seal_map(ctx.keys, case_id, record_id, dict(record.fields))
    summary_sealed = (
        None
        if record.summary is None
        else sealing.seal_value(ctx.keys, case_id, record_id, "summary", record.summary)
    )
    try:
        with ctx.db.write() as session:
            case = case_state(session, case_id, caller, lock=True)
            must_be_open(case)
            conn = session.connection()
            _INSERT_RECORD.run(
                conn,
                _INSERT_RECORD.params(
                    conn.dialect,
                    [
                        {
                            "id": record_id,
                            "case_id": case_id,
                            "provider_partner_id": caller.partner_id,
                            "provided_by": caller.principal_id,
                            "step": case.step,
                            "category": record.category,
                            "legal_basis": record.legal_basis,
                            "purposes": json.dumps(sorted(record.purposes)),
                            "onward": record.onward,
                            "retention_days": record.retention_days,
                            "idempotency_key": idempotency_key,
                            "content_key": content_key,
                            "fields_sealed": fields_sealed,
                            "summary_sealed": summary_sealed,
                            "retention_until": None,
                            "created_at": now,
                        }
                    ],
                ),
            )
            subject_rows = [
                {"record_id": record_id, "subject_key": s.key, "id_type": s.id_type}
                for s in unique(found)
            ]
            if subject_rows:
                _INSERT_RECORD_SUBJECTS.run(
                    conn, _INSERT_RECORD_SUBJECTS.params(conn.dialect, subject_rows)
                )
            record_in_case(
                session,
                ctx,
                caller,
                AuditEventType.RECORD_SHARE,
                case,
                decisions=[(request, decision)],
                persons=[[(s.id_type, s.key) for s in found]],  # a record is about one
                parties=[case.riec_partner_id],
                legal_basis=record.legal_basis,
                refs={"record": record_id, "category": record.category},
            )
    except IntegrityError:
        # A concurrent retry with the same key won the race; answer as a retry.
        with ctx.db.read() as session:
            earlier = _earlier_share(session, caller, idempotency_key)
        if earlier is None:
            raise
        return _replayed(ctx, caller, case, request, decision, earlier, content_key)
    return ShareResult(
        record_id=record_id,
        created=True,
        policy_version=decision.policy_version,
        rule_id=decision.rule_id,
    )


@dataclass(frozen=True, slots=True)
class _EarlierShare:
    """The record a partner stored under an idempotency key, and its content's digest."""

    id: str
    content_key: str


def _replayed(
    ctx: AppContext,
    caller: Caller,
    case: CaseState,
    request: DecisionRequest,
    decision: Decision,
    earlier: _EarlierShare,
    content_key: str,
) -> ShareResult:
    """Record an allowed retry (its decision and a replay entry) and answer it.

    Raises IdempotencyConflictError, storing nothing, when the earlier record's content
    differs from this one's.
    """
    usecase.same_content(earlier.content_key, content_key)
    with ctx.db.write() as session:
        record_in_case(
            session,
            ctx,
            caller,
            AuditEventType.RECORD_SHARE_REPLAY,
            case,
            decisions=[(request, decision)],
            parties=[case.riec_partner_id],
            refs={"record": earlier.id, "replay": True},
        )
    return ShareResult(
        record_id=earlier.id,
        created=False,
        policy_version=decision.policy_version,
        rule_id=decision.rule_id,
    )


def _earlier_share(session: Session, caller: Caller, idempotency_key: str) -> _EarlierShare | None:
    """Return the caller's partner's record stored under this key, if any."""
    params = {"partner_id": caller.partner_id, "idempotency_key": idempotency_key}
    found = session.connection().execute(_EARLIER_SHARE, params).one_or_none()
    return None if found is None else _EarlierShare(found.id, found.content_key)
