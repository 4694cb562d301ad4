"""Explaining one decision: the rule that decided, and the nearest rules that did not match."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.policy.decision import Decision, DecisionRequest
from gateway.policy.engine import PolicyEngine
from gateway.policy.rules import CompiledRule


@dataclass(frozen=True)
class NearMiss:
    """A rule that did not match, and for each attribute why not."""

    rule: CompiledRule
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Explanation:
    """The decision, the rule behind it (None for default deny) and the nearest misses."""

    request: DecisionRequest
    decision: Decision
    rule: CompiledRule | None
    near_misses: tuple[NearMiss, ...]


def explain(engine: PolicyEngine, request: DecisionRequest, *, nearest: int = 3) -> Explanation:
    """Return the explanation of ``request`` (raises UnknownTermError for unknown names).

    Near misses are the rules with the fewest mismatching attributes, allow rules first
    when tied, so "why was this not allowed?" is answered first.
    """
    compiled = engine.compiled
    decision = engine.decide(request)
    rule = None if decision.is_default_deny else compiled.rule(decision.rule_id)
    misses = []
    for candidate in compiled.rules:
        if rule is not None and candidate.id == rule.id:
            continue
        reasons = candidate.mismatches(request, compiled.vocabulary)
        if reasons:
            misses.append(NearMiss(candidate, tuple(reasons)))
    misses.sort(key=lambda m: (len(m.reasons), not m.rule.allows, m.rule.id))
    return Explanation(request, decision, rule, tuple(misses[:nearest]))
