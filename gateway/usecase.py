"""The seam every use case goes through: ask the policy, record, replay, refuse.

A use case (share a record, submit research rows, approve a proposal, ...) does the same
four things around its own work, and does them here so that they are done one way:

- ``allow_or_refuse`` asks the policy for each decision request; when one is refused it
  records every decision (with its audit entry) in a transaction of its own and raises
  ``PolicyDeniedError``, so a refusal is on the record even though nothing changed.
- ``record`` writes what an allowed change needs beside the change itself: the decisions
  that allowed it and the change's one audit event (which lists those decisions in its
  details), in the caller's transaction, so that the change, its decisions and its audit
  entry commit together or not at all.
  ``record_event`` does the same for a change no policy decision allows (a key rotated,
  a policy version activated, a workbench sign-in): its entry cites no rule.
- ``refusals`` records the other refusals (wrong role, not a participant, not the case's
  RIEC) raised inside a block, then lets them go on to the caller.
- ``check_idempotency_key`` and ``same_content`` are the rules for a retried request: a
  key is 8 to 128 printable characters; a key used before for other content is a conflict,
  and nothing is stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlmodel import Session

from gateway.audit import log as audit_log
from gateway.audit import sequencer
from gateway.audit.events import AuditEvent, AuditEventType, RefValue, SubjectRef, persons_of
from gateway.clock import Clock
from gateway.errors import (
    IdempotencyConflictError,
    InvalidInputError,
    PermissionDeniedError,
    PolicyDeniedError,
)
from gateway.identity.actors import Actor
from gateway.keys.documents import KeyActor
from gateway.policy.decision import Decision, DecisionRequest
from gateway.policy.recording import distinct, folded_details, record_decisions, record_folded

if TYPE_CHECKING:  # the context imports the key ring, whose lifecycle records through here
    from gateway.context import AppContext

DECISIONS = "decisions"
"""The details key under which a change's entry lists the decisions that allowed it."""

__all__ = [
    "DECISIONS",
    "allow_or_refuse",
    "check_idempotency_key",
    "record",
    "record_event",
    "refusals",
    "same_content",
]


def allow_or_refuse(
    ctx: AppContext,
    actor: Actor,
    requests: Sequence[DecisionRequest],
    what: str,
    *,
    case_id: str | None = None,
) -> list[Decision]:
    """Return the allowing decision for each request, in order.

    When any is refused, records all of them (rows and audit entries) in a write of
    its own and raises ``PolicyDeniedError`` (``LegalBasisNotOwnError`` for a basis the
    partner may not invoke) for the first refusal; ``what`` names the action for the
    message ("sharing a record").
    """
    decisions = [ctx.policy.decide(request) for request in requests]
    refused = next((d for d in decisions if not d.allowed), None)
    if refused is not None:
        with ctx.db.write() as session:
            record_decisions(
                session,
                actor,
                zip(requests, decisions, strict=True),
                ctx.clock.now(),
                case_id=case_id,
            )
        raise PolicyDeniedError.of(refused, what)
    return decisions


