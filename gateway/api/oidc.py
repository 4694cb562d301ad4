"""Partners' identity providers and people links (operators); the rules are in identity.oidc."""

from __future__ import annotations

from fastapi import APIRouter

from gateway.api.deps import Ctx, OperatorCaller
from gateway.config import Mode
from gateway.identity import oidc
from gateway.identity.authority import Registrar
from gateway.identity.oidc import OidcClientAuth, ProviderSpec
from gateway.schemas.oidc import OidcPersonIn, OidcPersonOut, OidcProviderIn, OidcProviderOut

router = APIRouter(prefix="/v1", tags=["partners"])


@router.put(
    "/partners/{partner_id}/oidc-provider",
    summary="Register or replace a partner's identity provider (operator of the operating RIEC)",
)
def set_provider(
    partner_id: str, body: OidcProviderIn, caller: OperatorCaller, ctx: Ctx
) -> OidcProviderOut:
    """Store the partner's OpenID Connect provider; its credential is sealed, never returned.

    Only the operating RIEC's operators (403 ``operating-riec-only``, audited); 409 when
    another partner already uses the issuer.
    """
    spec = ProviderSpec(
        issuer=body.issuer,
        client_id=body.client_id,
        client_auth=body.client_auth,
        credential=body.client_credential.get_secret_value(),
        acr_values=tuple(body.acr_values),
        api_audience=body.api_audience,
    )
    row = oidc.set_provider(
        ctx.db,
        ctx.clock,
        Registrar(caller, ctx.settings.resolved_operating_partner),
        ctx.keys,
        partner_id,
        spec,
        allow_http=ctx.settings.mode is Mode.DEVELOPMENT,
    )
    return OidcProviderOut(
        partner_id=row.partner_id,
        issuer=row.issuer,
        client_id=row.client_id,
        client_auth=OidcClientAuth(row.client_auth),
        acr_values=row.acr_values.split(),
        api_audience=row.api_audience,
        updated_at=row.updated_at,
    )


@router.post(
    "/principals/{principal_id}/oidc-person",
    status_code=201,
    summary="Link a principal to a person of its partner's identity provider (operator)",
)
def link_person(
    principal_id: str, body: OidcPersonIn, caller: OperatorCaller, ctx: Ctx
) -> OidcPersonOut:
    """Let the provider's person ``subject`` act as this principal of one's own partner.

    The principal's person (for four-eyes) becomes that person. 403 ``foreign-partner``
    (audited) for another partner's principal; 404 when the partner has no provider;
    409 when the principal is already linked.
    """
    link = oidc.link_person(
        ctx.db,
        ctx.clock,
        Registrar(caller, ctx.settings.resolved_operating_partner),
        ctx.keys.person_key,
        principal_id,
        body.subject,
    )
    return OidcPersonOut(
        principal_id=link.principal_id, partner_id=link.partner_id, linked_at=link.created_at
    )
