"""Who may act on a case, and how a case use case asks, refuses and records.

Loading a case checks that the caller's partner takes part in it; the role checks say
which roles see case data and which RIEC steers a case. ``decide`` builds the policy's
question from a case and the caller; ``allow``, ``refusals`` and ``record_in_case`` are
the workflow's side of the use-case seam (``gateway.usecase``): an audit entry of a case
names the case, its step, and its purpose and legal basis unless the change says others.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, FromClause, Select, and_, bindparam
from sqlalchemy import select as core_select
from sqlmodel import Session, col, select

from gateway import usecase
from gateway.audit.events import AuditEventType, RefValue, SubjectRef
from gateway.context import AppContext
from gateway.db import table_of
from gateway.errors import InvalidInputError, KeyShreddedError, NotFoundError
from gateway.identity.actors import Actor, Caller
from gateway.keys import KeyKind
from gateway.models.cases import Case, CaseParticipant, CaseStatus
from gateway.policy.decision import NONE, Action, Consent, Decision, DecisionRequest, Relation
from gateway.vocabulary import Role
from gateway.workflow.errors import (
    NotCaseRiecError,
    NotParticipantError,
    RoleNotInCaseError,
    TransitionNotAllowedError,
)
from gateway.workflow.subjects import Subject, subject, unique

SIGNAL_PURPOSE = "signaalbeoordeling"
# The roles that work in a case and read its content; privacy officers see only its state.
# Operators and researchers have no business with case data at all.
CASE_ROLES = frozenset({Role.PARTNER_SYSTEM, Role.ANALYST, Role.RIEC_ANALYST})
CASE_VIEW_ROLES = CASE_ROLES | {Role.PRIVACY_OFFICER}


@dataclass(frozen=True, slots=True)
class SubjectIn:
    """An identifier as given by a caller: its type and value.

    ``person``: identifiers given with the same number name the same person (one line
    per person in the processing log); None: a person of its own.
    """

    id_type: str
    value: str
    person: int | None = None


def new_id(prefix: str) -> str:
    """Return a random, unguessable id such as ``case-3f9a...`` (no personal data)."""
    return f"{prefix}-{secrets.token_hex(10)}"


def next_seq(case: Case) -> int:
    """Return the case's next sequence number (the caller holds the case row's lock)."""
    case.seq += 1
    return case.seq


# Built once: building the ORM statement cost twice what running it does.
_CASE = (
    select(Case, col(CaseParticipant.partner_id))
    .outerjoin(
        CaseParticipant,
        and_(
            col(CaseParticipant.case_id) == col(Case.id),
            col(CaseParticipant.partner_id) == bindparam("partner_id"),
        ),
    )
    .where(col(Case.id) == bindparam("case_id"))
)
_CASE_LOCKED = _CASE.with_for_update(of=Case)  # the case row only, not the nullable side


def load_case(session: Session, case_id: str, caller: Caller, *, lock: bool = False) -> Case:
    """Return the case (row-locked if ``lock``) when the caller's partner takes part in it.

    One query: the case with the caller's participation. Raises NotFoundError for an
    unknown case, NotParticipantError for a non-participant.
    """
    query = _CASE_LOCKED if lock else _CASE
    params = {"case_id": case_id, "partner_id": caller.partner_id}
    case, _ = _taking_part(session.exec(query, params=params).one_or_none(), case_id)
    return case


@dataclass(frozen=True, slots=True)
class CaseState:
    """What a use case that only reads a case needs of it: its state, not a tracked row."""

    id: str
    process: str
    step: int
    status: CaseStatus
    riec_partner_id: str
    purpose: str | None
    legal_basis: str | None


_CASES = table_of(Case)
_PARTICIPANTS = table_of(CaseParticipant)
# Core, not the ORM: loading an entity cost three times the query (the records paths
# read a case on every request and change nothing in it).
_CASE_STATE_COLUMNS = (
    _CASES.c.id,
    _CASES.c.process,
    _CASES.c.step,
    _CASES.c.status,
    _CASES.c.riec_partner_id,
    _CASES.c.purpose,
    _CASES.c.legal_basis,
    _PARTICIPANTS.c.partner_id,  # the caller's partner if it takes part, else NULL
)
_CASE_WITH_CALLER = _CASES.outerjoin(
    _PARTICIPANTS,
    and_(
        _PARTICIPANTS.c.case_id == _CASES.c.id,
        _PARTICIPANTS.c.partner_id == bindparam("partner_id"),
    ),
)
_CASE_STATE = (
    core_select(*_CASE_STATE_COLUMNS)
    .select_from(_CASE_WITH_CALLER)
    .where(_CASES.c.id == bindparam("case_id"))
)
# FOR SHARE (PostgreSQL): a use case that adds to a case without changing its row keeps
# the step and status from changing under it (``load_case(lock=True)`` waits for it),
# while others adding to the same case go on at once instead of queueing.
_CASE_STATE_LOCKED = _CASE_STATE.with_for_update(of=_CASES, read=True)


def case_state(session: Session, case_id: str, caller: Caller, *, lock: bool = False) -> CaseState:
    """Return the case's state (share-locked if ``lock``) when the caller's partner takes part.

    The same check and errors as ``load_case``, for a use case that does not change the
    case row: NotFoundError for an unknown case, NotParticipantError for a non-participant.
    With ``lock`` the row cannot change until the transaction ends, but other share
    locks are granted meanwhile; never update the row in the same transaction (two
    holders upgrading would deadlock).
    """
    query = _CASE_STATE_LOCKED if lock else _CASE_STATE
    params = {"case_id": case_id, "partner_id": caller.partner_id}
    return state_of(session.connection().execute(query, params).one_or_none(), case_id)


def with_case_state(join: FromClause, on: ColumnElement[bool], *columns: Any) -> Select[Any]:
    """Return one statement for a case's state and, for a participant only, more rows.

    Each row starts with the case state columns (for ``state_of``), then ``columns`` of
    ``join``, outer-joined ``on`` (a condition on the case) for a caller whose partner
    takes part, else NULL. Parameters ``case_id`` and ``partner_id``.
    """
    taking_part = _PARTICIPANTS.c.partner_id.is_not(None)
    return (
        core_select(*_CASE_STATE_COLUMNS, *columns)
        .select_from(_CASE_WITH_CALLER.outerjoin(join, and_(on, taking_part)))
        .where(_CASES.c.id == bindparam("case_id"))
    )


def state_of(found: Sequence[Any] | None, case_id: str) -> CaseState:
    """Return the case state at the start of a row found by ``with_case_state``.

    Raises NotFoundError for an unknown case, NotParticipantError for a non-participant.
    """
    return CaseState(*_taking_part(found, case_id, _PARTICIPATION)[:_PARTICIPATION])


_PARTICIPATION = len(_CASE_STATE_COLUMNS) - 1


_Found = TypeVar("_Found", bound=Sequence[object])


def _taking_part(found: _Found | None, case_id: str, at: int = -1) -> _Found:
    """Return the case row found with the caller's participation (its column ``at``).

    Raises NotFoundError when no case was found, NotParticipantError when the caller's
    partner does not take part in it.
    """
    if found is None:
        raise NotFoundError("no such case", field="case_id")
    if found[at] is None:
        raise NotParticipantError("only partners taking part in a case can act on it", case=case_id)
    return found


def participants(session: Session, case_id: str) -> list[str]:
    """Return the ids of the partners taking part in the case, sorted."""
    return list(
        session.exec(
            select(CaseParticipant.partner_id)
            .where(CaseParticipant.case_id == case_id)
            .order_by(col(CaseParticipant.partner_id))
        ).all()
    )


def role_may_read(caller: Caller, roles: frozenset[Role]) -> None:
    """Raise RoleNotInCaseError unless the caller's role reads this kind of case data."""
    if caller.role not in roles:
        raise RoleNotInCaseError(f"the role {caller.role.value} has no access to case data")