def record(
    session: Session,
    clock: Clock,
    actor: Actor,
    event_type: AuditEventType,
    *,
    decisions: Iterable[tuple[DecisionRequest, Decision]] = (),
    decision: Decision | None = None,
    case_id: str | None = None,
    step: int | None = None,
    purpose: str | None = None,
    legal_basis: str | None = None,
    subjects: Iterable[str] = (),
    persons: Iterable[Iterable[SubjectRef]] = (),
    parties: Iterable[str] = (),
    refs: Mapping[str, RefValue] | None = None,
    details: dict[str, Any] | None = None,
    decided: bool = True,
    policy_version: str | None = None,
    sequenced: bool = False,
    retention: timedelta = audit_log.DETAILS_RETENTION,
) -> int:
    """Add the decisions and the audit event of one change to ``session``; return its id.

    ``decisions`` are the (request, decision) pairs that allowed the change: each
    distinct one is a ``policy_decisions`` row naming this entry and an item of the
    entry's details under ``DECISIONS`` (one entry per change, not one per decision);
    ``decision`` is the one the event cites (its policy version and rule go
    into the entry; defaults to the last of ``decisions``). ``persons`` names the data
    subjects by person, each a group of (identifier type, keyed index) of one person
    (groups sharing a key are one person); their keys join ``subjects``, which names
    keys of unknown type. The actor's own partner is
    always among the parties. Nothing is committed here: the caller's ``ctx.db.write()``
    block commits the change, its decisions and this entry as one transaction. The
    entry's time and the decisions' are ``clock.now()``. ``decided=False`` is for a
    change no policy decides (the partner registry's): its entry names no rule and no
    parties beyond ``parties``, as such entries always have; ``policy_version`` names the
    policy in force for an entry that cites no decision (e.g. a retention deletion).

    The entry is appended as pending and gets its leaf index when the sequencer
    integrates it (``gateway.audit.sequencer``); the id returned names it until then.
    ``sequenced=True`` is for a change whose own row must carry the leaf index (a
    release's or consent's receipt): the entry is integrated in this transaction and
    its leaf index is returned. ``retention`` is how long the entry's details and
    subject index rows are kept: ``ctx.retention.period(categories)`` of the data
    categories it concerns (default four years).
    """
    given = list(decisions)
    pairs = distinct(given)
    at = clock.now()
    cited = decision if decision is not None else (given[-1][1] if given else None)
    own = {actor.partner_id} if actor.partner_id and decided else set()
    grouped = persons_of(persons)
    keys = set(subjects) | {key for person in grouped for _, key in person}
    if pairs:
        details = {**(details or {}), DECISIONS: folded_details(pairs)}
    entry_id = audit_log.append(
        session,
        retention=retention,
        event=AuditEvent(
            type=event_type,
            at=at,
            actor_principal=actor.principal_id,
            actor_partner=actor.partner_id,
            case_id=case_id,
            step=step,
            purpose=purpose,
            legal_basis=legal_basis,
            policy_version=cited.policy_version if cited else policy_version,
            subjects=tuple(sorted(keys)),
            persons=grouped,
            parties=tuple(sorted(set(parties) | own)),
            refs={**(refs or {}), "rule": cited.rule_id if cited else None}
            if decided
            else dict(refs or {}),
            details=details,
        ),
    )
    if pairs:
        record_folded(session, actor, pairs, at, entry_id, case_id=case_id)
    return sequencer.sequence(session, entry_id) if sequenced else entry_id


def record_event(
    session: Session,
    clock: Clock,
    actor: KeyActor,
    event_type: AuditEventType,
    *,
    case_id: str | None = None,
    policy_version: str | None = None,
    refs: Mapping[str, RefValue] | None = None,
    details: dict[str, Any] | None = None,
) -> int:
    """Add the audit event of a change that no policy decision allowed; return its leaf.

    The entry names the actor, the case and ``policy_version`` if given, and ``refs``;
    no rule and no parties (nothing was decided about a partner). Like ``record``,
    nothing is committed here.
    """
    return audit_log.append(
        session,
        AuditEvent(
            type=event_type,
            at=clock.now(),
            actor_principal=actor.principal_id,
            actor_partner=actor.partner_id,
            case_id=case_id,
            policy_version=policy_version,
            refs=dict(refs or {}),
            details=details,
        ),
    )


@contextmanager
def refusals(
    ctx: AppContext,
    actor: Actor,
    *,
    case_id: str | None = None,
    refs: Mapping[str, RefValue] | None = None,
) -> Iterator[None]:
    """Audit a refusal raised inside the block, then let it go on to the caller.

    Policy refusals are recorded where they are decided (``allow_or_refuse``); this
    records the others (wrong role, not a participant) in a transaction of their own.
    Enter it before any read session, so that session is closed before the refusal is
    written. ``refs`` are added to the entry (e.g. the caller's role).
    """
    try:
        yield
    except PermissionDeniedError as exc:
        if not isinstance(exc, PolicyDeniedError):
            with ctx.db.write() as session:
                audit_log.append(
                    session,
                    AuditEvent(
                        type=AuditEventType.ACCESS_REFUSE,
                        at=ctx.clock.now(),
                        actor_principal=actor.principal_id,
                        actor_partner=actor.partner_id,
                        case_id=case_id,
                        refs={"refusal": exc.code, **(refs or {})},
                    ),
                )
        raise


def check_idempotency_key(key: str) -> None:
    """Raise InvalidInputError unless ``key`` is 8 to 128 printable characters."""
    if not 8 <= len(key) <= 128 or not key.isprintable():
        raise InvalidInputError(
            "the Idempotency-Key header must be 8 to 128 printable characters",
            field="Idempotency-Key",
        )


def same_content(stored_content_key: str, content_key: str) -> None:
    """Raise IdempotencyConflictError when a key's earlier content differs from this one."""
    if stored_content_key != content_key:
        raise IdempotencyConflictError(
            "this Idempotency-Key was used before for different content; nothing was stored"
        )
