"""Simulation: replay recorded decision requests against a proposed policy.

Each recorded request of the period is decided by the version in force and by the
proposal; a flip is a request whose outcome would change: allow -> deny, deny -> allow,
or an allow whose obligations change. Flips are counted by kind and grouped by the
asking partner, the step and the rule pair (rule now -> rule under the proposal).
Pure: recorded requests and two engines in, a ``Simulation`` out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from gateway.errors import InvalidInputError
from gateway.obligations.types import to_json_list
from gateway.policy.decision import Decision
from gateway.policy.engine import PolicyEngine
from gateway.policy.recording import RecordedDecision

MAX_PERIOD = timedelta(days=366)
LIST_LIMIT = 500
"""Flips listed one by one; the counts and groups always cover every flip."""


class FlipKind(StrEnum):
    """How a decision would change under the proposal."""

    ALLOW_TO_DENY = "allow->deny"
    DENY_TO_ALLOW = "deny->allow"
    OBLIGATIONS = "obligations-changed"


@dataclass(frozen=True, slots=True)
class Outcome:
    """One side of a flip: allowed or not, by which rule, with which obligations."""

    allowed: bool
    rule_id: str
    obligations: tuple[dict[str, Any], ...]

    @classmethod
    def of(cls, decision: Decision) -> Outcome:
        """Return the outcome of a decision."""
        return cls(decision.allowed, decision.rule_id, tuple(to_json_list(decision.obligations)))


@dataclass(frozen=True, slots=True)
class Flip:
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
    kind: FlipKind
    before: Outcome
    after: Outcome

    @property
    def rule_pair(self) -> str:
        """Return ``rule now -> rule under the proposal``."""
        return f"{self.before.rule_id} -> {self.after.rule_id}"


@dataclass(frozen=True)
class Simulation:
    """The result of a replay: totals, flips (the first ``LIST_LIMIT``) and groups."""

    since: datetime
    until: datetime
    baseline_version: str
    proposed_version: str
    replayed: int
    distinct_requests: int
    unreplayable: int
    flip_count: int
    flips: tuple[Flip, ...]
    counts: dict[str, int] = field(default_factory=dict)
    by_partner: dict[str, dict[str, int]] = field(default_factory=dict)
    by_step: dict[str, dict[str, int]] = field(default_factory=dict)
    by_rule: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def truncated(self) -> bool:
        """True when more flips exist than are listed."""
        return self.flip_count > len(self.flips)


def check_period(since: datetime, until: datetime) -> None:
    """Raise InvalidInputError unless ``since`` < ``until`` and the span is at most a year."""
    if since.tzinfo is None or until.tzinfo is None:
        raise InvalidInputError("give the period with a time zone (e.g. ...Z)", field="since")
    if since >= until:
        raise InvalidInputError("the period must start before it ends", field="since")
    if until - since > MAX_PERIOD:
        raise InvalidInputError("a simulation covers at most 366 days", field="until")


def _kind(before: Decision, after: Decision) -> FlipKind | None:
    if before.allowed and not after.allowed:
        return FlipKind.ALLOW_TO_DENY
    if after.allowed and not before.allowed:
        return FlipKind.DENY_TO_ALLOW
    if before.allowed and to_json_list(before.obligations) != to_json_list(after.obligations):
        return FlipKind.OBLIGATIONS
    return None


def _grouped(flips: Sequence[Flip], key: str) -> dict[str, dict[str, int]]:
    groups: dict[str, Counter[str]] = {}
    for flip in flips:
        if key == "partner":
            name = flip.partner_id
        elif key == "step":
            name = "none" if flip.step is None else str(flip.step)
        else:
            name = flip.rule_pair
        groups.setdefault(name, Counter())[flip.kind.value] += 1
    ordered = sorted(groups.items(), key=lambda item: (-sum(item[1].values()), item[0]))
    return {name: dict(sorted(counter.items())) for name, counter in ordered}


def replay(
    recorded: Sequence[RecordedDecision],
    baseline: PolicyEngine,
    proposed: PolicyEngine,
    *,
    since: datetime,
    until: datetime,
    limit: int = LIST_LIMIT,
) -> Simulation:
    """Return what would change if ``proposed`` replaced ``baseline`` for these requests.

    Requests that either policy cannot decide (a term it does not know) are counted as
    unreplayable, not as flips.
    """
    flips: list[Flip] = []
    unreplayable = 0
    for item in recorded:
        try:
            before = baseline.decide(item.request)
            after = proposed.decide(item.request)
        except InvalidInputError:
            unreplayable += 1
            continue
        kind = _kind(before, after)
        if kind is None:
            continue
        r = item.request
        flips.append(
            Flip(
                record_id=item.id,
                decided_at=item.decided_at,
                partner_id=r.partner_id,
                partner_kind=r.partner_kind,
                role=str(r.role),
                action=str(r.action),
                process=r.process,
                step=r.step,
                category=r.category,
                provider_kind=r.provider_kind,
                kind=kind,
                before=Outcome.of(before),
                after=Outcome.of(after),
            )
        )
    counts = Counter(f.kind.value for f in flips)
    return Simulation(
        since=since,
        until=until,
        baseline_version=baseline.version,
        proposed_version=proposed.version,
        replayed=len(recorded),
        distinct_requests=len({item.request for item in recorded}),
        unreplayable=unreplayable,
        flip_count=len(flips),
        flips=tuple(flips[:limit]),
        counts={k.value: counts.get(k.value, 0) for k in FlipKind},
        by_partner=_grouped(flips, "partner"),
        by_step=_grouped(flips, "step"),
        by_rule=_grouped(flips, "rule"),
    )
