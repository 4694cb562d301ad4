"""Partitions of one action's rows by a second attribute, so a cold decision scans few rows.

An uncached pycasbin ``enforce`` tests every row of its enforcer in order (about 10 µs a
row), so an action with thousands of rows makes every cold decision slow. The model's
matcher is a conjunction; when one of its top-level conjuncts is ``gX(r.a, p.a)``, a row
can only match a request whose value of ``a`` lies under the row's value in the role
hierarchy ``gX``. For each concrete term ``v`` of that attribute's domain the partition
keeps exactly the rows whose value covers ``v``, in their order, so the first matching
row (the priority effect) is the same as over all the action's rows. The attribute is
chosen per action as the one whose largest partition is smallest; actions with few rows
are not partitioned. A request value outside the prepared terms uses the whole action.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.policy.compiler import REQUEST_TOKENS, ROLE_MANAGERS, CompiledPolicy

PARTITION_ABOVE = 128
"""Actions with more rows than this get partitions; smaller ones are scanned whole."""

_CONJUNCT = re.compile(r"(g\d*)\(r[._](\w+),\s*p[._](\w+)\)")
Row = tuple[str, ...]


@dataclass(frozen=True)
class Split:
    """One action's rows split by the attribute at ``position``: term -> rows in order."""

    position: int
    rows_by_term: Mapping[str, Sequence[Row]]


def top_level_conjuncts(matcher: str) -> list[str]:
    """Return the matcher's conjuncts joined by ``&&`` outside any parentheses."""
    parts: list[str] = []
    depth = 0
    start = 0
    index = 0
    while index < len(matcher):
        char = matcher[index]
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif depth == 0 and matcher.startswith("&&", index):
            parts.append(matcher[start:index].strip())
            start = index + 2
            index += 1
        index += 1
    parts.append(matcher[start:].strip())
    return parts


def hierarchical_positions(matcher: str) -> dict[int, str]:
    """Return request position -> role manager for each ``gX(r.a, p.a)`` top-level conjunct."""
    found: dict[int, str] = {}
    for conjunct in top_level_conjuncts(matcher):
        match = _CONJUNCT.fullmatch(conjunct)
        if match is None:
            continue
        manager, request_token, policy_token = match.groups()
        if request_token == policy_token and manager in ROLE_MANAGERS:
            found[REQUEST_TOKENS.index(request_token)] = manager
    return found


class Splitter:
    """Splits the actions of one compiled version; remembers which values cover a term."""

    def __init__(self, compiled: CompiledPolicy, matcher: str, role_managers: Mapping[str, Any]):
        self._compiled = compiled
        self._positions = sorted(hierarchical_positions(matcher).items())
        self._managers = role_managers
        self._covers: dict[tuple[str, str, str], bool] = {}

    def _covering(self, manager: str, values: set[str]) -> dict[str, set[str]]:
        """Return each concrete term of the manager's domain -> the row values covering it."""
        domain = self._compiled.vocabulary.domains[ROLE_MANAGERS[manager]]
        role_manager = self._managers[manager]
        result: dict[str, set[str]] = {}
        for term in domain.concrete:
            kept = result[term] = set()
            for value in values:
                key = (manager, term, value)
                covers = self._covers.get(key)
                if covers is None:
                    covers = self._covers[key] = value == term or role_manager.has_link(term, value)
                if covers:
                    kept.add(value)
        return result

    def split(self, rows: Sequence[Row]) -> Split | None:
        """Return the best split of one action's ``rows``, or None if it is not worth one."""
        if len(rows) <= PARTITION_ABOVE:
            return None
        best: Split | None = None
        best_size = len(rows)
        for position, manager in self._positions:
            covering = self._covering(manager, {row[position] for row in rows})
            by_term = {
                term: [row for row in rows if row[position] in values]
                for term, values in covering.items()
            }
            largest = max((len(kept) for kept in by_term.values()), default=len(rows))
            if largest < best_size:
                best, best_size = Split(position, by_term), largest
        return best
