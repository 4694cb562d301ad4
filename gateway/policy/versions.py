"""Stored policy versions and the one active version: import, create, activate, read.

Activation locks the single ``policy_active`` row (``SELECT ... FOR UPDATE`` on
PostgreSQL; on SQLite ``BEGIN IMMEDIATE`` already serialises writers), retires the
version in force, activates the new one and bumps the generation that every worker
polls, with its audit entry, all in the caller's transaction. A partial unique index
keeps a second active version out of the table whatever the code does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlmodel import Session, col, select

from gateway import usecase
from gateway.audit import log as audit_log
from gateway.audit.events import AuditEventType, RefValue
from gateway.clock import Clock
from gateway.db import Database
from gateway.errors import NotFoundError
from gateway.identity.actors import Actor
from gateway.models.policy_versions import (
    PolicyActive,
    PolicyVersion,
    VersionOrigin,
    VersionState,
)
from gateway.policy.compiler import CompiledPolicy
from gateway.policy.errors import NoActiveVersionError, VersionAlreadyActiveError
from gateway.policy.pack import Pack, compile_pack

POINTER_ID = 1
STARTUP_ACTOR = Actor(principal_id="system:gateway")
"""Who imports the pack on disk when a gateway starts on a database without versions."""


def pointer(session: Session, *, lock: bool = False) -> PolicyActive | None:
    """Return the active-version row (locked for this transaction if ``lock``), or None."""
    query = select(PolicyActive).where(PolicyActive.id == POINTER_ID)
    if lock:
        query = query.with_for_update()
    return session.exec(query.execution_options(populate_existing=True)).one_or_none()


def get_version(session: Session, version_id: int) -> PolicyVersion:
    """Return one stored version; raise NotFoundError if there is none with that id."""
    version = session.get(PolicyVersion, version_id)
    if version is None:
        raise NotFoundError(f"no policy version {version_id}", version=version_id)
    return version


def active_version(session: Session) -> PolicyVersion:
    """Return the version in force; raise NoActiveVersionError before the first import."""
    current = pointer(session)
    if current is None:
        raise NoActiveVersionError()
    return get_version(session, current.version_id)


def list_versions(session: Session) -> Sequence[PolicyVersion]:
    """Return every stored version, newest first."""
    return session.exec(select(PolicyVersion).order_by(col(PolicyVersion.id).desc())).all()


def pack_of(version: PolicyVersion) -> Pack:
    """Return the files of a stored version as a pack."""
    return Pack.from_json(version.sources)


def _record(
    session: Session,
    clock: Clock,
    actor: Actor,
    event_type: AuditEventType,
    policy_version: str,
    **refs: RefValue,
) -> None:
    usecase.record_event(
        session, clock, actor, event_type, policy_version=policy_version, refs=refs
    )


def find_or_create(
    session: Session,
    clock: Clock,
    actor: Actor,
    pack: Pack,
    compiled: CompiledPolicy,
    *,
    origin: VersionOrigin,
    proposal_id: int | None = None,
) -> PolicyVersion:
    """Return the stored version with exactly these files, creating (and auditing) it if new.

    The new version is not active; ``activate`` makes it so.
    """
    existing = session.exec(
        select(PolicyVersion).where(PolicyVersion.sources_sha256 == pack.sha256)
    ).one_or_none()
    if existing is not None:
        return existing
    version = PolicyVersion(
        policy_version=compiled.version,
        sources_sha256=pack.sha256,
        sources=pack.to_json(),
        rule_count=len(compiled.rules),
        origin=origin.value,
        proposal_id=proposal_id,
        created_at=clock.now(),
        created_by_principal_id=actor.principal_id,
        created_by_partner_id=actor.partner_id,
        state=VersionState.RETIRED.value,
    )
    session.add(version)
    session.flush()
    assert version.id is not None
    _record(
        session,
        clock,
        actor,
        AuditEventType.POLICY_VERSION_CREATE,
        compiled.version,
        version=version.id,
        origin=origin.value,
        proposal=proposal_id,
        sources_sha256=pack.sha256,
        rules=len(compiled.rules),
    )
    return version


def activate(
    session: Session,
    clock: Clock,
    actor: Actor,
    version: PolicyVersion,
    *,
    proposal_id: int | None = None,
) -> PolicyActive:
    """Make ``version`` the one active version; return the updated pointer row.

    Raises VersionAlreadyActiveError if it is active already. Callers reach this only
    through an approved proposal or the first import.
    """
    assert version.id is not None
    current = pointer(session, lock=True)
    now = clock.now()
    previous: int | None = None
    if current is not None:
        if current.version_id == version.id:
            raise VersionAlreadyActiveError(
                f"policy version {version.id} is already active", version=version.id
            )
        previous = current.version_id
        old = get_version(session, current.version_id)
        old.state = VersionState.RETIRED.value
        session.add(old)
        session.flush()  # retire first: the unique index allows one active version at a time
    version.state = VersionState.ACTIVE.value
    version.activated_at = now
    session.add(version)
    if current is None:
        current = PolicyActive(id=POINTER_ID, version_id=version.id, generation=1, activated_at=now)
    else:
        current.version_id = version.id
        current.generation += 1
        current.activated_at = now
    session.add(current)
    session.flush()
    _record(
        session,
        clock,
        actor,
        AuditEventType.POLICY_VERSION_ACTIVATE,
        version.policy_version,
        version=version.id,
        previous=previous,
        proposal=proposal_id,
        generation=current.generation,
    )
    return current


def ensure_active(
    db: Database, clock: Clock, actor: Actor, pack: Pack, compiled: CompiledPolicy
) -> tuple[PolicyVersion, bool]:
    """Return the active version, importing ``pack`` as the first one if none is stored.

    The second value is True when this call imported it. Safe when several processes
    start at once: the audit log's head row (locked first) serialises them.
    """
    with db.write() as session:
        audit_log.lock_head(session)
        current = pointer(session, lock=True)
        if current is not None:
            return get_version(session, current.version_id), False
        version = find_or_create(session, clock, actor, pack, compiled, origin=VersionOrigin.IMPORT)
        activate(session, clock, actor, version)
        return version, True


@dataclass(frozen=True)
class ActivePolicy:
    """The stored active version, compiled: what a one-shot command decides with."""

    version_id: int
    pack: Pack
    compiled: CompiledPolicy


def load_active(db: Database) -> ActivePolicy:
    """Return the active version of ``db`` with its files and compiled policy.

    Raises NoActiveVersionError when the database holds no version yet (``gateway init``
    imports the first) and SourceError when the stored files do not compile here.
    """
    with db.read() as session:
        version = active_version(session)
        version_id, sources = version.id, version.sources
    assert version_id is not None
    pack = Pack.from_json(sources)
    return ActivePolicy(version_id, pack, compile_pack(pack))
