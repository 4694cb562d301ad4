"""Who acts: an authenticated caller, and the actor an audit entry names.

These sit below every use case (``gateway.usecase`` and the registry's service alike),
so they live apart from the registry's use cases that also need the seam.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.vocabulary import Role

SYSTEM_ACTOR = "system:cli"


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated principal, with its partner's kind read from the registry."""

    principal_id: str
    partner_id: str
    partner_kind: str
    role: Role
    token_id: str


@dataclass(frozen=True, slots=True)
class Actor:
    """Who performs a change, for the audit log: a principal or the local CLI."""

    principal_id: str
    partner_id: str | None = None

    @classmethod
    def of(cls, caller: Caller) -> Actor:
        """Return the actor for an authenticated caller."""
        return cls(principal_id=caller.principal_id, partner_id=caller.partner_id)


CLI_ACTOR = Actor(principal_id=SYSTEM_ACTOR)
