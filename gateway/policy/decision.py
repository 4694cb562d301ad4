"""Decision requests and decisions: the values that cross the policy boundary.

A request names who asks (partner, its kind and role, always from the registry), what
(an ``Action``), where (process and step) and about what (purpose, data category, legal
basis, the provider's kind, the asker's relation to the data, provider consent). Unused
attributes hold explicit ``none`` values, never nothing.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from gateway.errors import InvalidInputError
from gateway.obligations.types import Obligation, from_json, to_json_list

NONE = "none"
"""The explicit "not applicable" term of every dimension (no case, no step, no category...)."""


class Action(StrEnum):
    """Everything the policy decides about, as ``scope:resource:action``."""

    CASE_CREATE = "case:case:create"
    PARTICIPANT_ADD = "case:participant:add"
    SIGNAL_SUBMIT = "case:signal:submit"
    SIGNAL_READ = "case:signal:read"
    HIT_QUERY = "case:hit:query"
    DECISION_RECORD = "case:decision:record"
    STEP_TRANSITION = "case:step:transition"
    RECORD_SHARE = "case:record:share"
    RECORD_READ = "case:record:read"
    RECORD_SHARE_ONWARD = "case:record:share-onward"
    OUTPUT_WRITE = "case:output:write"
    OUTPUT_READ = "case:output:read"
    EXTRACT_RELEASE = "research:extract:release"
    CONSENT_RECORD = "research:consent:record"
    ROWS_SUBMIT = "research:rows:submit"


BASIS_INVOKING_ACTIONS: frozenset[Action] = frozenset(
    {
        Action.SIGNAL_SUBMIT,
        Action.DECISION_RECORD,
        Action.RECORD_SHARE,
        Action.ROWS_SUBMIT,
        Action.CONSENT_RECORD,
    }
)
"""Actions whose legal basis is the asking partner's own: it submits, records or provides
under it, so its kind must be one the vocabulary lets invoke that basis (``invoked_by``)."""


class Relation(StrEnum):
    """The asker's relation to the data: its own (it provided or submitted it) or another's."""

    OWN = "own"
    OTHER = "other"
    NONE = NONE


class Consent(StrEnum):
    """Whether the providing partner consented to onward sharing."""

    GIVEN = "given"
    ABSENT = "absent"
    NOT_NEEDED = "not-needed"


DIMENSIONS: tuple[str, ...] = (
    "partner_id",
    "partner_kind",
    "role",
    "action",
    "process",
    "step",
    "purpose",
    "category",
    "legal_basis",
    "provider_kind",
    "relation",
    "consent",
)
"""The request attributes, in the order of the Casbin request definition."""


@functools.lru_cache(maxsize=4096)
def _digest(request: DecisionRequest) -> str:
    """``DecisionRequest.digest``, kept: the same requests are recorded all day."""
    body = json.dumps(request.to_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class DecisionRequest:
    """One question to the policy. Hashable: the engine caches decisions by it."""

    partner_id: str
    partner_kind: str
    role: str
    action: Action
    process: str = NONE
    step: int | None = None
    purpose: str = NONE
    category: str = NONE
    legal_basis: str = NONE
    provider_kind: str = NONE
    relation: Relation = Relation.NONE
    consent: Consent = Consent.NOT_NEEDED

    def values(self) -> tuple[str, ...]:
        """Return the request as the Casbin request tuple (step as text, ``none`` if unset)."""
        return (
            self.partner_id,
            self.partner_kind,
            str(self.role),
            str(self.action),
            self.process,
            NONE if self.step is None else str(self.step),
            self.purpose,
            self.category,
            self.legal_basis,
            self.provider_kind,
            str(self.relation),
            str(self.consent),
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the request as a JSON-ready mapping (every attribute present)."""
        return {
            "partner_id": self.partner_id,
            "partner_kind": self.partner_kind,
            "role": str(self.role),
            "action": str(self.action),
            "process": self.process,
            "step": self.step,
            "purpose": self.purpose,
            "category": self.category,
            "legal_basis": self.legal_basis,
            "provider_kind": self.provider_kind,
            "relation": str(self.relation),
            "consent": str(self.consent),
        }

    def digest(self) -> str:
        """Return the hex SHA-256 of the canonical JSON of the request."""
        return _digest(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DecisionRequest:
        """Return a request from its mapping form; raise InvalidInputError if malformed.

        Names are checked against the vocabulary by the engine, not here.
        """
        unknown = set(data) - set(DIMENSIONS)
        if unknown:
            raise InvalidInputError("the request names an attribute that is not a dimension")
        for required in ("partner_kind", "role", "action"):
            if required not in data:
                raise InvalidInputError(f"a decision request needs {required}")
        try:
            action = Action(str(data["action"]))
        except ValueError as exc:
            raise InvalidInputError("unknown action") from exc
        try:
            relation = Relation(str(data.get("relation", NONE)))
            consent = Consent(str(data.get("consent", Consent.NOT_NEEDED)))
        except ValueError as exc:
            raise InvalidInputError(
                "relation must be own, other or none; consent given, absent or not-needed"
            ) from exc
        step = data.get("step")
        if step in (None, NONE, ""):
            step_value: int | None = None
        else:
            try:
                step_value = int(str(step))
            except ValueError as exc:
                raise InvalidInputError("step must be 1 to 7 or none") from exc
        return cls(
            partner_id=str(data.get("partner_id", "example")),
            partner_kind=str(data["partner_kind"]),
            role=str(data["role"]),
            action=action,
            process=str(data.get("process", NONE)),
            step=step_value,
            purpose=str(data.get("purpose", NONE)),
            category=str(data.get("category", NONE)),
            legal_basis=str(data.get("legal_basis", NONE)),
            provider_kind=str(data.get("provider_kind", NONE)),
            relation=relation,
            consent=consent,
        )


DEFAULT_DENY_RULE = "default-deny"
DEFAULT_DENY_REASON = "No rule allows this, so it is denied (default deny)."
DEFAULT_DENY_SOURCE = "Default deny: policies/README.md"
OWN_BASIS_RULE_PREFIX = "eigen-grondslag-"
"""Ids of the derived deny rules ``eigen-grondslag-<kind>``: an asker's basis not its own."""
PROVIDER_BASIS_RULE_PREFIX = "grondslag-van-verstrekker-"
"""Ids of the derived deny rules ``grondslag-van-verstrekker-<kind>``: a provider's basis not
its own. Rule files may not use ids with either prefix."""


@dataclass(frozen=True, slots=True)
class Decision:
    """The policy's answer: allowed or not, why, by which rule of which version, and how."""

    allowed: bool
    reason: str
    source: str
    rule_id: str
    policy_version: str
    obligations: tuple[Obligation, ...] = ()

    @property
    def is_default_deny(self) -> bool:
        """True when no rule matched."""
        return self.rule_id == DEFAULT_DENY_RULE

    @property
    def is_foreign_basis(self) -> bool:
        """True when a legal basis was refused because it is not the partner's own."""
        return not self.allowed and self.rule_id.startswith(
            (OWN_BASIS_RULE_PREFIX, PROVIDER_BASIS_RULE_PREFIX)
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the decision as a JSON-ready mapping."""
        return {
            "allowed": self.allowed,
            "reason": self.reason,
            "source": self.source,
            "rule_id": self.rule_id,
            "policy_version": self.policy_version,
            "obligations": to_json_list(self.obligations),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Decision:
        """Return a decision from its mapping form."""
        return cls(
            allowed=bool(data["allowed"]),
            reason=str(data["reason"]),
            source=str(data["source"]),
            rule_id=str(data["rule_id"]),
            policy_version=str(data["policy_version"]),
            obligations=tuple(from_json(o) for o in data.get("obligations", ())),
        )
