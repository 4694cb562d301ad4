"""Partner registry routes (operators), ``/v1/me`` for any caller, and ``/v1/enrolments``.

Who may do what is decided in ``gateway.identity.authority``; these routes only parse,
call it and render. Redeeming an enrolment code is the one unauthenticated write.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, status

from gateway.api.deps import Ctx, CurrentCaller, OperatorCaller, ReadSession
from gateway.context import AppContext
from gateway.identity import authority, service
from gateway.identity.authority import CredentialKind, Registrar
from gateway.identity.people import person_key
from gateway.identity.service import Caller
from gateway.models.partners import Partner, Principal
from gateway.schemas.partners import (
    EnrolmentIn,
    EnrolmentOut,
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


def _registrar(caller: Caller, ctx: AppContext) -> Registrar:
    return Registrar(caller, ctx.settings.resolved_operating_partner)


def _token_ttl(ctx: AppContext) -> timedelta:
    return timedelta(days=ctx.settings.token_ttl_days)


def _enrolment_ttl(ctx: AppContext) -> timedelta:
    return timedelta(hours=ctx.settings.enrolment_ttl_hours)


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
    "/partners",
    status_code=status.HTTP_201_CREATED,
    summary="Register a partner (operator of the operating RIEC)",
)
def add_partner(body: PartnerIn, caller: OperatorCaller, ctx: Ctx) -> PartnerOut:
    """Register a partner organisation; 409 if its id or identifier is taken."""
    partner = authority.add_partner(
        ctx.db,
        ctx.clock,
        _registrar(caller, ctx),
        partner_id=body.id,
        kind=body.kind,
        name=body.name,
        identifier_type=body.identifier_type,
        identifier=body.identifier,
        known_kinds=ctx.policy.compiled.vocabulary.partner_kinds,
    )
    return _partner_out(partner)


@router.get("/partners/{partner_id}", summary="One partner (operator)")
def get_partner(partner_id: str, _caller: OperatorCaller, session: ReadSession) -> PartnerOut:
    """Return one partner; 404 if unknown."""
    return _partner_out(service.get_partner(session, partner_id))


@router.post("/partners/{partner_id}/revoke", summary="Revoke a partner (operator)")
def revoke_partner(partner_id: str, caller: OperatorCaller, ctx: Ctx) -> PartnerOut:
    """Deactivate the partner and revoke all its tokens (another partner, or the operating
    RIEC itself: the operating RIEC's operators only)."""
    partner = authority.revoke_partner(ctx.db, ctx.clock, _registrar(caller, ctx), partner_id)
    return _partner_out(partner)


@router.get("/partners/{partner_id}/principals", summary="A partner's principals (operator)")
def list_principals(partner_id: str, caller: OperatorCaller, ctx: Ctx) -> list[PrincipalOut]:
    """Return the principals acting for one's own partner (the operating RIEC: any)."""
    found = authority.list_principals(ctx.db, ctx.clock, _registrar(caller, ctx), partner_id)
    return [_principal_out(p) for p in found]


@router.post(
    "/partners/{partner_id}/principals",
    status_code=status.HTTP_201_CREATED,
    summary="Add a principal with its first credential (operator)",
    response_model_exclude_none=True,
)
def add_principal(
    partner_id: str, body: PrincipalIn, caller: OperatorCaller, ctx: Ctx
) -> PrincipalWithToken:
    """Create a principal and return its first credential, shown only in this response:
    a token for an operator of one's own partner, else a one-time enrolment code."""
    principal, credential = authority.add_principal(
        ctx.db,
        ctx.clock,
        _registrar(caller, ctx),
        partner_id=partner_id,
        role=body.role,
        label=body.label,
        person_key=person_key(body.person, ctx.keys.person_key) if body.person else None,
        token_ttl=_token_ttl(ctx),
        enrolment_ttl=_enrolment_ttl(ctx),
    )
    if credential.kind is CredentialKind.TOKEN:
        return PrincipalWithToken(
            principal=_principal_out(principal),
            token=TokenOut(
                token_id=credential.new.token_id,
                principal_id=principal.id,
                token=credential.new.plaintext,
                expires_at=credential.expires_at,
            ),
        )
    return PrincipalWithToken(
        principal=_principal_out(principal),
        enrolment=EnrolmentOut(
            code_id=credential.new.token_id,
            principal_id=principal.id,
            code=credential.new.plaintext,
            expires_at=credential.expires_at,
        ),
    )


@router.post(
    "/principals/{principal_id}/tokens",
    status_code=status.HTTP_201_CREATED,
    summary="Issue another token to an operator of one's own partner (operator)",
)
def issue_token(principal_id: str, caller: OperatorCaller, ctx: Ctx) -> TokenOut:
    """Mint a new token for an operator principal; it is shown only in this response.

    Any other role gets 403 ``enrolment-required`` (use ``.../enrolments``); another
    partner's principal 403 ``foreign-partner``; both refusals are audited.
    """
    new, row = authority.issue_token(
        ctx.db, ctx.clock, _registrar(caller, ctx), principal_id, _token_ttl(ctx)
    )
    return TokenOut(
        token_id=new.token_id,
        principal_id=principal_id,
        token=new.plaintext,
        expires_at=row.expires_at,
    )


@router.post(
    "/principals/{principal_id}/enrolments",
    status_code=status.HTTP_201_CREATED,
    summary="Issue a one-time enrolment code (operator)",
)
def issue_enrolment(principal_id: str, caller: OperatorCaller, ctx: Ctx) -> EnrolmentOut:
    """Issue a one-time enrolment code for a principal of one's own partner; earlier
    unused codes stop working. The principal redeems it at ``POST /v1/enrolments``."""
    new, row = authority.issue_enrolment(
        ctx.db, ctx.clock, _registrar(caller, ctx), principal_id, _enrolment_ttl(ctx)
    )
    return EnrolmentOut(
        code_id=new.token_id,
        principal_id=principal_id,
        code=new.plaintext,
        expires_at=row.expires_at,
    )


@router.post(
    "/enrolments",
    status_code=status.HTTP_201_CREATED,
    summary="Redeem a one-time enrolment code for a bearer token (no token needed)",
)
def redeem_enrolment(body: EnrolmentIn, ctx: Ctx) -> TokenOut:
    """Exchange an enrolment code for the principal's bearer token, shown only here.

    A malformed, unknown, used, superseded or expired code is one 401
    ``enrolment-code-invalid``, without saying which.
    """
    with ctx.db.write() as session:
        new, row = service.redeem_enrolment(session, ctx.clock, body.code, _token_ttl(ctx))
    return TokenOut(
        token_id=new.token_id,
        principal_id=row.principal_id,
        token=new.plaintext,
        expires_at=row.expires_at,
    )


@router.post("/tokens/{token_id}/revoke", summary="Revoke a token (operator)")
def revoke_token(token_id: str, caller: OperatorCaller, ctx: Ctx) -> dict[str, str]:
    """Revoke a token of one's own partner at once; later requests with it get 401."""
    authority.revoke_token(ctx.db, ctx.clock, _registrar(caller, ctx), token_id)
    return {"token_id": token_id, "status": "revoked"}
