"""The AuthZEN adapter: map an evaluation to a DecisionRequest, decide, record.

Who asks decides what may be asked: a caller asks about its own partner (with its own
role), unless it is a riec-analyst or a privacy-officer; those may ask about any
registered partner, whose kind then comes from the registry and whose role they name
in ``subject.properties.role``. Nothing about the subject is taken from the caller's word.

A question the gateway does not model (a subject that is not a ``partner``, a resource
that is not a ``record``) or may not answer (a partner asking about another partner or
another role) is a ``Refused``: decision false with its reason, nothing recorded, the
same answer whether the other partner exists or not.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam
from sqlalchemy import select as columns
from sqlalchemy.engine import Connection
from sqlmodel import Session, col

from gateway.authzen.schemas import EvaluationRequest
from gateway.errors import InvalidInputError, NotFoundError
from gateway.identity.service import Actor, Caller
from gateway.models.partners import Partner
from gateway.policy.decision import Action, Consent, Decision, DecisionRequest, Relation
from gateway.policy.engine import PolicyEngine
from gateway.policy.errors import UnknownTermError
from gateway.policy.recording import record_decisions
from gateway.vocabulary import Role

PRIVILEGED = frozenset({Role.RIEC_ANALYST, Role.PRIVACY_OFFICER})

SUBJECT_TYPE = "partner"
RESOURCE_TYPE = "record"
NOT_A_PARTNER = "the gateway decides only about subjects of type partner"
NOT_A_RECORD = "the gateway decides only about resources of type record"
OTHER_PARTNER = "a partner may only ask about itself"
OTHER_ROLE = "a partner may only ask about its own role"

log = logging.getLogger("gateway.authzen")


@dataclass(frozen=True, slots=True)
class Refused:
    """A question answered false without asking the policy engine, and why."""

    reason: str


@dataclass(frozen=True, slots=True)
class Evaluated:
    """A request the engine answered, with the case it was asked for (if any)."""

    request: DecisionRequest
    decision: Decision
    case_id: str | None


# Built once, plain columns: an ORM ``get`` of the partner cost as much as the decision.
_PARTNER_KIND = columns(col(Partner.kind), col(Partner.active)).where(
    col(Partner.id) == bindparam("partner_id")
)


def _partner_kind(reader: Session | Connection, partner_id: str, what: str) -> str:
    """Return the kind of an active registered partner, else raise NotFoundError."""
    row = reader.execute(_PARTNER_KIND, {"partner_id": partner_id}).one_or_none()
    if row is None or not row.active:
        raise NotFoundError(f"the {what} is not an active registered partner", member=what)
    return str(row.kind)


def _refused(caller: Caller, reason: str) -> Refused:
    """Return the refusal, logged as the 403 it replaces was (caller and reason only)."""
    log.info(
        "authzen question refused",
        extra={"fields": {"principal": caller.principal_id, "reason": reason}},
    )
    return Refused(reason)


def to_request(
    reader: Session | Connection, caller: Caller, body: EvaluationRequest
) -> DecisionRequest | Refused:
    """Return the decision request for an AuthZEN evaluation by ``caller``, or a refusal.

    ``reader`` looks partners up (a session, or a ``Database.lookup`` connection).

    Refused: a subject or resource type the gateway does not model, a partner asking
    about another partner or about a role it does not have. Raises NotFoundError
    (a privileged caller's unknown subject, an unknown provider partner) and
    InvalidInputError/UnknownTermError (unknown action, role or other name).
    """
    subject = body.subject
    if subject.type != SUBJECT_TYPE:
        return Refused(NOT_A_PARTNER)
    if body.resource.type != RESOURCE_TYPE:
        return Refused(NOT_A_RECORD)
    asked_role = subject.properties.role
    privileged = caller.role in PRIVILEGED
    if subject.id != caller.partner_id and not privileged:
        return _refused(caller, OTHER_PARTNER)
    if subject.id == caller.partner_id and asked_role is None:
        kind, role = caller.partner_kind, caller.role.value
    elif not privileged:
        if asked_role != caller.role.value:
            return _refused(caller, OTHER_ROLE)
        kind, role = caller.partner_kind, caller.role.value
    else:
        if asked_role is None:
            raise InvalidInputError(
                "name the role to ask about in subject.properties.role", field="subject"
            )
        try:
            role = Role(asked_role).value
        except ValueError as exc:
            raise UnknownTermError("unknown role", attribute="role") from exc
        kind = (
            caller.partner_kind
            if subject.id == caller.partner_id
            else _partner_kind(reader, subject.id, "subject")
        )
    try:
        action = Action(body.action.name)
    except ValueError as exc:
        raise UnknownTermError("unknown action", attribute="action") from exc
    props = body.resource.properties
    if props.provider is None:
        provider_kind, relation = "none", Relation.NONE
    else:
        provider_kind = _partner_kind(reader, props.provider, "provider")
        relation = Relation.OWN if props.provider == subject.id else Relation.OTHER
    return DecisionRequest(
        partner_id=subject.id,
        partner_kind=kind,
        role=role,
        action=action,
        process=body.context.process,
        step=body.context.step,
        purpose=body.context.purpose,
        category=props.category,
        legal_basis=props.legal_basis,
        provider_kind=provider_kind,
        relation=relation,
        consent=Consent(props.consent),
    )


def evaluate(
    engine: PolicyEngine, reader: Session | Connection, caller: Caller, body: EvaluationRequest
) -> Evaluated | Refused:
    """Return the decision for one evaluation (raises as ``to_request`` and the engine do)."""
    request = to_request(reader, caller, body)
    if isinstance(request, Refused):
        return request
    return Evaluated(request, engine.decide(request), body.context.case_id)


def record(session: Session, caller: Caller, evaluated: Sequence[Evaluated], at: datetime) -> None:
    """Record the evaluated decisions, grouped per case, in the caller's transaction."""
    by_case: dict[str | None, list[tuple[DecisionRequest, Decision]]] = {}
    for item in evaluated:
        by_case.setdefault(item.case_id, []).append((item.request, item.decision))
    for case_id, pairs in by_case.items():
        record_decisions(session, Actor.of(caller), pairs, at, case_id=case_id)
