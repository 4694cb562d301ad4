"""Which register of processing activities was in force when an audit entry was written.

An entry that cites a policy decision names the compiled policy version it was decided
under, and the register is part of that version's hash, so the stored version with that
hash holds the register in force. An entry that cites none (a lookup in the processing
log, a holding registered) was written under the version activated last before it: the
``policy:version:activate`` entry with the highest lower leaf index names it.
"""

from __future__ import annotations

import bisect
import json

from sqlmodel import Session, col, select

from gateway.audit.events import AuditEventType
from gateway.models.audit import AuditEntry
from gateway.models.policy_versions import PolicyVersion
from gateway.policy.errors import NoActiveVersionError
from gateway.policy.pack import compile_pack
from gateway.policy.register import EMPTY, Register
from gateway.policy.versions import active_version, pack_of
from gateway.yamlsource import SourceError


class RegisterHistory:
    """Finds, and remembers for one read, the register in force for audit entries."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._by_version: dict[str, Register] = {}
        self._activations: list[tuple[int, object]] | None = None

    def of_policy_version(self, policy_version: str) -> Register:
        """Return the register of the stored version compiling to ``policy_version``.

        Falls back to the active version's register when no stored version has that
        hash (an entry older than the first import), and to an empty register when the
        stored files no longer compile here.
        """
        if policy_version not in self._by_version:
            stored = self.session.exec(
                select(PolicyVersion)
                .where(PolicyVersion.policy_version == policy_version)
                .order_by(col(PolicyVersion.id))
                .limit(1)
            ).first()
            self._by_version[policy_version] = self._register(stored)
        return self._by_version[policy_version]

    def at(self, policy_version: str | None, leaf_index: int) -> Register:
        """Return the register in force for the entry at ``leaf_index``.

        ``policy_version`` is the version the entry names, if it names one.
        """
        if policy_version:
            return self.of_policy_version(policy_version)
        if self._activations is None:
            rows = self.session.exec(
                select(AuditEntry.leaf_index, AuditEntry.leaf)
                .where(AuditEntry.event_type == AuditEventType.POLICY_VERSION_ACTIVATE.value)
                .order_by(col(AuditEntry.leaf_index))
            ).all()
            self._activations = [
                (index, json.loads(leaf).get("policy_version")) for index, leaf in rows
            ]
        at = bisect.bisect_left(self._activations, leaf_index, key=lambda row: row[0])
        named = self._activations[at - 1][1] if at > 0 else None
        if isinstance(named, str) and named:
            return self.of_policy_version(named)
        return self._register(None)

    def _register(self, stored: PolicyVersion | None) -> Register:
        try:
            version = stored if stored is not None else active_version(self.session)
        except NoActiveVersionError:
            return EMPTY
        return _register_of(version)


_COMPILED: dict[str, Register] = {}
"""Registers by their stored pack's ``sources_sha256``: a stored pack never changes, so
each is compiled once per process (not once per audit entry or per read)."""
_COMPILED_MAX = 64


def _register_of(version: PolicyVersion) -> Register:
    register = _COMPILED.get(version.sources_sha256)
    if register is None:
        try:
            register = compile_pack(pack_of(version)).register
        except SourceError:
            register = EMPTY  # stored files that no longer compile here
        if len(_COMPILED) >= _COMPILED_MAX:
            _COMPILED.clear()
        _COMPILED[version.sources_sha256] = register
    return register


def register_in_force(session: Session) -> tuple[PolicyVersion, Register]:
    """Return the active policy version and its register of processing activities.

    Raises NoActiveVersionError before the first import.
    """
    version = active_version(session)
    return version, _register_of(version)
