"""Real OpenID Providers for the tests: panva/oidc-provider (``provider.mjs``) under Node.

``start_idp`` runs one provider on a free port as a subprocess, with a client for the
gateway and a fresh RSA signing key that the test also holds (to make tokens the
provider would never issue: expired, for another audience). ``sign_in_at_idp`` walks
the provider's sign-in form with an HTTP client, as a person's browser would.
``scripts/ensure-services.sh`` runs ``npm ci --prefix tests/oidc``.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
from joserfc import jwt
from joserfc.jwk import RSAKey

HERE = Path(__file__).resolve().parent
ACR_SUBSTANTIAL = "urn:gateway:loa:substantial"
ACR_LOW = "urn:gateway:loa:low"


def free_port() -> int:
    """Return a port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Idp:
    """A running provider: its issuer, the gateway's client, its signing key, its audience."""

    issuer: str
    client_id: str
    client_secret: str
    audience: str
    key: RSAKey
    client_key: RSAKey | None = None
    """The gateway's private key when the client authenticates with private_key_jwt."""
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def sign(
        self,
        claims: dict[str, Any],
        *,
        key: RSAKey | None = None,
        typ: str = "at+jwt",
        lifetime: int = 300,
        now: int | None = None,
    ) -> str:
        """Return a JWT with the provider's kid, signed by its key (or ``key``: a forgery)."""
        issued = int(time.time()) if now is None else now
        body = {
            "iss": self.issuer,
            "aud": self.audience,
            "iat": issued,
            "exp": issued + lifetime,
            "jti": f"test-{issued}",
            "client_id": self.client_id,
            **claims,
        }
        header = {"alg": "RS256", "kid": self.key.kid, "typ": typ}
        return jwt.encode(header, body, key or self.key)


def _node() -> str:
    node = shutil.which("node")
    assert node, (
        "Node.js is needed for the test identity providers (see scripts/ensure-services.sh)"
    )
    assert (HERE / "node_modules" / "oidc-provider").is_dir(), (
        "run `npm ci --prefix tests/oidc` (scripts/ensure-services.sh does)"
    )
    return node


@contextmanager
def start_idp(
    folder: Path,
    name: str,
    redirect_uris: list[str],
    post_logout_redirect_uris: list[str] | None = None,
    *,
    acr: str = ACR_SUBSTANTIAL,
    private_key_jwt: bool = False,
) -> Iterator[Idp]:
    """Run one provider until the block ends; yield it once it answers discovery.

    With ``private_key_jwt`` the gateway's client authenticates with a key pair
    (``Idp.client_key``) instead of its secret.
    """
    port = free_port()
    key = RSAKey.generate_key(2048, parameters={"kid": f"{name}-1", "use": "sig", "alg": "RS256"})
    client_key = (
        RSAKey.generate_key(2048, parameters={"kid": f"{name}-client", "alg": "RS256"})
        if private_key_jwt
        else None
    )
    idp = Idp(
        issuer=f"http://127.0.0.1:{port}",
        client_id=f"gateway-{name}",
        client_secret=f"secret-{name}-0123456789abcdef0123456789",
        audience=f"https://gateway.test/api/{name}",
        key=key,
        client_key=client_key,
    )
    client: dict[str, Any] = {
        "client_id": idp.client_id,
        "client_secret": idp.client_secret,
        "redirect_uris": redirect_uris,
        "post_logout_redirect_uris": post_logout_redirect_uris or [],
    }
    if client_key is not None:
        del client["client_secret"]
        client["token_endpoint_auth_method"] = "private_key_jwt"
        client["jwks"] = {"keys": [client_key.as_dict(private=False)]}
    config = {
        "port": port,
        "clients": [client],
        "jwks": {"keys": [key.as_dict(private=True)]},
        "audience": idp.audience,
        "acr": acr,
    }
    path = folder / f"idp-{name}.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    log = (folder / f"idp-{name}.log").open("wb")
    process = subprocess.Popen(
        [_node(), str(HERE / "provider.mjs"), str(path)], stdout=log, stderr=subprocess.STDOUT
    )
    idp.process = process
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, (folder / f"idp-{name}.log").read_text()
            try:
                if httpx.get(f"{idp.issuer}/.well-known/openid-configuration").is_success:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the test identity provider did not start"
            time.sleep(0.1)
        yield idp
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def sign_in_at_idp(authorize_url: str, login: str, *, acr: str | None = None) -> str:
    """Sign in as ``login`` at the provider and return the URL it sends the browser back to."""
    with httpx.Client(timeout=10) as browser:
        response = browser.get(authorize_url)
        for _ in range(10):
            if response.status_code not in (302, 303):
                break
            target = urljoin(str(response.url), response.headers["location"])
            if not target.startswith(authorize_url.split("/auth")[0]):
                return target  # the redirect back to the gateway (an error, at once)
            response = browser.get(target)
        assert response.status_code == 200, response.text
        form = {"login": login} | ({"acr": acr} if acr else {})
        response = browser.post(str(response.url), data=form)
        for _ in range(10):
            assert response.status_code in (302, 303), response.text
            target = urljoin(str(response.url), response.headers["location"])
            if not target.startswith(authorize_url.split("/auth")[0]):
                return target
            response = browser.get(target)
    raise AssertionError("the provider never sent the browser back")


def idp_access_token(idp: Idp, login: str, redirect_uri: str) -> dict[str, Any]:
    """Run the code flow (PKCE) as the gateway's client would and return the token response.

    What a person's script gets from their provider: a JWT access token for the gateway.
    """
    from authlib.common.security import generate_token
    from authlib.integrations.httpx_client import OAuth2Client

    meta = httpx.get(f"{idp.issuer}/.well-known/openid-configuration").json()
    verifier = generate_token(48)
    with OAuth2Client(
        client_id=idp.client_id,
        client_secret=idp.client_secret,
        scope="openid",
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
    ) as client:
        url, _state = client.create_authorization_url(
            meta["authorization_endpoint"], code_verifier=verifier, nonce=generate_token(20)
        )
        back = sign_in_at_idp(url, login)
        code = parse_qs(urlsplit(back).query)["code"][0]
        token: dict[str, Any] = client.fetch_token(
            meta["token_endpoint"], code=code, code_verifier=verifier
        )
    return token
