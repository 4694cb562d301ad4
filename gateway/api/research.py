"""Research routes: agreements, provider consents, intake, withdrawals, releases, downloads.

Identifiers travel in request bodies only (respondent ids too), never in URLs. Every
route calls one research use case; the policy, pseudonymisation, sealing and audit
happen below.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status
from fastapi.responses import FileResponse, PlainTextResponse

from gateway.api.deps import Ctx, CurrentCaller
from gateway.identity.service import Actor
from gateway.research.consent_states import ConsentDecision
from gateway.research.recipients import Recipients
from gateway.research.service import Research
from gateway.schemas.research import (
    AgreementOut,
    AgreementSummaryOut,
    ConsentHistoryOut,
    ConsentIn,
    ConsentOut,
    ConsentsOut,
    RecipientIn,
    RecipientOut,
    ReleaseIn,
    ReleaseOut,
    RowsIn,
    RowsOut,
    WithdrawalIn,
    WithdrawalOut,
)

router = APIRouter(prefix="/v1/research", tags=["research"])

BUNDLE_MEDIA_TYPE = "application/x-tar"
PROOF_MEDIA_TYPE = "text/plain; charset=utf-8"


@router.get("/agreements", summary="The research agreements (any authenticated caller)")
def list_agreements(_caller: CurrentCaller, ctx: Ctx) -> list[AgreementSummaryOut]:
    """Return every agreement the gateway enforces, in short."""
    return [AgreementSummaryOut.of(a) for a in Research(ctx).agreements()]


@router.get("/agreements/{agreement_id}", summary="One agreement's conditions")
def get_agreement(agreement_id: str, _caller: CurrentCaller, ctx: Ctx) -> AgreementOut:
    """Return the agreed conditions: parties, period, instruments, columns, k, DUO terms."""
    return AgreementOut.of(Research(ctx).agreement(agreement_id))


@router.post(
    "/agreements/{agreement_id}/consents",
    status_code=status.HTTP_201_CREATED,
    summary="Record a provider's consent, refusal or revocation (its privacy officer)",
)
def record_consent(
    agreement_id: str, body: ConsentIn, caller: CurrentCaller, ctx: Ctx
) -> ConsentOut:
    """Record the caller's partner's decision; the latest decision is its current state."""
    view = Research(ctx).record_consent(
        caller, agreement_id, ConsentDecision(body.decision), body.note
    )
    return ConsentOut.model_validate(asdict(view))


@router.get("/agreements/{agreement_id}/consents", summary="Every provider's consent state")
def list_consents(agreement_id: str, caller: CurrentCaller, ctx: Ctx) -> ConsentsOut:
    """Return each provider's current state and the history (privacy officers, researchers)."""
    view = Research(ctx).consents(caller, agreement_id)
    return ConsentsOut(
        agreement_id=view.agreement_id,
        agreement_version=view.agreement_version,
        providers=[ConsentOut.model_validate(asdict(p)) for p in view.providers],
        history=[ConsentHistoryOut.model_validate(asdict(h)) for h in view.history],
    )


@router.post(
    "/agreements/{agreement_id}/rows",
    status_code=status.HTTP_201_CREATED,
    summary="Submit rows of one instrument (pseudonymised on intake)",
    responses={200: {"description": "a retry: the rows were stored by an earlier call"}},
)
def submit_rows(
    agreement_id: str,
    body: RowsIn,
    caller: CurrentCaller,
    ctx: Ctx,
    response: Response,
    idempotency_key: Annotated[str, Header(alias="Idempotency-Key")],
) -> RowsOut:
    """Store a provider's rows: identifiers become project pseudonyms, the rest is sealed."""
    result = Research(ctx).submit_rows(
        caller, agreement_id, idempotency_key, body.instrument, body.rows
    )
    if not result.created:
        response.status_code = status.HTTP_200_OK
    return RowsOut.model_validate(asdict(result))


@router.post(
    "/agreements/{agreement_id}/withdrawals",
    status_code=status.HTTP_201_CREATED,
    summary="Record a questionnaire respondent's withdrawal (the intake partner)",
    responses={200: {"description": "the withdrawal was recorded before"}},
)
def withdraw(
    agreement_id: str, body: WithdrawalIn, caller: CurrentCaller, ctx: Ctx, response: Response
) -> WithdrawalOut:
    """Leave the respondent out of every later release; only a pseudonym is stored."""
    result = Research(ctx).withdraw(caller, agreement_id, body.respondent_id)
    if not result.created:
        response.status_code = status.HTTP_200_OK
    return WithdrawalOut.model_validate(asdict(result))


