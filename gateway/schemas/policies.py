"""Public shapes of policy versions, proposals, diffs and simulations."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from gateway.api.problems import TYPE_PREFIX
from gateway.models.policy_versions import PolicyProposal, PolicyVersion
from gateway.policy.approvals import ProposalView
from gateway.policy.diff import PolicyDiff
from gateway.policy.pack import Pack, RuleText
from gateway.policy.simulate import Flip, Outcome, Simulation
from gateway.schemas.base import StrictIn


class VersionOut(BaseModel):
    """A stored policy version (its files are listed, not included)."""

    id: int
    policy_version: str = Field(description="content hash of the compiled policy")
    sources_sha256: str = Field(description="hash of every file of the pack")
    rule_count: int
    origin: str
    proposal_id: int | None
    created_at: datetime
    created_by_principal_id: str
    created_by_partner_id: str | None
    state: str
    activated_at: datetime | None
    files: list[str]

    @classmethod
    def of(cls, version: PolicyVersion) -> VersionOut:
        """Return the public shape of a version row."""
        assert version.id is not None
        return cls(
            id=version.id,
            policy_version=version.policy_version,
            sources_sha256=version.sources_sha256,
            rule_count=version.rule_count,
            origin=version.origin,
            proposal_id=version.proposal_id,
            created_at=version.created_at,
            created_by_principal_id=version.created_by_principal_id,
            created_by_partner_id=version.created_by_partner_id,
            state=version.state,
            activated_at=version.activated_at,
            files=sorted(json.loads(version.sources)),
        )


class VersionDetailOut(VersionOut):
    """A stored policy version with the text of every file."""

    sources: dict[str, str]


class RuleOut(BaseModel):
    """A rule as written, with where it is, its reason and its source."""

    id: str
    effect: str
    file: str
    line: int
    when: dict[str, Any]
    obligations: list[Any]
    reason: str
    source: str
    overrides: list[str]

    @classmethod
    def of(cls, rule: RuleText) -> RuleOut:
        """Return the public shape of a rule."""
        return cls(
            id=rule.id,
            effect=rule.effect,
            file=rule.file,
            line=rule.line,
            when=dict(rule.when),
            obligations=list(rule.obligations),
            reason=rule.reason,
            source=rule.source,
            overrides=list(rule.overrides),
        )


class ActivePolicyOut(BaseModel):
    """The version in force and its rules, in file order."""

    version: VersionOut
    rules: list[RuleOut]


class ProposalIn(StrictIn):
    """Changed files over the active version: path -> new text, or null to delete."""

    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=4000)
    files: dict[str, str | None] = Field(
        min_length=1,
        max_length=200,
        examples=[{"rules/20-delen-en-analyseren.yaml": "rules:\n  - id: ...\n"}],
    )


class LintIn(StrictIn):
    """Changed files to check without storing anything."""

    files: dict[str, str | None] = Field(min_length=1, max_length=200)


class DecisionIn(StrictIn):
    """An approval or rejection, with an optional note."""

    note: str = Field(default="", max_length=4000)


class RollbackIn(StrictIn):
    """Why an earlier version should be active again."""

    description: str = Field(default="", max_length=4000)


class SourceProblemOut(BaseModel):
    """One ``file:line: message``."""

    file: str
    line: int
    message: str


class LintOut(BaseModel):
    """Whether a pack compiles, its size, and mismatches of its expected-decision tables."""

    compiles: bool
    problems: list[SourceProblemOut]
    rules: int | None = None
    rows: int | None = None
    expected_decisions: int | None = None
    table_failures: list[str] = []
    policy_version: str | None = None


class FieldChangeOut(BaseModel):
    """One changed field of a rule."""

    field: str
    before: Any
    after: Any


class RuleChangeOut(BaseModel):
    """A rule added, removed or changed."""

    rule_id: str
    change: str
    file: str
    effect: str
    reason: str
    fields: list[FieldChangeOut]


class FileDiffOut(BaseModel):
    """A file added, removed or changed, with its unified diff."""

    path: str
    change: str
    unified: str
    added_lines: int
    removed_lines: int


class DiffOut(BaseModel):
    """Rule and file differences against the active version."""

    rules: list[RuleChangeOut]
    files: list[FileDiffOut]

    @classmethod
    def of(cls, diff: PolicyDiff) -> DiffOut:
        """Return the public shape of a diff."""
        return cls(
            rules=[
                RuleChangeOut(
                    rule_id=r.rule_id,
                    change=r.change.value,
                    file=r.file,
                    effect=r.effect,
                    reason=r.reason,
                    fields=[
                        FieldChangeOut(field=f.field, before=f.before, after=f.after)
                        for f in r.fields
                    ],
                )
                for r in diff.rules
            ],
            files=[
                FileDiffOut(
                    path=f.path,
                    change=f.change.value,
                    unified=f.unified,
                    added_lines=f.added_lines,
                    removed_lines=f.removed_lines,
                )
                for f in diff.files
            ],
        )


class RefusalOut(BaseModel):
    """Why the caller may not decide on a proposal."""

    type: str
    detail: str


class ProposalOut(BaseModel):
    """A proposal without its files."""

    id: int
    kind: str
    status: str
    title: str
    description: str
    proposer_principal_id: str
    proposer_partner_id: str | None
    created_at: datetime
    base_version_id: int
    rollback_to_version_id: int | None
    policy_version: str
    sources_sha256: str
    changed_files: list[str]
    decided_by_principal_id: str | None
    decided_by_partner_id: str | None
    decided_at: datetime | None
    decision_note: str | None
    result_version_id: int | None

    @classmethod
    def of(cls, proposal: PolicyProposal) -> ProposalOut:
        """Return the public shape of a proposal row."""
        assert proposal.id is not None
        return cls(
            id=proposal.id,
            kind=proposal.kind,
            status=proposal.status,
            title=proposal.title,
            description=proposal.description,
            proposer_principal_id=proposal.proposer_principal_id,
            proposer_partner_id=proposal.proposer_partner_id,
            created_at=proposal.created_at,
            base_version_id=proposal.base_version_id,
            rollback_to_version_id=proposal.rollback_to_version_id,
            policy_version=proposal.policy_version,
            sources_sha256=proposal.sources_sha256,
            changed_files=json.loads(proposal.changed_files),
            decided_by_principal_id=proposal.decided_by_principal_id,
            decided_by_partner_id=proposal.decided_by_partner_id,
            decided_at=proposal.decided_at,
            decision_note=proposal.decision_note,
            result_version_id=proposal.result_version_id,
        )


class ProposalDetailOut(ProposalOut):
    """A proposal with its lint result, its diff against the active version, and whether
    the caller may approve or reject it."""

    lint: LintOut
    diff: DiffOut | None
    active_version_id: int
    stale: bool
    may_approve: bool
    approve_refusal: RefusalOut | None
    may_reject: bool
    reject_refusal: RefusalOut | None
    files: dict[str, str]

    @classmethod
    def of_view(cls, view: ProposalView) -> ProposalDetailOut:
        """Return the public shape of a described proposal."""

        def refusal(exc: Any) -> RefusalOut | None:
            return (
                None if exc is None else RefusalOut(type=TYPE_PREFIX + exc.code, detail=exc.detail)
            )

        base = ProposalOut.of(view.proposal).model_dump()
        return cls(
            **base,
            lint=LintOut.model_validate(view.lint),
            diff=None if view.diff is None else DiffOut.of(view.diff),
            active_version_id=view.active_version_id,
            stale=view.stale,
            may_approve=view.approve_refusal is None,
            approve_refusal=refusal(view.approve_refusal),
            may_reject=view.reject_refusal is None,
            reject_refusal=refusal(view.reject_refusal),
            files=dict(Pack.from_json(view.proposal.sources).files),
        )


class OutcomeOut(BaseModel):
    """One side of a flip."""

    allowed: bool
    rule_id: str
    obligations: list[dict[str, Any]]

    @classmethod
    def of(cls, outcome: Outcome) -> OutcomeOut:
        """Return the public shape of an outcome."""
        return cls(
            allowed=outcome.allowed, rule_id=outcome.rule_id, obligations=list(outcome.obligations)
        )


class FlipOut(BaseModel):
    """A recorded request whose decision would change."""

    record_id: int
    decided_at: datetime
    partner_id: str
    partner_kind: str
    role: str
    action: str
    process: str
    step: int | None
    category: str
    provider_kind: str
    kind: str
    before: OutcomeOut
    after: OutcomeOut

    @classmethod
    def of(cls, flip: Flip) -> FlipOut:
        """Return the public shape of a flip."""
        return cls(
            record_id=flip.record_id,
            decided_at=flip.decided_at,
            partner_id=flip.partner_id,
            partner_kind=flip.partner_kind,
            role=flip.role,
            action=flip.action,
            process=flip.process,
            step=flip.step,
            category=flip.category,
            provider_kind=flip.provider_kind,
            kind=flip.kind.value,
            before=OutcomeOut.of(flip.before),
            after=OutcomeOut.of(flip.after),
        )


class SimulationOut(BaseModel):
    """What would change: totals, counts by kind, groups, and the flips (first 500)."""

    since: datetime
    until: datetime
    baseline_version: str
    proposed_version: str
    replayed: int
    distinct_requests: int
    unreplayable: int
    flip_count: int
    truncated: bool
    counts: dict[str, int]
    by_partner: dict[str, dict[str, int]]
    by_step: dict[str, dict[str, int]]
    by_rule: dict[str, dict[str, int]]
    flips: list[FlipOut]

    @classmethod
    def of(cls, sim: Simulation) -> SimulationOut:
        """Return the public shape of a simulation."""
        return cls(
            since=sim.since,
            until=sim.until,
            baseline_version=sim.baseline_version,
            proposed_version=sim.proposed_version,
            replayed=sim.replayed,
            distinct_requests=sim.distinct_requests,
            unreplayable=sim.unreplayable,
            flip_count=sim.flip_count,
            truncated=sim.truncated,
            counts=sim.counts,
            by_partner=sim.by_partner,
            by_step=sim.by_step,
            by_rule=sim.by_rule,
            flips=[FlipOut.of(f) for f in sim.flips],
        )
