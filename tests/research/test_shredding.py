"""Shredding a research project (gateway/research/service/shredding.py), called directly."""

from __future__ import annotations

import pytest

from gateway.audit.events import AuditEventType
from gateway.errors import InvalidInputError, KeyShreddedError, NotFoundError
from gateway.identity.service import CLI_ACTOR
from gateway.research.service.rows import submit_rows
from gateway.research.service.shredding import (
    require_project,
    shred_project,
    shred_project_on_request,
)
from tests.helpers.research import AGREEMENT, POLICE_ROW, POLITIE, PROJECT, system
from tests.research.conftest import Service


def test_shredding_destroys_both_keys_once_in_one_audited_step(service: Service) -> None:
    police = service.caller(system(POLITIE))
    submit_rows(service.ctx, police, AGREEMENT, "intake-0001", "politie-incidenten", [POLICE_ROW])
    assert shred_project(service.ctx, CLI_ACTOR, AGREEMENT) is True
    assert shred_project(service.ctx, CLI_ACTOR, AGREEMENT, by="operator") is False
    first, second = service.leaves(AuditEventType.RESEARCH_PROJECT_SHRED)
    assert first["refs"]["project"] == PROJECT
    assert (first["refs"]["rows_key_destroyed"], first["refs"]["secret_destroyed"]) == (True, True)
    assert (second["refs"]["rows_key_destroyed"], second["refs"]["secret_destroyed"]) == (
        False,
        False,
    )
    with pytest.raises(KeyShreddedError):
        submit_rows(
            service.ctx, police, AGREEMENT, "intake-0002", "politie-incidenten", [POLICE_ROW]
        )


def test_a_project_is_shredded_on_request_only_when_it_is_known(service: Service) -> None:
    ctx = service.ctx
    projects = {a.project for a in ctx.agreements.values()}
    with pytest.raises(NotFoundError):
        require_project(ctx.keys, "geen-project", projects)
    with pytest.raises(InvalidInputError):
        require_project(ctx.keys, "../keys", projects)
    done = shred_project_on_request(
        ctx.db, ctx.keys, CLI_ACTOR, PROJECT, by="privacy-officer", agreement_projects=projects
    )
    again = shred_project_on_request(
        ctx.db, ctx.keys, CLI_ACTOR, PROJECT, by="privacy-officer", agreement_projects=projects
    )
    assert (done, again) == (True, False)
