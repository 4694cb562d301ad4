"""Operators of partners other than the demo's RIEC, made the way the host's installer does."""

from __future__ import annotations

from datetime import timedelta

from gateway.identity import service
from gateway.identity.service import CLI_ACTOR
from gateway.vocabulary import Role
from tests.conftest import Gateway


def operator_of(gateway: Gateway, partner_id: str) -> dict[str, str]:
    """Add an operator principal to ``partner_id`` (as the CLI does) and return its header."""
    principal_id = f"{partner_id}.operator"
    with gateway.database.write() as session:
        service.add_principal(
            session,
            gateway.clock,
            CLI_ACTOR,
            partner_id=partner_id,
            role=Role.OPERATOR,
            label=f"Operator of {partner_id} (test)",
            principal_id=principal_id,
        )
        new, _row = service.issue_token(
            session, gateway.clock, CLI_ACTOR, principal_id, timedelta(days=1)
        )
    return {"Authorization": f"Bearer {new.plaintext}"}