def steers(caller: Caller, case: Case) -> None:
    """Raise NotCaseRiecError for a RIEC that takes part in a case another RIEC runs.

    The policy names the RIEC by its kind; which RIEC runs this case is the case's.
    """
    if caller.partner_kind == "riec" and caller.partner_id != case.riec_partner_id:
        raise NotCaseRiecError(
            "only the RIEC running this case adds partners, asks hit/no-hit, records "
            "the go decision, writes its outputs and moves it between steps",
            case=case.id,
        )


def must_be_open(case: Case | CaseState) -> None:
    """Raise TransitionNotAllowedError unless the case is open."""
    if case.status != CaseStatus.OPEN:
        raise TransitionNotAllowedError("the case is closed; it cannot change any more")


def readable(ctx: AppContext, case: Case | CaseState) -> None:
    """Raise KeyShreddedError for a shredded case, saying who shredded it and when."""
    if case.status == CaseStatus.SHREDDED:
        recorded = ctx.keys.shredded_error(KeyKind.CASE, case.id)
        if recorded is not None:
            raise recorded
        raise KeyShreddedError(
            "this case reached the end of its retention period: its key was destroyed "
            "and its content can no longer be read by anyone",
            case=case.id,
        )


def known_term(ctx: AppContext, dimension: str, value: str) -> None:
    """Raise InvalidInputError (naming ``dimension``) for a term the vocabulary lacks."""
    problem = ctx.policy.compiled.vocabulary.unknown(dimension, value)
    if problem is not None:
        raise InvalidInputError(problem, field=dimension)


