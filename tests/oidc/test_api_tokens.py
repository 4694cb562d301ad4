"""People call the API with their provider's JWT access tokens; partner systems keep theirs.

Each refusal is a 401 problem naming the failed check: another audience, expired, a
forged signature, an unknown issuer, an ID token instead of an access token. A person
with two principals names one; four-eyes sees one person behind both.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from joserfc.jwk import KeySet, RSAKey

from gateway.identity.oidc_tokens import REFETCH_SECONDS, ProviderCache
from tests.oidc.conftest import (
    CALLBACK,
    GEMEENTE_PO,
    RIEC_OPERATOR,
    RIEC_PO,
    RIEC_PO_2,
    World,
    provider_body,
)
from tests.oidc.idp import free_port, idp_access_token
from tests.workbench.helpers import RULES_30, add_officer, widened_rules


def bearer(token: str, principal: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    return headers | ({"Gateway-Principal": principal} if principal else {})


def me(world: World, headers: dict[str, str]) -> Any:
    return world.gateway.client.get("/v1/me", headers=headers)


def refused(world: World, token: str) -> str:
    response = me(world, bearer(token))
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert token not in response.text
    reason: str = problem["reason"]
    return reason


def test_a_persons_access_token_from_their_provider_acts_as_their_principal(
    world: World,
) -> None:
    token = idp_access_token(world.idps.gemeente, "gerda", CALLBACK)
    response = me(world, bearer(token["access_token"]))
    assert response.status_code == 200, response.text
    assert response.json()["principal_id"] == GEMEENTE_PO
    assert response.json()["role"] == "privacy-officer"


def test_a_token_for_another_audience_is_refused(world: World) -> None:
    token = world.idps.gemeente.sign({"sub": "gerda", "aud": "https://another.example/api"})
    assert refused(world, token) == "wrong-audience"


def test_an_expired_token_is_refused(world: World) -> None:
    token = world.idps.gemeente.sign({"sub": "gerda"}, now=int(time.time()) - 3600)
    assert refused(world, token) == "expired"


def test_a_forged_signature_is_refused(world: World) -> None:
    forger = RSAKey.generate_key(2048, parameters={"kid": str(world.idps.gemeente.key.kid)})
    token = world.idps.gemeente.sign({"sub": "gerda"}, key=forger)
    assert refused(world, token) == "bad-signature"
    # a token signed by the other partner's provider but claiming this issuer
    token = world.idps.gemeente.sign({"sub": "gerda"}, key=world.idps.riec.key)
    assert refused(world, token) == "bad-signature"


def test_an_unknown_issuer_is_refused(world: World) -> None:
    token = world.idps.gemeente.sign({"sub": "gerda", "iss": "https://idp.unknown.example"})
    assert refused(world, token) == "unknown-issuer"


def test_an_id_token_is_not_an_access_token(world: World) -> None:
    token = idp_access_token(world.idps.gemeente, "gerda", CALLBACK)
    assert refused(world, token["id_token"]) in {"wrong-token-type", "wrong-audience"}
    signed = world.idps.gemeente.sign({"sub": "gerda"}, typ="JWT")
    assert refused(world, signed) == "wrong-token-type"


def test_a_person_with_two_principals_names_one_and_four_eyes_sees_one_person(
    world: World,
) -> None:
    rita = idp_access_token(world.idps.riec, "rita", CALLBACK)["access_token"]
    response = me(world, bearer(rita))
    assert response.status_code == 401 and response.json()["reason"] == "ambiguous"
    assert me(world, bearer(rita, RIEC_PO_2)).json()["principal_id"] == RIEC_PO_2
    assert me(world, bearer(rita, GEMEENTE_PO)).status_code == 401

    client = world.gateway.client
    proposed = client.post(
        "/v1/policies/proposals",
        json={"title": "Widen step 5", "files": {RULES_30: widened_rules()}},
        headers=bearer(rita, RIEC_PO),
    )
    assert proposed.status_code == 201, proposed.text
    proposal = proposed.json()["id"]
    own = client.post(
        f"/v1/policies/proposals/{proposal}/approve",
        json={"note": "ok"},
        headers=bearer(rita, RIEC_PO_2),
    )
    assert own.status_code == 403 and own.json()["type"].endswith(":four-eyes-violation"), own.text
    other = add_officer(
        world.gateway.database, world.gateway.clock, f"{RIEC_PO}-3", person="rob@riec.invalid"
    )
    approved = client.post(
        f"/v1/policies/proposals/{proposal}/approve",
        json={"note": "ok"},
        headers=bearer(other),
    )
    assert approved.status_code == 200, approved.text


def test_a_partner_system_keeps_its_gateway_token(world: World) -> None:
    system = world.gateway.tokens["gemeente-smallingerland.partner-system"]
    assert me(world, bearer(system)).status_code == 200


def test_the_jwks_is_refetched_for_an_unknown_kid_at_most_every_few_seconds() -> None:
    first = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    second = RSAKey.generate_key(2048, parameters={"kid": "k2"})
    published: list[Any] = [first]
    now = [0.0]

    def fetch(url: str) -> Any:
        if url.endswith("openid-configuration"):
            return {"issuer": "https://idp.test", "jwks_uri": "https://idp.test/jwks"}
        return KeySet(published).as_dict()

    cache = ProviderCache(http=fetch, monotonic=lambda: now[0])
    assert [k.kid for k in cache.keys_for("https://idp.test", "k1").keys] == ["k1"]
    fetched = cache.fetches
    cache.keys_for("https://idp.test", "k1")
    assert cache.fetches == fetched  # cached
    published.append(second)  # the provider rotates
    now[0] += 1
    assert "k2" not in [k.kid for k in cache.keys_for("https://idp.test", "k2").keys]
    assert cache.fetches == fetched  # refetched too recently: no storm of fetches
    now[0] += REFETCH_SECONDS
    assert "k2" in [k.kid for k in cache.keys_for("https://idp.test", "k2").keys]
    assert cache.fetches == fetched + 1


@pytest.mark.parametrize("token", ["not.a.jwt", "a.b.c"])
def test_a_malformed_jwt_is_refused(world: World, token: str) -> None:
    assert refused(world, token) == "malformed"


def test_an_unreachable_provider_is_a_503_not_a_sign_in(world: World) -> None:
    gateway = world.gateway
    down = f"http://127.0.0.1:{free_port()}"
    body = provider_body(world.idps.gemeente) | {"issuer": down}
    response = gateway.client.put(
        "/v1/partners/politie-noord-nederland/oidc-provider",
        json=body,
        headers=gateway.auth(RIEC_OPERATOR),
    )
    assert response.status_code == 200, response.text
    token = world.idps.gemeente.sign({"sub": "piet", "iss": down})
    response = me(world, bearer(token))
    assert response.status_code == 503
    assert response.json()["type"].endswith(":oidc-provider-unavailable")
    page = gateway.client.get(
        "/workbench/sign-in/oidc/politie-noord-nederland", follow_redirects=False
    )
    assert page.status_code == 503 and "text/html" in page.headers["content-type"]