@router.post(
    "/agreements/{agreement_id}/releases",
    status_code=status.HTTP_201_CREATED,
    summary="Release an extract to the agreement's researchers",
)
def request_release(
    agreement_id: str, caller: CurrentCaller, ctx: Ctx, body: ReleaseIn | None = None
) -> ReleaseOut:
    """Make a release now (a researcher of the agreement, or a RIEC privacy officer it names).

    The body declares the use (``declared_use``) when the agreement's DUO conditions
    (NCU, NPU) require it. Large releases are better made with ``gateway extract run``.
    """
    view = Research(ctx).release(
        Actor.of(caller),
        agreement_id,
        caller=caller,
        declared_use=() if body is None else body.declared_use,
    )
    return ReleaseOut.model_validate(asdict(view))


@router.get("/releases", summary="An agreement's releases")
def list_releases(
    caller: CurrentCaller,
    ctx: Ctx,
    agreement: Annotated[str, Query(min_length=1, max_length=80, description="agreement id")],
) -> list[ReleaseOut]:
    """Return the releases under one agreement, newest first."""
    return [ReleaseOut.model_validate(asdict(v)) for v in Research(ctx).releases(caller, agreement)]


@router.get("/releases/{release_id}", summary="One release's record")
def get_release(release_id: str, caller: CurrentCaller, ctx: Ctx) -> ReleaseOut:
    """Return what was released, to whom, under which versions."""
    return ReleaseOut.model_validate(asdict(Research(ctx).release_view(caller, release_id)))


@router.get(
    "/releases/{release_id}/bundle",
    summary="Download a release's bundle (the agreement's researchers)",
    response_class=FileResponse,
    responses={200: {"content": {BUNDLE_MEDIA_TYPE: {}}, "description": "the bundle (tar)"}},
)
def download_bundle(release_id: str, caller: CurrentCaller, ctx: Ctx) -> FileResponse:
    """Return the signed, encrypted bundle; every download is audited."""
    path = Research(ctx).bundle(caller, release_id)
    return FileResponse(path, media_type=BUNDLE_MEDIA_TYPE, filename=path.name)


@router.get(
    "/releases/{release_id}/proof",
    summary="The release's audit inclusion proof (C2SP tlog-proof)",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}}, "description": "a tlog-proof bundle"}},
)
def release_proof(release_id: str, caller: CurrentCaller, ctx: Ctx) -> PlainTextResponse:
    """Return the proof that the release's audit entry is in the signed log, for
    ``gateway extract verify BUNDLE --public-key KEY --proof FILE``."""
    return PlainTextResponse(Research(ctx).proof(caller, release_id), media_type=PROOF_MEDIA_TYPE)


@router.get(
    "/agreements/{agreement_id}/recipients",
    summary="The researchers' age keys and their history (science partners' people)",
)
def list_recipients(agreement_id: str, caller: CurrentCaller, ctx: Ctx) -> list[RecipientOut]:
    """Return every registered key version, newest first, with who added and confirmed it."""
    agreement = Research(ctx).agreement(agreement_id)
    return [RecipientOut.model_validate(asdict(v)) for v in Recipients(ctx).list(caller, agreement)]


@router.post(
    "/agreements/{agreement_id}/recipients",
    status_code=status.HTTP_201_CREATED,
    summary="Register the caller's own age public key (a researcher the agreement entitles)",
)
def register_recipient(
    agreement_id: str, body: RecipientIn, caller: CurrentCaller, ctx: Ctx
) -> RecipientOut:
    """Register a pending key; it replaces the caller's earlier key once recorded."""
    agreement = Research(ctx).agreement(agreement_id)
    view = Recipients(ctx).register(caller, agreement, body.recipient)
    return RecipientOut.model_validate(asdict(view))


@router.post(
    "/agreements/{agreement_id}/recipients/{recipient_id}/confirm",
    summary="Confirm a researcher's key (a privacy officer of their science partner)",
)
def confirm_recipient(
    agreement_id: str, recipient_id: str, caller: CurrentCaller, ctx: Ctx
) -> RecipientOut:
    """Confirm a pending key; later releases are encrypted to it."""
    agreement = Research(ctx).agreement(agreement_id)
    view = Recipients(ctx).confirm(caller, agreement, recipient_id)
    return RecipientOut.model_validate(asdict(view))


@router.post(
    "/agreements/{agreement_id}/recipients/{recipient_id}/revoke",
    summary="Revoke a researcher's key for every later release (its owner or their officer)",
)
def revoke_recipient(
    agreement_id: str, recipient_id: str, caller: CurrentCaller, ctx: Ctx
) -> RecipientOut:
    """Revoke a key, e.g. a lost one; releases already made stay as they are."""
    agreement = Research(ctx).agreement(agreement_id)
    view = Recipients(ctx).revoke(caller, agreement, recipient_id)
    return RecipientOut.model_validate(asdict(view))
