"""Proposals: change the policy only with a second privacy officer's approval.

A privacy officer proposes edited rule, table or agreement files (or an earlier version,
for a rollback). The proposal is checked like the shipped pack and is stored only if it
compiles; anyone deciding sees its lint result, its diff against the active version and
a simulation over recorded requests. Another person, a privacy officer of the partner
that owns the pack (``pack.yaml``), approves (which activates it) or rejects it.
``decision_refusal`` is the one place that says who may decide; the API and the
workbench both go through ``approve`` and ``reject``, which audit a refusal.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from gateway.audit import log as audit_log
from gateway.audit.events import AuditEvent, AuditEventType, RefValue
from gateway.clock import Clock
from gateway.db import Database
from gateway.errors import (
    ConflictError,
    GatewayError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from gateway.identity.service import Actor, Caller
from gateway.models.partners import Principal
from gateway.models.policy import PolicyDecisionRecord
from gateway.models.policy_versions import (
    PolicyProposal,
    PolicyVersion,
    ProposalKind,
    ProposalStatus,
    VersionOrigin,
)
from gateway.policy import versions
from gateway.policy.diff import PolicyDiff, diff_packs
from gateway.policy.pack import (
    CheckedPack,
    Pack,
    analyse_pack,
    check_pack,
    engine_for,
    pack_owner,
)
from gateway.policy.pack import problems_json as _problems_json
from gateway.policy.recording import recorded_decisions
from gateway.policy.simulate import Simulation, check_period, replay
from gateway.yamlsource import SourceError

MAX_TITLE = 200
MAX_DESCRIPTION = 4000
MAX_REPLAY = 200_000
"""Recorded decisions one simulation replays at most; choose a shorter period beyond it."""


class ProposalNotCompilableError(InvalidInputError):
    """The proposed pack does not compile or lint; nothing was stored."""

    code = "proposal-not-compilable"
    title = "Proposal does not compile"

    def __init__(self, exc: SourceError) -> None:
        super().__init__(
            f"the proposed policy has {len(exc.problems)} problem(s) and was not stored; "
            "fix them and propose again",
            problems=_problems_json(exc),
            lint=[str(p) for p in exc.problems],
        )


class ProposalUnchangedError(InvalidInputError):
    """The proposal would change nothing: its files equal the active version's."""

    code = "proposal-unchanged"
    title = "Proposal changes nothing"


class FourEyesViolationError(PermissionDeniedError):
    """The proposer tried to approve or reject their own proposal."""

    code = "four-eyes-violation"
    title = "Four-eyes principle"


class NotAnApproverError(PermissionDeniedError):
    """The caller is a privacy officer, but not one who may decide on proposals."""

    code = "not-an-approver"
    title = "Not an approver"


class ProposalNotOpenError(ConflictError):
    """The proposal was already approved or rejected."""

    code = "proposal-not-open"
    title = "Proposal not open"


class ProposalStaleError(ConflictError):
    """Another version became active after the proposal was made; approving it would undo that."""

    code = "proposal-stale"
    title = "Proposal out of date"


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


def _audit(
    session: Session,
    clock: Clock,
    actor: Actor,
    event_type: AuditEventType,
    proposal: PolicyProposal,
    *,
    details: dict[str, Any] | None = None,
    **refs: RefValue,
) -> None:
    audit_log.append(
        session,
        AuditEvent(
            type=event_type,
            at=clock.now(),
            actor_principal=actor.principal_id,
            actor_partner=actor.partner_id,
            policy_version=proposal.policy_version,
            refs={"proposal": proposal.id, "kind": proposal.kind, **refs},
            details=details,
        ),
    )


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
            _audit(
                session,
                clock,
                Actor.of(caller),
                AuditEventType.POLICY_PROPOSAL_REFUSE,
                proposal,
                attempt="approve" if approving else "reject",
                reason=refusal.code,
            )
    return refusal


def _check(pack: Pack) -> CheckedPack:
    try:
        return check_pack(pack)
    except SourceError as exc:
        raise ProposalNotCompilableError(exc) from exc


