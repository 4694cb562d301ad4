"""Policy lifecycle routes: versions, the active policy, proposals, simulation, decisions.

Reading the active version is open to every authenticated principal; everything else is
for privacy officers. Who may approve or reject is decided in one place,
``gateway.policy.approvals.decision_refusal``; these routes only parse and render.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, status

from gateway.api.deps import (
    Ctx,
    CurrentCaller,
    PrivacyOfficerCaller,
    ProposalId,
    ReadSession,
    VersionId,
)
from gateway.models.policy_versions import ProposalStatus
from gateway.policy import approvals, proposals, versions
from gateway.policy.pack import analyse_pack
from gateway.schemas.base import BoundedDateTime
from gateway.schemas.policies import (
    ActivePolicyOut,
    DecisionIn,
    LintIn,
    LintOut,
    ProposalDetailOut,
    ProposalIn,
    ProposalOut,
    RollbackIn,
    RuleOut,
    SimulationOut,
    VersionDetailOut,
    VersionOut,
)

router = APIRouter(prefix="/v1/policies", tags=["policies"])

DEFAULT_PERIOD = timedelta(days=30)


def refresh_local_engine(ctx: Ctx) -> None:
    """Load a just-activated version in this process now instead of at the next poll."""
    if ctx.policy_watcher is not None:
        ctx.policy_watcher.sync()


@router.get("/active", summary="The active policy version and its rules")
def active(_caller: CurrentCaller, session: ReadSession) -> ActivePolicyOut:
    """Return the version in force with every rule, its reason and source (any principal)."""
    version = versions.active_version(session)
    analysis = analyse_pack(versions.pack_of(version))
    return ActivePolicyOut(
        version=VersionOut.of(version), rules=[RuleOut.of(r) for r in analysis.rules]
    )


@router.get("/versions", summary="Every stored policy version (privacy officer)")
def list_versions(_caller: PrivacyOfficerCaller, session: ReadSession) -> list[VersionOut]:
    """Return every stored version, newest first."""
    return [VersionOut.of(v) for v in versions.list_versions(session)]


@router.get("/versions/{version_id}", summary="One stored version with its files (privacy officer)")
def get_version(
    version_id: VersionId, _caller: PrivacyOfficerCaller, session: ReadSession
) -> VersionDetailOut:
    """Return one version with the text of every file; 404 if unknown."""
    version = versions.get_version(session, version_id)
    return VersionDetailOut(
        **VersionOut.of(version).model_dump(), sources=dict(versions.pack_of(version).files)
    )


@router.post(
    "/versions/{version_id}/rollback",
    status_code=status.HTTP_201_CREATED,
    summary="Propose to reactivate an earlier version (privacy officer)",
)
def propose_rollback(
    version_id: VersionId, body: RollbackIn, caller: PrivacyOfficerCaller, ctx: Ctx
) -> ProposalOut:
    """Store a rollback proposal; another RIEC privacy officer approves it like any other."""
    proposal = proposals.propose_rollback(
        ctx.db, ctx.clock, caller, version_id, description=body.description
    )
    return ProposalOut.of(proposal)


@router.post("/lint", summary="Check changed files without storing anything (privacy officer)")
def lint(body: LintIn, _caller: PrivacyOfficerCaller, session: ReadSession) -> LintOut:
    """Return the lint result of the active pack with these changes; 422 if it does not compile."""
    checked = proposals.lint_changes(session, body.files)
    return LintOut.model_validate(checked.summary())


@router.get("/proposals", summary="Proposals, newest first (privacy officer)")
def list_proposals(
    _caller: PrivacyOfficerCaller,
    session: ReadSession,
    status_filter: Annotated[ProposalStatus | None, Query(alias="status")] = None,
) -> list[ProposalOut]:
    """Return proposals, optionally only those with one status."""
    return [ProposalOut.of(p) for p in proposals.list_proposals(session, status_filter)]


@router.post(
    "/proposals",
    status_code=status.HTTP_201_CREATED,
    summary="Propose changed rule, table or agreement files (privacy officer)",
)
def create_proposal(body: ProposalIn, caller: PrivacyOfficerCaller, ctx: Ctx) -> ProposalDetailOut:
    """Store a proposal if it compiles, else 422 ``proposal-not-compilable`` with lint lines."""
    proposal = proposals.create_proposal(
        ctx.db,
        ctx.clock,
        caller,
        title=body.title,
        description=body.description,
        changes=body.files,
    )
    assert proposal.id is not None
    with ctx.db.read() as session:
        return ProposalDetailOut.of_view(approvals.describe(session, proposal.id, caller))


@router.get("/proposals/{proposal_id}", summary="One proposal with lint and diff (privacy officer)")
def get_proposal(
    proposal_id: ProposalId, caller: PrivacyOfficerCaller, session: ReadSession
) -> ProposalDetailOut:
    """Return the proposal, its lint result, its diff against the active version, and
    whether the caller may approve or reject it."""
    return ProposalDetailOut.of_view(approvals.describe(session, proposal_id, caller))


@router.get(
    "/proposals/{proposal_id}/simulation",
    summary="Replay recorded decisions of a period against a proposal (privacy officer)",
)
def simulate(
    proposal_id: ProposalId,
    caller: PrivacyOfficerCaller,
    ctx: Ctx,
    session: ReadSession,
    since: BoundedDateTime | None = None,
    until: BoundedDateTime | None = None,
) -> SimulationOut:
    """Return the decisions that would flip (default period: the last 30 days)."""
    until = until or ctx.clock.now()
    since = since or until - DEFAULT_PERIOD
    return SimulationOut.of(proposals.simulate(session, proposal_id, since, until))


@router.post(
    "/proposals/{proposal_id}/approve", summary="Approve and activate (RIEC privacy officer)"
)
def approve(
    proposal_id: ProposalId, body: DecisionIn, caller: PrivacyOfficerCaller, ctx: Ctx
) -> VersionOut:
    """Activate the proposal's version on every worker; 403 ``four-eyes-violation`` for the
    proposer, 409 ``proposal-not-open`` or ``proposal-stale``."""
    version = approvals.approve(ctx.db, ctx.clock, caller, proposal_id, note=body.note)
    refresh_local_engine(ctx)
    return VersionOut.of(version)


@router.post("/proposals/{proposal_id}/reject", summary="Reject (RIEC privacy officer)")
def reject(
    proposal_id: ProposalId, body: DecisionIn, caller: PrivacyOfficerCaller, ctx: Ctx
) -> ProposalOut:
    """Reject an open proposal; 403 for the proposer, 409 if it is not open."""
    return ProposalOut.of(approvals.reject(ctx.db, ctx.clock, caller, proposal_id, note=body.note))
