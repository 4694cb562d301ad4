"""Deciding on a policy proposal: who may, approving (which activates it) and rejecting.

Another person than the proposer, a privacy officer of the partner that owns the pack
(``pack.yaml``), approves or rejects. ``decision_refusal`` is the one place that says who
may decide; the API and the workbench both go through ``approve`` and ``reject``, which
audit a refusal, and show a proposal with ``describe`` (its lint result, its diff
against the active version, and whether the viewer may decide).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, select

from gateway.audit.events import AuditEventType
from gateway.clock import Clock
from gateway.db import Database
from gateway.errors import GatewayError, InvalidInputError, NotFoundError, PermissionDeniedError
from gateway.identity.service import Actor, Caller
from gateway.models.partners import Principal
from gateway.models.policy_versions import (
    PolicyProposal,
    PolicyVersion,
    ProposalStatus,
    VersionOrigin,
)
from gateway.policy import versions
from gateway.policy.diff import PolicyDiff, diff_packs
from gateway.policy.errors import (
    FourEyesViolationError,
    NoActiveVersionError,
    NotAnApproverError,
    ProposalNotOpenError,
    ProposalStaleError,
    problems_json,
)
from gateway.policy.pack import Pack, analyse_pack, pack_owner
from gateway.policy.proposals import (
    MAX_DESCRIPTION,
    checked_pack,
    get_proposal,
    record_proposal_event,
)
from gateway.yamlsource import SourceError


@dataclass(frozen=True, slots=True)
class Deciders:
    """What ``decision_refusal`` needs to know beyond the proposal and the caller.

    ``owner`` is the partner whose pack it is (its privacy officers decide), None if no
    pack names one; the person keys are the keyed hashes of the proposer's and the
    caller's persons (None when a principal names none; the proposer may also be the
    host's installer, ``proposer_is_principal`` False, who is no person).
    """

    owner: str | None
    proposer_person: str | None
    caller_person: str | None
    proposer_is_principal: bool


def deciders(session: Session, proposal: PolicyProposal, caller: Caller) -> Deciders:
    """Return who owns the active pack and which persons proposed and ask to decide.

    The owner is the active version's; only while it names none (a pack from before
    ``pack.yaml``) the proposal's own, which only the host's installer can set.
    """
    active_pack = versions.pack_of(versions.active_version(session))
    try:
        owner = pack_owner(active_pack) or pack_owner(Pack.from_json(proposal.sources))
    except SourceError:
        owner = None
    proposer = session.get(Principal, proposal.proposer_principal_id)
    me = session.get(Principal, caller.principal_id)
    return Deciders(
        owner=owner,
        proposer_person=proposer.person_key if proposer else None,
        caller_person=me.person_key if me else None,
        proposer_is_principal=proposer is not None,
    )


@dataclass(frozen=True)
class ProposalView:
    """A proposal as people deciding on it see it."""

    proposal: PolicyProposal
    lint: dict[str, Any]
    changed_files: list[str]
    active_version_id: int
    diff: PolicyDiff | None
    stale: bool
    approve_refusal: GatewayError | None
    reject_refusal: GatewayError | None


def decision_refusal(
    proposal: PolicyProposal,
    caller: Caller,
    *,
    active_version_id: int,
    approving: bool,
    people: Deciders,
) -> GatewayError | None:
    """Return why ``caller`` may not approve (or reject) ``proposal`` now, or None if they may.

    The one place that encodes who decides: never the proposer (the same principal,
    whichever token it uses, nor the same person under another principal, at any
    partner), only a privacy officer of the partner that owns the pack, only one whose
    person is known (so that four eyes are two people), only an open proposal, and
    approval only while the version it was based on is still active.
    """
    four_eyes = (
        "you proposed this change, so another person, a privacy officer of the pack's "
        "owner, must approve or reject it (four-eyes principle)"
    )
    if caller.principal_id == proposal.proposer_principal_id:
        return FourEyesViolationError(four_eyes)
    if people.caller_person is not None and people.caller_person == people.proposer_person:
        return FourEyesViolationError(four_eyes + "; your principals are one person")
    if people.owner is None:
        return NotAnApproverError(
            "the active policy pack names no owner (pack.yaml), so nobody can approve or "
            "reject; the host's installer proposes a pack that names one"
        )
    if caller.partner_id != people.owner:
        return NotAnApproverError(
            f"only a privacy officer of {people.owner}, whose policy pack this is, approves "
            "or rejects policy proposals; other partners' privacy officers propose and review"
        )
    if people.caller_person is None:
        return NotAnApproverError(
            "your principal names no person, so the gateway cannot tell that four eyes "
            "are two people; ask your operator for a principal that names you"
        )
    if approving and people.proposer_is_principal and people.proposer_person is None:
        return NotAnApproverError(
            "the proposer's principal names no person, so the gateway cannot tell that you "
            "are someone else; reject it and ask for a proposal by a principal that names one"
        )
    if proposal.status != ProposalStatus.OPEN:
        return ProposalNotOpenError(
            f"proposal {proposal.id} is already {proposal.status}",
            proposal_status=proposal.status,
        )
    if approving and proposal.base_version_id != active_version_id:
        return ProposalStaleError(
            f"policy version {active_version_id} became active after proposal {proposal.id} "
            f"was made on version {proposal.base_version_id}; approving it would undo that "
            "change, so reject it and propose again",
            active_version=active_version_id,
        )
    return None


def _refuse(
    db: Database,
    clock: Clock,
    caller: Caller,
    proposal: PolicyProposal,
    refusal: GatewayError,
    *,
    approving: bool,
) -> GatewayError:
    """Audit a permission refusal in a transaction of its own; return the error to raise."""
    if isinstance(refusal, PermissionDeniedError):
        with db.write() as session:
            record_proposal_event(
                session,
                clock,
                Actor.of(caller),
                AuditEventType.POLICY_PROPOSAL_REFUSE,
                proposal,
                attempt="approve" if approving else "reject",
                reason=refusal.code,
            )
    return refusal


def describe(session: Session, proposal_id: int, viewer: Caller) -> ProposalView:
    """Return a proposal with its lint result, its diff against the active version, and
    whether ``viewer`` may approve or reject it (and if not, why)."""
    proposal = get_proposal(session, proposal_id)
    active = versions.active_version(session)
    assert active.id is not None
    pack = Pack.from_json(proposal.sources)
    lint = json.loads(proposal.lint)
    diff: PolicyDiff | None
    try:
        diff = diff_packs(analyse_pack(versions.pack_of(active)), analyse_pack(pack))
    except SourceError as exc:
        diff = None
        lint = {**lint, "compiles": False, "problems": problems_json(exc)}
    people = deciders(session, proposal, viewer)
    return ProposalView(
        proposal=proposal,
        lint=lint,
        changed_files=json.loads(proposal.changed_files),
        active_version_id=active.id,
        diff=diff,
        stale=proposal.status == ProposalStatus.OPEN and proposal.base_version_id != active.id,
        approve_refusal=decision_refusal(
            proposal, viewer, active_version_id=active.id, approving=True, people=people
        ),
        reject_refusal=decision_refusal(
            proposal, viewer, active_version_id=active.id, approving=False, people=people
        ),
    )


def _locked_proposal(session: Session, proposal_id: int) -> PolicyProposal:
    proposal = session.exec(
        select(PolicyProposal)
        .where(PolicyProposal.id == proposal_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if proposal is None:
        raise NotFoundError(f"no proposal {proposal_id}", proposal=proposal_id)
    return proposal


def approve(
    db: Database, clock: Clock, caller: Caller, proposal_id: int, *, note: str = ""
) -> PolicyVersion:
    """Approve a proposal and activate its version (new, or the earlier one it restores).

    Raises FourEyesViolationError, NotAnApproverError, ProposalNotOpenError,
    ProposalStaleError (see ``decision_refusal``), NotFoundError, and
    ProposalNotCompilableError if this gateway cannot compile it any more.
    """
    with db.read() as session:
        pack = Pack.from_json(get_proposal(session, proposal_id).sources)
    checked = checked_pack(pack)  # compiled before the write lock is taken (cached normally)
    with db.write() as session:
        current = versions.pointer(session, lock=True)  # serialises activations
        proposal = _locked_proposal(session, proposal_id)
        if current is None:
            raise NoActiveVersionError()
        refusal = decision_refusal(
            proposal,
            caller,
            active_version_id=current.version_id,
            approving=True,
            people=deciders(session, proposal, caller),
        )
        if refusal is None:
            assert proposal.id is not None
            actor = Actor.of(caller)
            version = versions.find_or_create(
                session,
                clock,
                actor,
                pack,
                checked.compiled,
                origin=VersionOrigin.PROPOSAL,
                proposal_id=proposal.id,
            )
            versions.activate(session, clock, actor, version, proposal_id=proposal.id)
            proposal.status = ProposalStatus.APPROVED.value
            proposal.decided_by_principal_id = caller.principal_id
            proposal.decided_by_partner_id = caller.partner_id
            proposal.decided_at = clock.now()
            proposal.decision_note = note.strip() or None
            proposal.result_version_id = version.id
            session.add(proposal)
            record_proposal_event(
                session,
                clock,
                actor,
                AuditEventType.POLICY_PROPOSAL_APPROVE,
                proposal,
                details={"note": note.strip()} if note.strip() else None,
                proposer=proposal.proposer_principal_id,
                version=version.id,
            )
            return version
    assert refusal is not None
    raise _refuse(db, clock, caller, proposal, refusal, approving=True)


def reject(
    db: Database, clock: Clock, caller: Caller, proposal_id: int, *, note: str = ""
) -> PolicyProposal:
    """Reject an open proposal. Raises as ``decision_refusal`` says, or NotFoundError."""
    if len(note) > MAX_DESCRIPTION:
        raise InvalidInputError(f"a note has at most {MAX_DESCRIPTION} characters", field="note")
    with db.write() as session:
        current = versions.pointer(session)
        proposal = _locked_proposal(session, proposal_id)
        refusal = decision_refusal(
            proposal,
            caller,
            active_version_id=current.version_id if current else -1,
            approving=False,
            people=deciders(session, proposal, caller),
        )
        if refusal is None:
            proposal.status = ProposalStatus.REJECTED.value
            proposal.decided_by_principal_id = caller.principal_id
            proposal.decided_by_partner_id = caller.partner_id
            proposal.decided_at = clock.now()
            proposal.decision_note = note.strip() or None
            session.add(proposal)
            record_proposal_event(
                session,
                clock,
                Actor.of(caller),
                AuditEventType.POLICY_PROPOSAL_REJECT,
                proposal,
                details={"note": note.strip()} if note.strip() else None,
                proposer=proposal.proposer_principal_id,
            )
            return proposal
    assert refusal is not None
    raise _refuse(db, clock, caller, proposal, refusal, approving=False)