def lint_changes(session: Session, changes: Mapping[str, str | None]) -> CheckedPack:
    """Return the lint result of the active pack with ``changes`` applied, storing nothing.

    Raises ProposalNotCompilableError, ProposalUnchangedError or InvalidInputError.
    """
    base = versions.pack_of(versions.active_version(session))
    pack = base.with_changes(changes)
    if pack.sha256 == base.sha256:
        raise ProposalUnchangedError("the proposal changes no file of the active version")
    return _check(pack)


def _clean_text(title: str, description: str) -> tuple[str, str]:
    title = " ".join(title.split())
    if not title:
        raise InvalidInputError("give the proposal a title", field="title")
    if len(title) > MAX_TITLE:
        raise InvalidInputError(f"a title has at most {MAX_TITLE} characters", field="title")
    description = description.strip()
    if len(description) > MAX_DESCRIPTION:
        raise InvalidInputError(
            f"a description has at most {MAX_DESCRIPTION} characters", field="description"
        )
    return title, description


def _store(
    db: Database,
    clock: Clock,
    actor: Actor,
    *,
    kind: ProposalKind,
    title: str,
    description: str,
    base: PolicyVersion,
    pack: Pack,
    checked: CheckedPack,
    rollback_to: int | None = None,
) -> PolicyProposal:
    assert base.id is not None
    changed = pack.changed_paths(versions.pack_of(base))
    with db.write() as session:
        proposal = PolicyProposal(
            kind=kind.value,
            status=ProposalStatus.OPEN.value,
            title=title,
            description=description,
            proposer_principal_id=actor.principal_id,
            proposer_partner_id=actor.partner_id,
            created_at=clock.now(),
            base_version_id=base.id,
            rollback_to_version_id=rollback_to,
            sources=pack.to_json(),
            sources_sha256=pack.sha256,
            policy_version=checked.compiled.version,
            changed_files=json.dumps(changed),
            lint=json.dumps(checked.summary(), ensure_ascii=False),
        )
        session.add(proposal)
        session.flush()
        _audit(
            session,
            clock,
            actor,
            AuditEventType.POLICY_PROPOSAL_CREATE,
            proposal,
            details={"title": title, "changed_files": changed},
            base_version=base.id,
            rollback_to=rollback_to,
            sources_sha256=pack.sha256,
            table_failures=len(checked.table_failures),
        )
    return proposal


def create_proposal(
    db: Database,
    clock: Clock,
    caller: Caller,
    *,
    title: str,
    description: str,
    changes: Mapping[str, str | None],
) -> PolicyProposal:
    """Store a proposal: the active pack with ``changes`` (path -> text, None deletes).

    Raises InvalidInputError (title, paths, sizes), ProposalUnchangedError, and
    ProposalNotCompilableError with every ``file:line: message`` (nothing is stored).
    The caller must be a privacy officer (checked by the route's typed caller).
    """
    title, description = _clean_text(title, description)
    if not changes:
        raise ProposalUnchangedError("the proposal changes no file")
    with db.read() as session:
        base = versions.active_version(session)
    base_pack = versions.pack_of(base)
    pack = base_pack.with_changes(changes)
    if pack.sha256 == base_pack.sha256:
        raise ProposalUnchangedError("the proposal changes no file of the active version")
    checked = _check(pack)
    return _store(
        db,
        clock,
        Actor.of(caller),
        kind=ProposalKind.CHANGE,
        title=title,
        description=description,
        base=base,
        pack=pack,
        checked=checked,
    )


