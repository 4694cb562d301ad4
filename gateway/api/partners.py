"""Partner registry routes (operators), and ``/v1/me`` for any authenticated caller."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, status

from gateway.api.deps import Ctx, CurrentCaller, OperatorCaller, ReadSession
from gateway.identity import service
from gateway.identity.service import Actor
from gateway.models.partners import Partner, Principal
from gateway.schemas.partners import (
    Me,
    PartnerIn,
    PartnerOut,
    PrincipalIn,
    PrincipalOut,
    PrincipalWithToken,
    TokenOut,
)

router = APIRouter(prefix="/v1", tags=["partners"])


def _partner_out(partner: Partner) -> PartnerOut:
    return PartnerOut.model_validate(partner, from_attributes=True)


def _principal_out(principal: Principal) -> PrincipalOut:
    return PrincipalOut.model_validate(principal, from_attributes=True)


@router.get("/me", summary="The authenticated caller")
def me(caller: CurrentCaller) -> Me:
    """Return the caller's principal, partner, partner kind and role."""
    return Me(
        principal_id=caller.principal_id,
        partner_id=caller.partner_id,
        partner_kind=caller.partner_kind,
        role=caller.role,
    )


@router.get("/partners", summary="List partners (operator)")
def list_partners(_caller: OperatorCaller, session: ReadSession) -> list[PartnerOut]:
    """Return every registered partner."""
    return [_partner_out(p) for p in service.list_partners(session)]


@router.post(
    "/partners", status_code=status.HTTP_201_CREATED, summary="Register a partner (operator)"
)
def add_partner(body: PartnerIn, caller: OperatorCaller, ctx: Ctx) -> PartnerOut:
    """Register a partner organisation; 409 if its id or identifier is taken."""
    kinds = ctx.policy.compiled.vocabulary.partner_kinds
    with ctx.db.write() as session:
        partner = service.add_partner(
            session,
            ctx.clock,
            Actor.of(caller),
            partner_id=body.id,
            kind=body.kind,
            name=body.name,
            identifier_type=body.identifier_type,
            identifier=body.identifier,
            known_kinds=kinds,
        )
    return _partner_out(partner)


@router.get("/partners/{partner_id}", summary="One partner (operator)")
def get_partner(partner_id: str, _caller: OperatorCaller, session: ReadSession) -> PartnerOut:
    """Return one partner; 404 if unknown."""
    return _partner_out(service.get_partner(session, partner_id))


@router.post("/partners/{partner_id}/revoke", summary="Revoke a partner (operator)")
def revoke_partner(partner_id: str, caller: OperatorCaller, ctx: Ctx) -> PartnerOut:
    """Deactivate the partner and revoke all its tokens."""
    with ctx.db.write() as session:
        partner = service.revoke_partner(session, ctx.clock, Actor.of(caller), partner_id)
    return _partner_out(partner)


@router.get("/partners/{partner_id}/principals", summary="A partner's principals (operator)")
def list_principals(
    partner_id: str, _caller: OperatorCaller, session: ReadSession
) -> list[PrincipalOut]:
    """Return the principals acting for a partner."""
    return [_principal_out(p) for p in service.list_principals(session, partner_id)]


@router.post(
    "/partners/{partner_id}/principals",
    status_code=status.HTTP_201_CREATED,
    summary="Add a principal with its first token (operator)",
)
def add_principal(
    partner_id: str, body: PrincipalIn, caller: OperatorCaller, ctx: Ctx
) -> PrincipalWithToken:
    """Create a principal and return its first token, shown only in this response."""
    ttl = timedelta(days=ctx.settings.token_ttl_days)
    with ctx.db.write() as session:
        actor = Actor.of(caller)
        principal = service.add_principal(
            session, ctx.clock, actor, partner_id=partner_id, role=body.role, label=body.label
        )
        new, row = service.issue_token(session, ctx.clock, actor, principal.id, ttl)
    return PrincipalWithToken(
        principal=_principal_out(principal),
        token=TokenOut(
            token_id=new.token_id,
            principal_id=principal.id,
            token=new.plaintext,
            expires_at=row.expires_at,
        ),
    )


@router.post(
    "/principals/{principal_id}/tokens",
    status_code=status.HTTP_201_CREATED,
    summary="Issue another token (operator)",
)
def issue_token(principal_id: str, caller: OperatorCaller, ctx: Ctx) -> TokenOut:
    """Mint a new token for a principal; it is shown only in this response."""
    ttl = timedelta(days=ctx.settings.token_ttl_days)
    with ctx.db.write() as session:
        new, row = service.issue_token(session, ctx.clock, Actor.of(caller), principal_id, ttl)
    return TokenOut(
        token_id=new.token_id,
        principal_id=principal_id,
        token=new.plaintext,
        expires_at=row.expires_at,
    )


@router.post("/tokens/{token_id}/revoke", summary="Revoke a token (operator)")
def revoke_token(token_id: str, caller: OperatorCaller, ctx: Ctx) -> dict[str, str]:
    """Revoke a token at once; later requests with it get 401."""
    with ctx.db.write() as session:
        service.revoke_token(session, ctx.clock, Actor.of(caller), token_id)
    return {"token_id": token_id, "status": "revoked"}
