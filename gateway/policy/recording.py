"""Recording decisions: a ``policy_decisions`` row per distinct decision, with its audit entry.

Callers pass the (request, decision) pairs of one use case; identical pairs are
recorded once. A decision that stands alone (a refusal, an AuthZEN evaluation) gets an
audit entry of its own (``record_decisions``); the decisions that allowed a change are
folded into the change's one entry instead (``folded_details`` for its details,
``record_folded`` for the rows, which name that entry). Rows and audit entries are added
to the caller's transaction, in one insert per table, so they commit with the change the
decisions allowed (or with nothing, for a refusal the caller records in a write of its own).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from gateway.audit import log as audit_log
from gateway.audit.events import AuditEvent, AuditEventType
from gateway.audit.statements import DriverInsert
from gateway.db import table_of
from gateway.identity.actors import Actor
from gateway.models.policy import PolicyDecisionRecord
from gateway.obligations.types import from_json, to_json_list
from gateway.policy.decision import Action, Consent, Decision, DecisionRequest, Relation

Pair = tuple[DecisionRequest, Decision]


@dataclass(frozen=True, slots=True)
class RecordedDecision:
    """A stored decision, ready to be replayed against another policy."""

    id: int
    decided_at: datetime
    case_id: str | None
    request: DecisionRequest
    decision: Decision


def distinct(pairs: Iterable[Pair]) -> list[Pair]:
    """Return the pairs once each (same request, rule and policy version), in first order."""
    unique: dict[tuple[DecisionRequest, str, str], Pair] = {}
    for request, decision in pairs:
        unique.setdefault((request, decision.rule_id, decision.policy_version), (request, decision))
    return list(unique.values())


def folded_details(pairs: Iterable[Pair]) -> list[dict[str, Any]]:
    """Return each distinct decision as the change's audit entry details list it.

    The same facts a decision's own entry gives (action, partner, outcome, rule, policy
    version, request digest, the full request and the reason), one item per decision.
    """
    return [
        {
            "action": str(request.action),
            "partner": request.partner_id,
            "allowed": decision.allowed,
            "rule": decision.rule_id,
            "policy_version": decision.policy_version,
            "request_sha256": request.digest(),
            "request": request.to_dict(),
            "reason": decision.reason,
        }
        for request, decision in distinct(pairs)
    ]


_TABLE = table_of(PolicyDecisionRecord)


def _row(
    actor: Actor,
    at: datetime,
    case_id: str | None,
    request: DecisionRequest,
    decision: Decision,
    digest: str,
    entry_id: int,
) -> dict[str, Any]:
    """Return the column values of one decision row."""
    return {
        "decided_at": at,
        "actor_principal_id": actor.principal_id,
        "actor_partner_id": actor.partner_id,
        "case_id": case_id,
        "request_sha256": digest,
        "partner_id": request.partner_id,
        "partner_kind": request.partner_kind,
        "role": str(request.role),
        "action": str(request.action),
        "process": request.process,
        "step": request.step,
        "purpose": request.purpose,
        "category": request.category,
        "legal_basis": request.legal_basis,
        "provider_kind": request.provider_kind,
        "relation": str(request.relation),
        "consent": str(request.consent),
        "allowed": decision.allowed,
        "rule_id": decision.rule_id,
        "policy_version": decision.policy_version,
        "obligations": json.dumps(to_json_list(decision.obligations), sort_keys=True),
        "audit_entry_id": entry_id,
    }


_INSERT = DriverInsert(_TABLE, [column.name for column in _TABLE.columns if column.name != "id"])


def _insert(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert the rows in one statement, at the driver (``DriverInsert``: what a Core
    insert stores, for a fraction of its per-statement work; every decided request pays).

    No RETURNING: nothing reads a decision row's id back (the row names its audit entry).
    """
    if rows:
        conn = session.connection()
        _INSERT.run(conn, _INSERT.params(conn.dialect, rows))


def record_decisions(
    session: Session,
    actor: Actor,
    pairs: Iterable[Pair],
    at: datetime,
    *,
    case_id: str | None = None,
) -> list[int]:
    """Record each distinct (request, decision) pair with an audit entry of its own.

    Returns the ids of their audit entries. For decisions that stand alone (refusals,
    evaluations); nothing is committed here: the caller's ``ctx.db.write()`` block
    commits it all.
    """
    unique = distinct(pairs)
    events = []
    digests = []
    for request, decision in unique:
        digest = request.digest()
        digests.append(digest)
        events.append(
            AuditEvent(
                type=AuditEventType.POLICY_DECISION,
                at=at,
                actor_principal=actor.principal_id,
                actor_partner=actor.partner_id,
                case_id=case_id,
                step=request.step,
                purpose=request.purpose,
                legal_basis=request.legal_basis,
                policy_version=decision.policy_version,
                refs={
                    "action": str(request.action),
                    "partner": request.partner_id,
                    "allowed": decision.allowed,
                    "rule": decision.rule_id,
                    "request_sha256": digest,
                },
                details={"request": request.to_dict(), "reason": decision.reason},
            )
        )
    entry_ids = audit_log.append_many(session, events)
    _insert(
        session,
        [
            _row(actor, at, case_id, request, decision, digest, entry_id)
            for (request, decision), digest, entry_id in zip(
                unique, digests, entry_ids, strict=True
            )
        ],
    )
    return entry_ids


def record_folded(
    session: Session,
    actor: Actor,
    pairs: Iterable[Pair],
    at: datetime,
    entry_id: int,
    *,
    case_id: str | None = None,
) -> None:
    """Record each distinct pair as a row naming ``entry_id``, the change's own entry.

    For the decisions that allowed a change whose entry lists them (``folded_details``).
    Nothing is committed here.
    """
    _insert(
        session,
        [
            _row(actor, at, case_id, request, decision, request.digest(), entry_id)
            for request, decision in distinct(pairs)
        ],
    )


def recorded_decisions(
    session: Session, *, since: datetime | None = None, until: datetime | None = None
) -> list[RecordedDecision]:
    """Return the recorded decisions of a period (oldest first), for replay."""
    query = select(PolicyDecisionRecord).order_by(col(PolicyDecisionRecord.id))
    if since is not None:
        query = query.where(col(PolicyDecisionRecord.decided_at) >= since)
    if until is not None:
        query = query.where(col(PolicyDecisionRecord.decided_at) < until)
    result = []
    for row in session.exec(query).all():
        assert row.id is not None
        request = DecisionRequest(
            partner_id=row.partner_id,
            partner_kind=row.partner_kind,
            role=row.role,
            action=Action(row.action),
            process=row.process,
            step=row.step,
            purpose=row.purpose,
            category=row.category,
            legal_basis=row.legal_basis,
            provider_kind=row.provider_kind,
            relation=Relation(row.relation),
            consent=Consent(row.consent),
        )
        decision = Decision(
            allowed=row.allowed,
            reason="",
            source="",
            rule_id=row.rule_id,
            policy_version=row.policy_version,
            obligations=tuple(from_json(o) for o in json.loads(row.obligations)),
        )
        result.append(RecordedDecision(row.id, row.decided_at, row.case_id, request, decision))
    return result
