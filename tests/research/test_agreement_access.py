"""Where a caller stands in an agreement (gateway/research/service/agreement_access.py)."""

from __future__ import annotations

import pytest

from gateway.errors import ConflictError, NotFoundError
from gateway.identity.service import Caller
from gateway.research.agreements import Agreement
from gateway.research.errors import NotAProviderError, NotEntitledError
from gateway.research.service.agreement_access import (
    agreement_refs,
    all_agreements,
    find_agreement,
    is_researcher,
    named_partners,
    provider_ref,
    require_may_see,
    rows_key_id,
)
from gateway.vocabulary import Role
from tests.helpers.research import AGREEMENT, EXPIRED
from tests.research.conftest import Service


def caller(partner: str, kind: str, role: Role) -> Caller:
    return Caller(f"{partner}.{role.value}", partner, kind, role, "token")


def test_the_named_see_and_providers_are_providers(agreement: Agreement) -> None:
    assert {"politie-noord-nederland", "nscr"} <= named_partners(agreement)
    researcher = caller("nscr", "science", Role.RESEARCHER)
    assert is_researcher(researcher, agreement)
    require_may_see(researcher, agreement)
    require_may_see(caller("voorbeeldbank", "bank", Role.PRIVACY_OFFICER), agreement)
    with pytest.raises(NotEntitledError):
        require_may_see(caller("voorbeeldbank", "bank", Role.ANALYST), agreement)
    with pytest.raises(NotEntitledError):
        require_may_see(caller("nla", "nla", Role.PRIVACY_OFFICER), agreement)
    assert provider_ref(caller("voorbeeldbank", "bank", Role.ANALYST), agreement).kind == "bank"
    with pytest.raises(NotAProviderError):
        provider_ref(researcher, agreement)
    with pytest.raises(ConflictError):  # the registry and the agreement disagree on its kind
        provider_ref(caller("voorbeeldbank", "telecom", Role.ANALYST), agreement)


def test_refs_name_the_agreement_and_its_version(agreement: Agreement) -> None:
    assert agreement_refs(agreement, batch="rb-1") == {
        "agreement": agreement.id,
        "agreement_version": agreement.version,
        "batch": "rb-1",
    }
    assert rows_key_id("studie") == "research.studie"


def test_agreements_are_found_by_id_only(service: Service) -> None:
    assert [a.id for a in all_agreements(service.ctx)] == sorted([AGREEMENT, EXPIRED])
    assert find_agreement(service.ctx, AGREEMENT).id == AGREEMENT
    with pytest.raises(NotFoundError):
        find_agreement(service.ctx, "geen-studie")
