"""Recording decisions: a ``policy_decisions`` row and an audit entry per distinct decision.

Callers pass the (request, decision) pairs of one use case; identical pairs are
recorded once. Rows and audit entries are added to the caller's transaction, so they
commit with the change the decisions allowed (or with nothing, for a refusal the caller
records in a write of its own).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from gateway.audit import log as audit_log
from gateway.audit.events import AuditEvent, AuditEventType
from gateway.identity.actors import Actor
from gateway.models.policy import PolicyDecisionRecord
from gateway.obligations.types import from_json, to_json_list
from gateway.policy.decision import Action, Consent, Decision, DecisionRequest, Relation


@dataclass(frozen=True, slots=True)
class RecordedDecision:
    """A stored decision, ready to be replayed against another policy."""

    id: int
    decided_at: datetime
    case_id: str | None
    request: DecisionRequest
    decision: Decision


def record_decisions(
    session: Session,
    actor: Actor,
    pairs: Iterable[tuple[DecisionRequest, Decision]],
    at: datetime,
    *,
    case_id: str | None = None,
) -> list[int]:
    """Record each distinct (request, decision) pair with its audit entry; return row ids.

    Nothing is committed here; the caller's ``ctx.db.write()`` block commits it all.
    """
    unique: dict[tuple[DecisionRequest, str, str], tuple[DecisionRequest, Decision]] = {}
    for request, decision in pairs:
        unique.setdefault((request, decision.rule_id, decision.policy_version), (request, decision))
    ids: list[int] = []
    for request, decision in unique.values():
        digest = request.digest()
        entry_id = audit_log.append(
            session,
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
            ),
        )
        row = PolicyDecisionRecord(
            decided_at=at,
            actor_principal_id=actor.principal_id,
            actor_partner_id=actor.partner_id,
            case_id=case_id,
            request_sha256=digest,
            partner_id=request.partner_id,
            partner_kind=request.partner_kind,
            role=str(request.role),
            action=str(request.action),
            process=request.process,
            step=request.step,
            purpose=request.purpose,
            category=request.category,
            legal_basis=request.legal_basis,
            provider_kind=request.provider_kind,
            relation=str(request.relation),
            consent=str(request.consent),
            allowed=decision.allowed,
            rule_id=decision.rule_id,
            policy_version=decision.policy_version,
            obligations=json.dumps(to_json_list(decision.obligations), sort_keys=True),
            audit_entry_id=entry_id,
        )
        session.add(row)
        session.flush()
        assert row.id is not None
        ids.append(row.id)
    return ids


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
