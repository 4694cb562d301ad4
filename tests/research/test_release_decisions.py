"""Who may ask for a release and what the policy lets in (service/release_decisions.py)."""

from __future__ import annotations

import pytest

from gateway.errors import ConflictError
from gateway.identity.service import Caller
from gateway.models.partners import Partner
from gateway.research.agreements import Agreement
from gateway.research.errors import NotEntitledError
from gateway.research.service.release_decisions import (
    decide_release,
    require_may_request,
    science_partners,
)
from gateway.vocabulary import Role
from tests.helpers.research import AGREEMENT, POLITIE
from tests.research.conftest import Service


def caller(partner: str, kind: str, role: Role) -> Caller:
    return Caller(f"{partner}.{role.value}", partner, kind, role, "token")


def test_a_release_is_asked_for_by_a_researcher_or_a_named_riecs_officer(
    agreement: Agreement,
) -> None:
    require_may_request(caller("nscr", "science", Role.RESEARCHER), agreement)
    require_may_request(caller("riec-noord-nederland", "riec", Role.PRIVACY_OFFICER), agreement)
    for refused in (
        caller("voorbeeldbank", "bank", Role.PRIVACY_OFFICER),
        caller("riec-oost-nederland", "riec", Role.PRIVACY_OFFICER),
        caller("nscr", "science", Role.PRIVACY_OFFICER),
    ):
        with pytest.raises(NotEntitledError):
            require_may_request(refused, agreement)


def test_only_pairs_whose_provider_consented_are_allowed(service: Service) -> None:
    ctx = service.ctx
    agreement = ctx.agreements[AGREEMENT]
    with ctx.db.read() as session:
        science = science_partners(session, agreement)
    kinds = {ref.partner: ref.kind for ref in agreement.providers}
    pairs, allowed = decide_release(ctx, agreement, science, kinds, set())
    assert allowed == set() and pairs and not any(d.allowed for _, d in pairs)
    assert len(pairs) == len(science) * sum(len(i.providers) for i in agreement.instruments)
    _pairs, allowed = decide_release(ctx, agreement, science, kinds, {POLITIE})
    assert allowed == {(POLITIE, "politie-incidenten")}


def test_a_science_partner_missing_from_the_registry_stops_the_release(service: Service) -> None:
    ctx = service.ctx
    with ctx.db.write() as session:
        partner = session.get(Partner, "nscr")
        assert partner is not None
        partner.active = False
        session.add(partner)
    with ctx.db.read() as session, pytest.raises(ConflictError):
        science_partners(session, ctx.agreements[AGREEMENT])
