"""The AuthZEN adapter: map an evaluation to a DecisionRequest, decide, record.

Who asks decides what may be asked: a caller asks about its own partner (with its own
role), unless it is a riec-analyst or a privacy-officer; those may ask about any
registered partner, whose kind then comes from the registry and whose role they name
in ``subject.properties.role``. Nothing about the subject is taken from the caller's word.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from gateway.authzen.schemas import EvaluationRequest
from gateway.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from gateway.identity.service import Actor, Caller
from gateway.models.partners import Partner
from gateway.policy.decision import Action, Consent, Decision, DecisionRequest, Relation
from gateway.policy.engine import PolicyEngine, UnknownTermError
from gateway.policy.recording import record_decisions
from gateway.vocabulary import Role

PRIVILEGED = frozenset({Role.RIEC_ANALYST, Role.PRIVACY_OFFICER})


@dataclass(frozen=True, slots=True)
class Evaluated:
    """A request the engine answered, with the case it was asked for (if any)."""

    request: DecisionRequest
    decision: Decision
    case_id: str | None


def _partner(session: Session, partner_id: str, what: str) -> Partner:
    partner = session.get(Partner, partner_id)
    if partner is None or not partner.active:
        raise NotFoundError(f"the {what} is not an active registered partner", member=what)
    return partner


def to_request(session: Session, caller: Caller, body: EvaluationRequest) -> DecisionRequest:
    """Return the decision request for an AuthZEN evaluation by ``caller``.

    Raises PermissionDeniedError (a partner asking about another partner, or about a
    role it does not have), NotFoundError (unknown subject or provider partner) and
    InvalidInputError/UnknownTermError (unknown action, role or other name).
    """
    subject = body.subject
    asked_role = subject.properties.role
    privileged = caller.role in PRIVILEGED
    if subject.id != caller.partner_id and not privileged:
        raise PermissionDeniedError(
            "a partner may ask only about itself; riec-analysts and privacy officers may "
            "ask about other partners"
        )
    if subject.id == caller.partner_id and asked_role is None:
        kind, role = caller.partner_kind, caller.role.value
    elif not privileged:
        if asked_role != caller.role.value:
            raise PermissionDeniedError("a partner may ask only about its own role")
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
            else _partner(session, subject.id, "subject").kind
        )
    try:
        action = Action(body.action.name)
    except ValueError as exc:
        raise UnknownTermError("unknown action", attribute="action") from exc
    props = body.resource.properties
    if props.provider is None:
        provider_kind, relation = "none", Relation.NONE
    else:
        provider_kind = _partner(session, props.provider, "provider").kind
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
    engine: PolicyEngine, session: Session, caller: Caller, body: EvaluationRequest
) -> Evaluated:
    """Return the decision for one evaluation (raises as ``to_request`` and the engine do)."""
    request = to_request(session, caller, body)
    return Evaluated(request, engine.decide(request), body.context.case_id)


def record(session: Session, caller: Caller, evaluated: Sequence[Evaluated], at: datetime) -> None:
    """Record the evaluated decisions, grouped per case, in the caller's transaction."""
    by_case: dict[str | None, list[tuple[DecisionRequest, Decision]]] = {}
    for item in evaluated:
        by_case.setdefault(item.case_id, []).append((item.request, item.decision))
    for case_id, pairs in by_case.items():
        record_decisions(session, Actor.of(caller), pairs, at, case_id=case_id)
