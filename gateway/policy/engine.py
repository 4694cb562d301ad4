"""The policy engine: ``decide(request) -> Decision`` over pycasbin, cached and swappable.

Rows are partitioned by action, one pycasbin enforcer per action, so a cold decision
scans only its action's rows; an action with many rows is split once more by the
attribute that divides it best (``gateway.policy.partitions``), one enforcer per term.
Decisions are cached per compiled version (bounded).
``swap`` builds every enforcer of a new version off to the side and then replaces one
reference, so a decision always runs entirely against one version; the enforcers are
never modified after they are built, and cold decisions enforce under one process-wide
lock (pycasbin re-parses its matcher per call, which CPython cannot do in parallel).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import casbin
from casbin.model import Model

from gateway.policy.compiler import ROLE_MANAGERS, CompiledPolicy, compile_policy
from gateway.policy.decision import (
    DEFAULT_DENY_REASON,
    DEFAULT_DENY_RULE,
    DEFAULT_DENY_SOURCE,
    DIMENSIONS,
    Decision,
    DecisionRequest,
)
from gateway.policy.errors import UnknownTermError
from gateway.policy.partitions import Splitter

DEFAULT_CACHE_SIZE = 65_536

# pycasbin parses its matcher with ast.parse on every enforce, and CPython 3.11's AST
# conversion keeps process-wide state ("AST constructor recursion depth mismatch" when
# two threads parse at once). Cold decisions therefore enforce one at a time, across
# every engine and version in the process; warm (cached) decisions take no lock.
_ENFORCE_LOCK = threading.Lock()
_ACTION = DIMENSIONS.index("action")


def build_enforcer(
    compiled: CompiledPolicy,
    rows: Sequence[Sequence[str]],
    role_managers: Mapping[str, Any] | None = None,
) -> casbin.Enforcer:
    """Return a pycasbin enforcer over ``rows`` (in order) with the compiled role links.

    The rows are set on the model directly: the enforcer's own ``add_policy`` checks
    duplicates with a linear scan per row, which is quadratic on large packs. Enforcers
    of one version share ``role_managers`` (read-only once built) when given.
    """
    model = Model()
    model.load_model_from_text(compiled.model_text)
    enforcer = casbin.Enforcer(model)
    assertion = model["p"]["p"]
    assertion.policy = [list(row) for row in rows]
    assertion.policy_map = {",".join(row): i for i, row in enumerate(assertion.policy)}
    if role_managers is None:
        for name in ROLE_MANAGERS:
            model["g"][name].policy = [list(link) for link in compiled.links[name]]
        enforcer.build_role_links()
    else:
        for name in ROLE_MANAGERS:
            model["g"][name].rm = role_managers[name]
            enforcer.rm_map[name] = role_managers[name]
    return enforcer


@dataclass
class _Loaded:
    """One compiled version with its enforcers and its decision cache."""

    compiled: CompiledPolicy
    enforcers: dict[str, casbin.Enforcer]
    rules: dict[str, tuple[str, str, str]]  # id -> (effect, reason, source)
    # action -> (request position, term -> enforcer over the rows that can match it)
    splits: dict[str, tuple[int, dict[str, casbin.Enforcer]]]
    cache: dict[DecisionRequest, Decision] = field(default_factory=dict)


class PolicyEngine:
    """Decides requests against the active compiled policy; thread-safe."""

    def __init__(self, compiled: CompiledPolicy, *, cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        self._cache_size = cache_size
        self._swap_lock = threading.Lock()
        self._loaded = self._load(compiled)

    @classmethod
    def from_directory(cls, policies_dir: Path) -> PolicyEngine:
        """Return an engine over the pack in ``policies_dir``; raise SourceError if broken."""
        return cls(compile_policy(policies_dir))

    @staticmethod
    def _load(compiled: CompiledPolicy) -> _Loaded:
        by_action: dict[str, list[tuple[str, ...]]] = {}
        action_index = DIMENSIONS.index("action")
        for row in compiled.rows:
            by_action.setdefault(row[action_index], []).append(row)
        base = build_enforcer(compiled, ())
        shared = base.rm_map
        enforcers = {
            action: build_enforcer(compiled, rows, shared) for action, rows in by_action.items()
        }
        splitter = Splitter(compiled, base.model["m"]["m"].value, shared)
        splits = {}
        for action, rows in by_action.items():
            split = splitter.split(rows)
            if split is not None:
                splits[action] = (
                    split.position,
                    {
                        term: build_enforcer(compiled, kept, shared)
                        for term, kept in split.rows_by_term.items()
                    },
                )
        rules = {r.id: (r.effect, r.reason, r.source) for r in compiled.rules}
        return _Loaded(compiled, enforcers, rules, splits)

    @property
    def compiled(self) -> CompiledPolicy:
        """Return the compiled policy decisions are made against now."""
        return self._loaded.compiled

    @property
    def version(self) -> str:
        """Return the content hash of the active policy."""
        return self._loaded.compiled.version

    def swap(self, compiled: CompiledPolicy) -> None:
        """Make ``compiled`` the active policy; decisions in flight finish on the old one."""
        with self._swap_lock:
            if compiled.version == self._loaded.compiled.version:
                return
            loaded = self._load(compiled)
            self._loaded = loaded  # one reference assignment: atomic for every reader

    def clear_cache(self) -> None:
        """Forget every cached decision of the active policy."""
        self._loaded.cache.clear()

    def check(self, request: DecisionRequest) -> None:
        """Raise UnknownTermError if the request names a term the vocabulary lacks."""
        vocabulary = self._loaded.compiled.vocabulary
        for dim, value in zip(DIMENSIONS, request.values(), strict=True):
            problem = vocabulary.unknown(dim, value)
            if problem is not None:
                raise UnknownTermError(problem, attribute=dim)

    def decide(self, request: DecisionRequest) -> Decision:
        """Return the decision for ``request``; raise UnknownTermError for unknown names."""
        loaded = self._loaded
        cached = loaded.cache.get(request)
        if cached is not None:
            return cached
        decision = self._decide(loaded, request)
        cache = loaded.cache
        if len(cache) >= self._cache_size:
            try:
                del cache[next(iter(cache))]
            except (KeyError, StopIteration, RuntimeError):
                cache.clear()  # another thread evicted at the same time; start afresh
        cache[request] = decision
        return decision

    def decide_all(self, requests: Iterable[DecisionRequest]) -> list[Decision]:
        """Return the decision of each request, all against the same policy version."""
        loaded = self._loaded
        return [loaded.cache.get(r) or self._decide(loaded, r) for r in requests]

    def rows_scanned(self, request: DecisionRequest) -> int:
        """Return how many rows a cold decision of ``request`` tests (for diagnostics)."""
        enforcer = self._enforcer(self._loaded, request.values())
        return 0 if enforcer is None else len(enforcer.model["p"]["p"].policy)

    @staticmethod
    def _enforcer(loaded: _Loaded, values: Sequence[str]) -> casbin.Enforcer | None:
        action = values[_ACTION]
        enforcer = loaded.enforcers.get(action)
        split = loaded.splits.get(action)
        if split is not None:
            enforcer = split[1].get(values[split[0]], enforcer)
        return enforcer

    def _decide(self, loaded: _Loaded, request: DecisionRequest) -> Decision:
        vocabulary = loaded.compiled.vocabulary
        values = request.values()
        for dim, value in zip(DIMENSIONS, values, strict=True):
            problem = vocabulary.unknown(dim, value)
            if problem is not None:
                raise UnknownTermError(problem, attribute=dim)
        version = loaded.compiled.version
        enforcer = self._enforcer(loaded, values)
        if enforcer is None:
            return Decision(
                False, DEFAULT_DENY_REASON, DEFAULT_DENY_SOURCE, DEFAULT_DENY_RULE, version
            )
        with _ENFORCE_LOCK:
            allowed, row = enforcer.enforce_ex(*values)
        if not row:
            return Decision(
                False, DEFAULT_DENY_REASON, DEFAULT_DENY_SOURCE, DEFAULT_DENY_RULE, version
            )
        rule_id, obligations_id = row[-2], row[-1]
        _effect, reason, source = loaded.rules[rule_id]
        obligations = loaded.compiled.obligations[obligations_id] if allowed else ()
        return Decision(bool(allowed), reason, source, rule_id, version, obligations)
