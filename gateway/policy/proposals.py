"""Proposals: change the policy only with a second privacy officer's approval.

A privacy officer proposes edited rule, table or agreement files (or an earlier version,
for a rollback). The proposal is checked like the shipped pack and is stored only if it
compiles; anyone deciding sees its lint result, its diff against the active version and
a simulation over recorded requests. Another person, a privacy officer of the partner
that owns the pack (``pack.yaml``), approves (which activates it) or rejects it.
This module stores, lists and simulates proposals; deciding on them (who may, approve,
reject, and the view of a proposal for people deciding) is ``gateway.policy.approvals``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from gateway import usecase
from gateway.audit.events import AuditEventType, RefValue
from gateway.clock import Clock
from gateway.db import Database
from gateway.errors import InvalidInputError, NotFoundError
from gateway.identity.service import Actor, Caller
from gateway.models.policy import PolicyDecisionRecord
from gateway.models.policy_versions import (
    PolicyProposal,
    PolicyVersion,
    ProposalKind,
    ProposalStatus,
)
from gateway.policy import versions
from gateway.policy.errors import (
    ProposalNotCompilableError,
    ProposalUnchangedError,
    VersionAlreadyActiveError,
)
from gateway.policy.pack import CheckedPack, Pack, check_pack, engine_for
from gateway.policy.recording import recorded_decisions
from gateway.policy.simulate import Simulation, check_period, replay
from gateway.yamlsource import SourceError

MAX_TITLE = 200
MAX_DESCRIPTION = 4000
MAX_REPLAY = 200_000
"""Recorded decisions one simulation replays at most; choose a shorter period beyond it."""


def record_proposal_event(
    session: Session,
    clock: Clock,
    actor: Actor,
    event_type: AuditEventType,
    proposal: PolicyProposal,
    *,
    details: dict[str, Any] | None = None,
    **refs: RefValue,
) -> None:
    """Add the audit event of a change to ``proposal`` (its id, kind and policy version)."""
    usecase.record_event(
        session,
        clock,
        actor,
        event_type,
        policy_version=proposal.policy_version,
        refs={"proposal": proposal.id, "kind": proposal.kind, **refs},
        details=details,
    )


def checked_pack(pack: Pack) -> CheckedPack:
    """Return ``pack`` compiled and linted; raise ProposalNotCompilableError if it does not."""
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
    return checked_pack(pack)


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
        record_proposal_event(
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
    checked = checked_pack(pack)
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
        raise VersionAlreadyActiveError(
            f"policy version {version_id} is already active", version=version_id
        )
    pack = versions.pack_of(target)
    checked = checked_pack(pack)
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
    checked = checked_pack(pack)
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