def subjects_of_input(ctx: AppContext, given: Iterable[SubjectIn]) -> list[Subject]:
    """Return the keyed subjects of the given identifiers, once each."""
    return unique(subject(ctx.keys, s.id_type, s.value) for s in given)


def persons_of_input(ctx: AppContext, given: Sequence[SubjectIn]) -> list[list[SubjectRef]]:
    """Return the given identifiers' (type, keyed index) grouped by their ``person`` number.

    Identifiers without a number are each a person of their own.
    """
    groups: dict[object, list[SubjectRef]] = {}
    for n, item in enumerate(given):
        found = subject(ctx.keys, item.id_type, item.value)
        label: object = ("own", n) if item.person is None else item.person
        groups.setdefault(label, []).append((found.id_type, found.key))
    return list(groups.values())


def decide(
    caller: Caller,
    action: Action,
    case: Case | CaseState | None,
    *,
    process: str | None = None,
    step: int | None = None,
    purpose: str | None = None,
    category: str = NONE,
    legal_basis: str = NONE,
    provider_kind: str = NONE,
    relation: Relation = Relation.NONE,
    consent: Consent = Consent.NOT_NEEDED,
) -> DecisionRequest:
    """Return the policy's question for ``caller`` doing ``action`` in ``case``.

    Process, step and purpose default to the case's (``none`` without a case).
    """
    return DecisionRequest(
        partner_id=caller.partner_id,
        partner_kind=caller.partner_kind,
        role=caller.role.value,
        action=action,
        process=process or (case.process if case else NONE),
        step=step if step is not None else (case.step if case else None),
        purpose=purpose or (case.purpose if case and case.purpose else NONE),
        category=category,
        legal_basis=legal_basis,
        provider_kind=provider_kind,
        relation=relation,
        consent=consent,
    )


def allow(
    ctx: AppContext, caller: Caller, request: DecisionRequest, what: str, case_id: str | None
) -> Decision:
    """Return the allowing decision; a refusal is recorded and raised as PolicyDeniedError."""
    return usecase.allow_or_refuse(ctx, Actor.of(caller), [request], what, case_id=case_id)[0]


@contextmanager
def refusals(ctx: AppContext, caller: Caller, case_id: str | None) -> Iterator[None]:
    """Audit a refusal (wrong role, not a participant) raised inside, naming the role."""
    with usecase.refusals(ctx, Actor.of(caller), case_id=case_id, refs={"role": caller.role.value}):
        yield


def record_in_case(
    session: Session,
    ctx: AppContext,
    caller: Caller,
    event_type: AuditEventType,
    case: Case | CaseState | None,
    *,
    decisions: Sequence[tuple[DecisionRequest, Decision]] = (),
    decision: Decision | None = None,
    purpose: str | None = None,
    legal_basis: str | None = None,
    subjects: Iterable[str] = (),
    persons: Iterable[Iterable[SubjectRef]] = (),
    parties: Iterable[str] = (),
    refs: Mapping[str, RefValue] | None = None,
    details: dict[str, object] | None = None,
    categories: Iterable[str] = (),
) -> int:
    """Add the decisions and the audit event of a case change to ``session``; return its leaf.

    Through ``usecase.record``: the entry names the case and its step, and its purpose
    and legal basis unless ``purpose``/``legal_basis`` say others; the caller's write
    block commits it with the change. Its details and subject index rows are kept for
    the retention of the data categories it concerns: ``categories``, those the decisions
    were about, and ``refs["category"]``.
    """
    concerned = {*categories, *(r.category for r, _ in decisions)}
    if refs is not None and isinstance(refs.get("category"), str):
        concerned.add(str(refs["category"]))
    concerned.discard(NONE)
    return usecase.record(
        session,
        ctx.clock,
        Actor.of(caller),
        event_type,
        decisions=decisions,
        decision=decision,
        case_id=case.id if case else None,
        step=case.step if case else None,
        purpose=purpose or (case.purpose if case else None),
        legal_basis=legal_basis or (case.legal_basis if case else None),
        subjects=subjects,
        persons=persons,
        parties=parties,
        refs=refs,
        details=details,
        retention=ctx.retention.period(sorted(concerned)),
    )
