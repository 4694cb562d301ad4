"""The running gateway's shared objects, built once per process and passed down."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry

from gateway.clock import Clock
from gateway.config import Settings
from gateway.db import Database
from gateway.identity.oidc_tokens import ProviderCache
from gateway.keys import KeyRing
from gateway.keys.signing import Ed25519Signer
from gateway.policy.engine import PolicyEngine
from gateway.policy.reload import PolicyWatcher
from gateway.policy.retention import Retention
from gateway.research.agreements import Agreement

if TYPE_CHECKING:
    from gateway.audit.witnessing import Witnessing

ReadinessCheck = Callable[[], str | None]
"""Returns None when ready, else a short reason (no secrets, no personal data)."""


@dataclass
class AppContext:
    """Settings, store, clock, key ring, policy engine and metrics of one gateway process."""

    settings: Settings
    db: Database
    clock: Clock
    keys: KeyRing
    policy: PolicyEngine
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    readiness: dict[str, ReadinessCheck] = field(default_factory=dict)
    policy_watcher: PolicyWatcher | None = None
    agreements: dict[str, Agreement] = field(default_factory=dict)
    """The research agreements of ``policies/agreements/``, by id, loaded at start-up."""
    retention: Retention = field(default_factory=Retention)
    """How long audit details and subject index rows are kept, per data category (the
    pack's ``retention.yaml``), loaded with the agreements."""
    witnessing: Witnessing | None = None
    """The audit log's witnesses, when ``GATEWAY_WITNESSES`` lists any."""
    oidc: ProviderCache = field(default_factory=ProviderCache)
    """Partners' identity providers' metadata and keys, cached (``identity.oidc_tokens``)."""

    @property
    def signer(self) -> Ed25519Signer:
        """The key ring's current Ed25519 key: signs audit checkpoints and manifests.

        Read from the ring each time, so a rotation in another process is picked up.
        """
        return self.keys.signer()

    @property
    def retired_public_keys(self) -> tuple[bytes, ...]:
        """The public keys of earlier signing key versions (they still verify old notes)."""
        return tuple(k.public_key for k in self.keys.signing_public_keys() if not k.active)
