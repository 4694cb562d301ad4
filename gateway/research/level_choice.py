"""Choosing the generalisation levels of a release: the lattice search over ``evaluate``.

``choose_levels`` walks the generalisation lattice (one level per quasi-identifier,
finest first) and returns the finest node whose suppression stays within the agreed
share, or refuses the release with the figures of the least suppressing node. Nodes that
``row_bound`` shows cannot pass are judged only when the release is refused. The check of
one node is ``disclosure.evaluate`` (k people per class) or another ``Judge``
(``events.evaluate_events``: the m-event attacker).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from fractions import Fraction

import numpy as np

from gateway.research.class_counter import ClassCounter
from gateway.research.disclosure import Lattice, Node, NodeResult, PersonPairs, evaluate
from gateway.research.errors import DisclosureCheckFailedError


def _ranked(result: NodeResult, order: dict[Node, int]) -> tuple[Fraction, int, int, NodeResult]:
    """The refusal names the node suppressing the smallest share, then fewest rows, then
    the first in the lattice's order."""
    return (result.share, result.suppressed_rows, order[result.node], result)


def row_bound(pairs: PersonPairs, lattice: Lattice, node: Node, k: int) -> Fraction:
    """Return a lower bound of the share ``evaluate`` suppresses at ``node``, cheaply.

    A class of fewer than k rows has fewer than k people, so its rows are suppressed
    (and rows without a subject key always are): their share of the counted rows is
    at most the share the full check suppresses, without sorting (class, person) pairs.
    """
    counted = pairs.class_rows()  # withdrawn people are out before the check
    if counted.total == 0:
        return Fraction(0)
    # summed per finest class once, then per node over the finest classes, not the pairs
    node_of_class, firsts = pairs.grouped(lattice.positions(node))
    per_class = np.bincount(node_of_class, weights=counted.counted, minlength=len(firsts))
    small = (per_class < k)[node_of_class]
    small_rows = int(counted.counted[small].sum())
    if counted.anonymous is not None:
        small_rows += int(counted.anonymous[~small].sum())
    return Fraction(small_rows, counted.total)


Judge = Callable[["PersonPairs", Lattice, Node, int], NodeResult]
"""Evaluates one generalisation node: (pairs, lattice, node, k) -> outcome."""


def _percent(share: Fraction) -> str:
    return f"{float(share) * 100:.2f}%"


def choose_levels(
    counter: ClassCounter | PersonPairs,
    lattice: Lattice,
    k: int,
    max_share: Decimal,
    fixed: Node | None = None,
    judge: Judge | None = None,
) -> NodeResult:
    """Return the node to release at: ``fixed`` if given, else the finest that passes.

    ``judge`` evaluates one node (default ``evaluate``: k people per class; the
    m-event attacker's check is ``events.evaluate_events``).

    Among passing nodes of the same total generalisation the one suppressing the
    smallest share (then fewest rows) wins. Raises DisclosureCheckFailedError, with the
    numbers, when no candidate keeps suppression within ``max_share``.
    """
    pairs = counter if isinstance(counter, PersonPairs) else PersonPairs.of(counter)
    judge_node = judge or evaluate
    candidates: Sequence[Node] = [fixed] if fixed is not None else lattice.nodes()
    best: tuple[Fraction, int, int, NodeResult] | None = None  # share, rows, order, result
    # the default check never passes a node whose classes of fewer than k rows already
    # hold more than the agreed share of rows: such nodes are judged only if the release
    # is refused and one of them might be the least suppressing (same order as before)
    pruned: list[tuple[Fraction, int, Node]] = []
    order = {node: i for i, node in enumerate(candidates)}
    for height in sorted({sum(node) for node in candidates}):
        results = []
        for node in (n for n in candidates if sum(n) == height):
            bound = row_bound(pairs, lattice, node, k) if judge is None else Fraction(0)
            if bound > Fraction(max_share):
                pruned.append((bound, order[node], node))
            else:
                results.append(judge_node(pairs, lattice, node, k))
        passing = [r for r in results if r.passes(max_share)]
        if passing:
            return min(passing, key=lambda r: (r.share, r.suppressed_rows))
        for result in results:
            best = min(best or _ranked(result, order), _ranked(result, order))
    for bound, _, node in sorted(pruned):
        if best is not None and bound > best[0]:
            break
        result = judge_node(pairs, lattice, node, k)
        best = min(best or _ranked(result, order), _ranked(result, order))
    assert best is not None
    least = best[3]
    which = (
        "the project's fixed generalisation"
        if fixed is not None
        else "the least suppressing generalisation the agreement allows"
    )
    raise DisclosureCheckFailedError(
        f"release refused: the disclosure check would suppress {least.suppressed_rows} of "
        f"{least.total_rows} rows and {least.suppressed_people} of {least.people} people "
        f"({_percent(least.share)}) in {least.small_count} of "
        f"{least.classes} classes smaller than k={k} people, even with {which} "
        f"({least.describe()}); the agreement allows at most {_percent(Fraction(max_share))}",
        suppressed_rows=least.suppressed_rows,
        total_rows=least.total_rows,
        suppressed_people=least.suppressed_people,
        people=least.people,
        small_classes=least.small_count,
        classes=least.classes,
        k=k,
        max_suppressed_share=str(max_share),
        levels=least.levels,
    )
