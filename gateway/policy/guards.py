"""The legal-basis guards: deny rules derived from the vocabulary's ``invoked_by``.

A partner kind submits, records and provides only under a legal basis of its own, and
data a kind provided rests only on a basis of its own. ``basis_guard_rules`` makes
those deny rules for every kind; ``check_invoked_bases`` refuses a written allow rule
that would let a kind invoke a basis that is not its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from gateway.policy.decision import (
    BASIS_INVOKING_ACTIONS,
    DIMENSIONS,
    NONE,
    OWN_BASIS_RULE_PREFIX,
    PROVIDER_BASIS_RULE_PREFIX,
    Action,
)
from gateway.policy.rules import CompiledRule
from gateway.policy.vocabulary import ANY, INVOKED_BY, Vocabulary, describe
from gateway.yamlsource import SourceProblem

_BASIS_SOURCE = (
    "policies/vocabulary.yaml, legal_bases.*.invoked_by; AVG art. 5 en 6 (rechtmatigheid): "
    "elke verstrekking rust op een grondslag van de verstrekkende partner"
)


def _guard_rule(
    vocabulary: Vocabulary,
    rule_id: str,
    reason: str,
    kind_dimension: str,
    kind: str,
    actions: Iterable[str],
) -> CompiledRule:
    """Return a deny rule for ``kind`` (as asker or as provider) with a foreign legal basis."""
    group = vocabulary.foreign_bases_group(kind)
    chosen = {
        "action": tuple(sorted(actions)),
        kind_dimension: (kind,),
        "legal_basis": (group,),
    }
    patterns: dict[str, tuple[str, ...]] = {}
    covered: dict[str, frozenset[str] | None] = {}
    for dim in DIMENSIONS:
        patterns[dim] = chosen.get(dim, (ANY,))
        if dim == "partner_id":
            covered[dim] = None
        elif dim == "legal_basis":
            covered[dim] = vocabulary.domains["legal_basis"].leaves(group)
        elif dim in chosen:
            covered[dim] = frozenset(chosen[dim])
        else:
            covered[dim] = vocabulary.domain_of(dim).concrete
    line = vocabulary.domains["partner_kind"].terms[kind].line
    return CompiledRule(
        id=rule_id,
        effect="deny",
        reason=reason,
        source=_BASIS_SOURCE,
        obligations=(),
        obligations_id="none",
        patterns=patterns,
        covered=covered,
        path=vocabulary.path,
        line=line,
        key_lines={"id": line},
        generated=True,
    )


def basis_guard_rules(vocabulary: Vocabulary) -> list[CompiledRule]:
    """Return the deny rules that keep every legal basis with the kinds that invoke it.

    Per partner kind: ``eigen-grondslag-<kind>`` refuses the kind submitting, recording
    or providing (``BASIS_INVOKING_ACTIONS``) under a basis it does not invoke, and
    ``grondslag-van-verstrekker-<kind>`` refuses any action on data that kind provided
    under a basis it does not invoke. Both follow from ``invoked_by`` in the vocabulary.
    """
    rules: list[CompiledRule] = []
    kinds = vocabulary.domains["partner_kind"]
    for kind in sorted(vocabulary.partner_kinds):
        if vocabulary.foreign_bases_group(kind) not in vocabulary.domains["legal_basis"].terms:
            continue  # the kind invokes every basis: nothing to refuse
        label = kinds.terms[kind].label or kind
        own = ", ".join(sorted(vocabulary.own_bases(kind))) or "none at all"
        rules.append(
            _guard_rule(
                vocabulary,
                OWN_BASIS_RULE_PREFIX + kind,
                f"A partner of kind {kind} ({label}) submits, records and provides only under "
                f"a legal basis of its own ({own}); a legal basis of another kind of partner "
                "is not its to invoke.",
                "partner_kind",
                kind,
                (a.value for a in BASIS_INVOKING_ACTIONS),
            )
        )
        rules.append(
            _guard_rule(
                vocabulary,
                PROVIDER_BASIS_RULE_PREFIX + kind,
                f"Data provided by a partner of kind {kind} ({label}) rests only on a legal "
                f"basis of its own ({own}); a legal basis of another kind of partner cannot "
                "cover it.",
                "provider_kind",
                kind,
                (a.value for a in Action),
            )
        )
    return rules


def check_invoked_bases(
    rules: Sequence[CompiledRule], vocabulary: Vocabulary
) -> list[SourceProblem]:
    """Return a problem for every allow rule that lets a kind invoke a basis not its own.

    For the actions in ``BASIS_INVOKING_ACTIONS`` every partner kind the rule covers must
    invoke every legal basis it covers (leaving ``legal_basis`` out covers them all); a
    rule naming both ``provider_kind`` and ``legal_basis`` must pair them rightly too.
    """
    problems: list[SourceProblem] = []
    invoking = {a.value for a in BASIS_INVOKING_ACTIONS}
    for rule in rules:
        if not rule.allows or rule.generated:
            continue
        bases = (rule.covered["legal_basis"] or frozenset()) - {NONE}
        kinds: set[str] = set()
        if invoking & (rule.covered["action"] or frozenset()):
            kinds |= rule.covered["partner_kind"] or frozenset()
        if "provider_kind" in rule.key_lines and "legal_basis" in rule.key_lines:
            kinds |= rule.covered["provider_kind"] or frozenset()
        wrong: dict[str, list[str]] = {}
        for basis in sorted(bases):
            foreign = sorted(k for k in kinds - {NONE} if not vocabulary.may_invoke(k, basis))
            if foreign:
                wrong[basis] = foreign
        if not wrong:
            continue
        shown = "; ".join(
            f"{basis} is invoked by {describe(vocabulary.invokers(basis))}, not by "
            f"{describe(foreign)}"
            for basis, foreign in wrong.items()
        )
        open_basis = "legal_basis" not in rule.key_lines
        line = rule.key_lines.get("legal_basis", rule.key_lines.get("id", rule.line))
        problems.append(
            SourceProblem(
                rule.path,
                line,
                f"allow rule {rule.id!r} lets a partner kind invoke a legal basis that is not "
                f"its own{' (it leaves legal_basis open)' if open_basis else ''}: {shown}. "
                f"A legal basis belongs to the kinds its {INVOKED_BY} names in the "
                "vocabulary; narrow partner_kind or legal_basis",
            )
        )
    return problems
