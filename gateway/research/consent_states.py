"""Provider consent to a research agreement: the decisions, and the state they add up to.

A providing partner's privacy officer records ``consent`` or ``refuse``, and may
``revoke`` a consent. Every decision is kept; a provider's current state is its latest
decision for the agreement's *current version*, so a new version of an agreement needs
consent anew. Pure functions: the service reads the history and writes decisions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class ConsentDecision(StrEnum):
    """What a privacy officer can record."""

    CONSENT = "consent"
    REFUSE = "refuse"
    REVOKE = "revoke"


class ConsentState(StrEnum):
    """Where a provider stands on an agreement now."""

    CONSENTED = "consented"
    REFUSED = "refused"
    REVOKED = "revoked"
    NONE = "none"


_STATE = {
    ConsentDecision.CONSENT: ConsentState.CONSENTED,
    ConsentDecision.REFUSE: ConsentState.REFUSED,
    ConsentDecision.REVOKE: ConsentState.REVOKED,
}


@dataclass(frozen=True, slots=True)
class ConsentEntry:
    """One recorded decision: who decided what, when, for which agreement version."""

    provider: str
    decision: ConsentDecision
    agreement_version: int
    recorded_by: str
    recorded_at: datetime
    note: str | None = None

    @property
    def state(self) -> ConsentState:
        """The state this decision puts the provider in."""
        return _STATE[self.decision]


def current_states(
    history: Iterable[ConsentEntry], providers: Iterable[str], version: int
) -> dict[str, ConsentEntry | None]:
    """Return each provider's latest decision for ``version`` (None if it has none).

    ``history`` must be in the order the decisions were recorded.
    """
    latest: dict[str, ConsentEntry | None] = dict.fromkeys(providers)
    for entry in history:
        if entry.agreement_version == version and entry.provider in latest:
            latest[entry.provider] = entry
    return latest


def consenting(history: Iterable[ConsentEntry], providers: Iterable[str], version: int) -> set[str]:
    """Return the providers whose current state for ``version`` is consented."""
    return {
        provider
        for provider, entry in current_states(history, providers, version).items()
        if entry is not None and entry.state is ConsentState.CONSENTED
    }
