"""The end of a research project: its pseudonymisation secret and row key destroyed.

Afterwards the stored rows cannot be read, no rows can be added, and the project's
pseudonyms cannot be produced or linked by anyone. The key ring writes its own audit
entries for each key; ``shred_project`` adds the project's entry in the same transaction.
"""

from __future__ import annotations

from collections.abc import Collection

from gateway import usecase
from gateway.audit.events import AuditEventType
from gateway.context import AppContext
from gateway.db import Database
from gateway.errors import NotFoundError
from gateway.identity.service import Actor
from gateway.keys import KeyKind, KeyRing, ShredReason
from gateway.keys.ring import valid_key_id
from gateway.research.service.agreement_access import (
    agreement_refs,
    find_agreement,
    rows_key_id,
)


def shred_project(
    ctx: AppContext, actor: Actor, agreement_id: str, *, by: str | None = None
) -> bool:
    """Destroy the project's pseudonymisation secret and its row key, in one audited step.

    ``by`` (a role) records that someone asked for it; without it, the project's
    retention ended. Returns False if both were destroyed before. Raises NotFoundError
    for an unknown agreement.
    """
    agreement = find_agreement(ctx, agreement_id)
    keys = ctx.keys
    reason = ShredReason.RETENTION if by is None else ShredReason.REQUEST
    with ctx.db.write() as session:
        rows = keys.shred_case(
            session, rows_key_id(agreement.project), actor=actor, reason=reason, by=by
        )
        secret = keys.shred_project(session, agreement.project, actor=actor, reason=reason, by=by)
        usecase.record(
            session,
            ctx.clock,
            actor,
            AuditEventType.RESEARCH_PROJECT_SHRED,
            purpose=agreement.purpose,
            legal_basis=agreement.legal_basis,
            refs=agreement_refs(
                agreement,
                project=agreement.project,
                rows_key_destroyed=rows,
                secret_destroyed=secret,
            ),
        )
    return rows or secret


def require_project(keys: KeyRing, project: str, agreement_projects: Collection[str]) -> None:
    """Raise InvalidInputError for a malformed id, NotFoundError unless the project is known."""
    valid_key_id(project, "project")
    if project not in agreement_projects and not keys.has_key(KeyKind.PROJECT, project):
        raise NotFoundError(f"no such research project: {project}", project=project)


def shred_project_on_request(
    db: Database,
    keys: KeyRing,
    actor: Actor,
    project: str,
    *,
    by: str,
    agreement_projects: Collection[str],
) -> bool:
    """Destroy ``project``'s pseudonymisation secret and row key now, at the request of ``by``.

    One transaction with the key ring's audit entries. Raises NotFoundError for a project
    neither an agreement nor the key ring knows; returns False if it was shredded before.
    """
    require_project(keys, project, agreement_projects)
    with db.write() as session:
        rows = False
        if project in agreement_projects or keys.has_key(KeyKind.CASE, rows_key_id(project)):
            rows = keys.shred_case(
                session, rows_key_id(project), actor=actor, reason=ShredReason.REQUEST, by=by
            )
        secret = keys.shred_project(
            session, project, actor=actor, reason=ShredReason.REQUEST, by=by
        )
    return rows or secret
