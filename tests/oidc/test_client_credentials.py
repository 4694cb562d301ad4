"""Partner systems may trade a signed client assertion for a short token (RFC 6749 4.4 + 7523).

The partner's own operator registers the system's public key; the system signs an
assertion (iss = sub = its principal id, aud = the token endpoint, a fresh jti) and gets
a gateway token for 15 minutes. A replayed, foreign-signed or misaddressed assertion is
``invalid_client``; over plain http the endpoint refuses.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from authlib.oauth2.rfc7523 import private_key_jwt_sign
from fastapi.testclient import TestClient
from joserfc.jwk import ECKey

from tests.conftest import Gateway

SYSTEM = "gemeente-smallingerland.partner-system"
TOKEN_URL = "https://testserver/oauth/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture
def https(gateway: Gateway) -> Iterator[TestClient]:
    with TestClient(
        gateway.client.app, base_url="https://testserver", raise_server_exceptions=False
    ) as client:
        yield client


@pytest.fixture
def system_key(gateway: Gateway, https: TestClient) -> ECKey:
    """A key pair whose public half the gemeente's operator registered for its system."""
    from tests.authz.scenarios import _operator

    operator = _operator(gateway, "gemeente-smallingerland")
    key = ECKey.generate_key("P-256", parameters={"kid": "system-1"})
    response = https.put(
        f"/v1/principals/{SYSTEM}/client-key",
        json={"jwk": key.as_dict(private=False)},
        headers={"Authorization": f"Bearer {operator}"},
    )
    assert response.status_code == 200, response.text
    return key


def assertion(key: ECKey, *, aud: str = TOKEN_URL, sub: str = SYSTEM) -> str:
    signed: bytes | str = private_key_jwt_sign(
        key,
        client_id=sub,
        token_endpoint=aud,
        alg="ES256",
        claims={"jti": uuid.uuid4().hex, "exp": int(time.time()) + 120},
    )
    return signed.decode() if isinstance(signed, bytes) else signed


def ask(client: TestClient, signed: str) -> tuple[int, dict[str, object]]:
    response = client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": signed,
        },
    )
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, object] = response.json()
    return response.status_code, body


def test_a_partner_system_trades_a_signed_assertion_for_a_short_token(
    gateway: Gateway, https: TestClient, system_key: ECKey
) -> None:
    status, body = ask(https, assertion(system_key))
    assert status == 200, body
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    token = str(body["access_token"])
    assert token.startswith("gw_")
    me = https.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["principal_id"] == SYSTEM


def test_a_replayed_foreign_or_misaddressed_assertion_is_an_invalid_client(
    gateway: Gateway, https: TestClient, system_key: ECKey
) -> None:
    signed = assertion(system_key)
    assert ask(https, signed)[0] == 200
    status, body = ask(https, signed)  # the same jti again
    assert status in (400, 401) and body["error"] == "invalid_client"
    forger = ECKey.generate_key("P-256", parameters={"kid": "system-1"})
    assert ask(https, assertion(forger))[1]["error"] == "invalid_client"
    elsewhere = assertion(system_key, aud="https://another.example/oauth/token")
    assert ask(https, elsewhere)[1]["error"] == "invalid_client"
    unknown = assertion(system_key, sub="gemeente-smallingerland.analyst")
    assert ask(https, unknown)[1]["error"] == "invalid_client"


def test_the_token_endpoint_needs_https(gateway: Gateway, system_key: ECKey) -> None:
    status, body = ask(gateway.client, assertion(system_key))
    assert status == 400 and body["error"] == "invalid_request"


def test_only_a_partner_systems_public_key_of_ones_own_partner_is_registered(
    gateway: Gateway, https: TestClient
) -> None:
    from tests.authz.scenarios import _operator

    operator = {"Authorization": f"Bearer {_operator(gateway, 'gemeente-smallingerland')}"}
    key = ECKey.generate_key("P-256")
    private = https.put(
        f"/v1/principals/{SYSTEM}/client-key",
        json={"jwk": key.as_dict(private=True)},
        headers=operator,
    )
    assert private.status_code == 422
    analyst = https.put(
        "/v1/principals/gemeente-smallingerland.analyst/client-key",
        json={"jwk": key.as_dict(private=False)},
        headers=operator,
    )
    assert analyst.status_code == 422
    riec = https.put(
        f"/v1/principals/{SYSTEM}/client-key",
        json={"jwk": key.as_dict(private=False)},
        headers=gateway.auth("riec-noord-nederland.operator"),
    )
    assert riec.status_code == 403