def propose_rollback(
    db: Database, clock: Clock, caller: Caller, version_id: int, *, description: str = ""
) -> PolicyProposal:
    """Store a proposal whose content is the earlier version ``version_id``.

    Approved like any proposal, it reactivates that version. Raises NotFoundError,
    VersionAlreadyActiveError, or ProposalNotCompilableError if this gateway can no
    longer compile that version.
    """
    with db.read() as session:
        target = versions.get_version(session, version_id)
        base = versions.active_version(session)
    if target.id == base.id:
        raise versions.VersionAlreadyActiveError(
            f"policy version {version_id} is already active", version=version_id
        )
    pack = versions.pack_of(target)
    checked = _check(pack)
    title, description = _clean_text(f"Roll back to policy version {version_id}", description)
    return _store(
        db,
        clock,
        Actor.of(caller),
        kind=ProposalKind.ROLLBACK,
        title=title,
        description=description,
        base=base,
        pack=pack,
        checked=checked,
        rollback_to=target.id,
    )


def propose_pack(
    db: Database, clock: Clock, actor: Actor, pack: Pack, *, title: str, description: str = ""
) -> PolicyProposal:
    """Store a whole pack as a proposal, any file changed (``gateway policy propose``).

    This is how a release of the gateway brings a new vocabulary or model: an operator
    proposes the release's pack, and a RIEC privacy officer reviews and approves it like
    any other proposal. Raises as ``create_proposal`` does.
    """
    title, description = _clean_text(title, description)
    with db.read() as session:
        base = versions.active_version(session)
    if pack.sha256 == versions.pack_of(base).sha256:
        raise ProposalUnchangedError("the folder is the active version already")
    checked = _check(pack)
    return _store(
        db,
        clock,
        actor,
        kind=ProposalKind.CHANGE,
        title=title,
        description=description,
        base=base,
        pack=pack,
        checked=checked,
    )


def get_proposal(session: Session, proposal_id: int) -> PolicyProposal:
    """Return one proposal; raise NotFoundError if there is none with that id."""
    proposal = session.get(PolicyProposal, proposal_id)
    if proposal is None:
        raise NotFoundError(f"no proposal {proposal_id}", proposal=proposal_id)
    return proposal


def list_proposals(
    session: Session, status: ProposalStatus | None = None
) -> Sequence[PolicyProposal]:
    """Return proposals, newest first, optionally only those with ``status``."""
    query = select(PolicyProposal).order_by(col(PolicyProposal.id).desc())
    if status is not None:
        query = query.where(PolicyProposal.status == status.value)
    return session.exec(query).all()


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
        lint = {**lint, "compiles": False, "problems": _problems_json(exc)}
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
    checked = _check(pack)  # compiled before the write lock is taken (cached normally)
    with db.write() as session:
        current = versions.pointer(session, lock=True)  # serialises activations
        proposal = _locked_proposal(session, proposal_id)
        if current is None:
            raise versions.NoActiveVersionError()
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
            _audit(
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
            _audit(
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


def simulate_pack(session: Session, pack: Pack, since: datetime, until: datetime) -> Simulation:
    """Replay the recorded requests of [since, until) against ``pack`` and the active version.

    Raises InvalidInputError for a bad or too busy period, SourceError if ``pack`` does
    not compile, NoActiveVersionError before the first import.
    """
    check_period(since, until)
    count = session.exec(
        select(func.count())
        .select_from(PolicyDecisionRecord)
        .where(col(PolicyDecisionRecord.decided_at) >= since)
        .where(col(PolicyDecisionRecord.decided_at) < until)
    ).one()
    if count > MAX_REPLAY:
        raise InvalidInputError(
            f"the period holds {count} recorded decisions; a simulation replays at most "
            f"{MAX_REPLAY}, so choose a shorter period",
            field="since",
        )
    baseline = engine_for(versions.pack_of(versions.active_version(session)))
    proposed = engine_for(pack)
    recorded = recorded_decisions(session, since=since, until=until)
    return replay(recorded, baseline, proposed, since=since, until=until)


def simulate(session: Session, proposal_id: int, since: datetime, until: datetime) -> Simulation:
    """Replay the recorded requests of a period against a proposal (see ``simulate_pack``)."""
    proposal = get_proposal(session, proposal_id)
    try:
        return simulate_pack(session, Pack.from_json(proposal.sources), since, until)
    except SourceError as exc:
        raise ProposalNotCompilableError(exc) from exc
