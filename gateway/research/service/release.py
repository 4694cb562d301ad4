"""A release of an agreement's stored rows to its researchers, and the folder's recovery.

A release is requested by one of the agreement's researchers, by a privacy officer of a
RIEC the agreement names, or by ``gateway extract run`` on the host. Whoever asks, the
policy is asked for every receiving science partner and every (provider, instrument)
pair, with ``consent: given`` only when that provider's privacy officer consented to the
agreement's current version. Pairs the policy refuses are left out; the manifest lists
the providers whose rows are in. With no pair allowed there is no release, and the
refusals are on the record.

The checks and the policy's decisions are in ``release_decisions``. The bundle is made
in the releases folder's pending area, the release is recorded (its
decisions, the project's generalisation, its audit entry: one transaction), and only
then is the bundle moved into place (``release_folder``).
"""

from __future__ import annotations

import base64
import json
import secrets
from collections import Counter
from collections.abc import Collection, Iterator, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from gateway import usecase
from gateway.audit.events import AuditEventType
from gateway.context import AppContext
from gateway.identity.service import Actor, Caller
from gateway.models.partners import Partner
from gateway.models.research import (
    ResearchGeneralisation,
    ResearchRelease,
    ResearchRow,
    ResearchWithdrawal,
)
from gateway.policy.decision import Decision, DecisionRequest
from gateway.policy.recording import record_decisions
from gateway.research import release_folder as folder
from gateway.research.agreements import Agreement
from gateway.research.bundle import sha256_file
from gateway.research.consent_states import consenting
from gateway.research.duo import DeclaredUse
from gateway.research.errors import NoConsentingProviderError
from gateway.research.extract import ExtractRequest, ProgressSink, batches_from_rows, input_fields
from gateway.research.generalise import GeneralisationState
from gateway.research.intake import RESPONDENT_FIELD
from gateway.research.recipients import require_confirmed_recipients
from gateway.research.release_builder import Release, make_release
from gateway.research.service.agreement_access import (
    agreement_refs,
    find_agreement,
    rows_key_id,
)
from gateway.research.service.consent import consent_history
from gateway.research.service.duo import require_release_conditions
from gateway.research.service.release_decisions import (
    decide_release,
    require_may_request,
    require_pinned_signer,
    science_partners,
)
from gateway.research.service.results import ReleaseView, release_view_of
from gateway.research.subject_index import link_release, release_digest

NOT_ALLOWED = "not-allowed-by-policy"
"""Exclusion reason of rows whose (provider, instrument) the policy refused for this release."""


def release(
    ctx: AppContext,
    actor: Actor,
    agreement_id: str,
    *,
    caller: Caller | None = None,
    progress: ProgressSink | None = None,
    declared_use: Collection[DeclaredUse] = (),
) -> ReleaseView:
    """Release the agreement's stored rows to its researchers; return the recorded release.

    ``caller`` is the API caller (checked: a researcher of the agreement or a RIEC
    privacy officer it names); the CLI passes none. ``declared_use`` is what the
    requester declares (the agreement's NCU/NPU conditions need it). Raises NotFoundError,
    NotEntitledError, AgreementNotInEffectError, DuoConditionNotMetError (audited),
    SigningKeyNotPinnedError,
    NoConsentingProviderError, NoConfirmedRecipientError, AgreementPolicyConflictError,
    DisclosureCheckFailedError, KeyShreddedError or ConflictError (a science partner not
    in the registry). On any error nothing is published and nothing recorded.
    """
    agreement = find_agreement(ctx, agreement_id)
    if caller is not None:
        require_may_request(caller, agreement)
    now = ctx.clock.now()
    agreement.require_in_effect(now)
    require_release_conditions(ctx, actor, agreement, now, declared_use)
    require_pinned_signer(ctx, agreement)
    with ctx.db.read() as session:
        science = science_partners(session, agreement)
        kinds = {
            p.id: p.kind
            for p in session.exec(
                select(Partner).where(col(Partner.id).in_(sorted(agreement.provider_ids)))
            ).all()
        }
        consented = consenting(
            consent_history(session, agreement), agreement.provider_ids, agreement.version
        )
        withdrawn = frozenset(
            session.exec(
                select(ResearchWithdrawal.respondent_key).where(
                    ResearchWithdrawal.agreement_id == agreement.id
                )
            ).all()
        )
        fixed = session.get(ResearchGeneralisation, agreement.project)
        counts = session.exec(
            select(ResearchRow.provider_id, ResearchRow.instrument_id, func.count())
            .where(ResearchRow.agreement_id == agreement.id)
            .group_by(col(ResearchRow.provider_id), col(ResearchRow.instrument_id))
        ).all()
    pairs, allowed = decide_release(ctx, agreement, science, kinds, consented)
    if not allowed:
        with ctx.db.write() as session:
            record_decisions(session, actor, pairs, now)
        raise NoConsentingProviderError(
            f"no provider of agreement {agreement.id} may be released now: each needs its "
            "privacy officer's consent to this version of the agreement, and the policy's "
            "allow",
            agreement=agreement.id,
        )
    with ctx.db.read() as session:
        age_recipients = require_confirmed_recipients(session, agreement)
    excluded = Counter[str]()
    for provider, instrument, count in counts:
        if (provider, instrument) not in allowed:
            excluded[NOT_ALLOWED] += int(count)
    state = None if fixed is None else GeneralisationState.from_json(fixed.state)
    policy_version = pairs[0][1].policy_version
    releases_dir = ctx.settings.resolved_releases_dir
    recipients = sorted(p.id for p in science)
    with folder.release_lock(releases_dir):
        folder.recover(releases_dir, lambda release_id: is_recorded(ctx, release_id))
        release_id = f"{agreement.id[:60]}-{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
        pseudonymiser = ctx.keys.pseudonymiser(agreement.project)
        request = ExtractRequest(
            agreement=agreement,
            release_id=release_id,
            at=now,
            policy_version=policy_version,
            consenting_providers=frozenset(p for p, _ in allowed),
            withdrawn_respondents=withdrawn,
            state=state,
            pseudonymised=True,
            excluded_upstream=dict(excluded),
        )
        with ctx.db.read() as session:
            made = make_release(
                request,
                batches=batches_from_rows(
                    stored_rows(ctx, session, agreement, allowed),
                    input_fields(agreement, pseudonymised=True),
                ),
                pseudonymiser=pseudonymiser,
                signer=ctx.signer,
                out_dir=folder.pending_dir(releases_dir),
                progress=progress,
                recipients=age_recipients,
            )
        try:
            pseudonymiser.check_live()
            digest, size = sha256_file(made.bundle)
            row = record_release(
                ctx,
                actor,
                agreement,
                made,
                fixed=fixed,
                pairs=pairs,
                bundle=(digest, size),
                recipients=recipients,
                now=now,
                taken=allowed,
            )
        except BaseException:
            made.bundle.unlink(missing_ok=True)
            raise
        folder.finish(made.bundle, folder.final_path(releases_dir, release_id))
    return release_view_of(row)


def is_recorded(ctx: AppContext, release_id: str) -> bool:
    """Return True if the database holds a release with this id."""
    with ctx.db.read() as session:
        return session.get(ResearchRelease, release_id) is not None


def recover(ctx: AppContext) -> dict[str, list[str]]:
    """Complete or discard bundles that interrupted releases left; return what was done."""
    where = ctx.settings.resolved_releases_dir
    with folder.release_lock(where):
        return folder.recover(where, lambda release_id: is_recorded(ctx, release_id))


def stored_rows(
    ctx: AppContext, session: Session, agreement: Agreement, allowed: set[tuple[str, str]]
) -> Iterator[dict[str, Any]]:
    """Yield the allowed stored rows, opened, as the pipeline's pseudonymised input."""
    key = rows_key_id(agreement.project)
    providers = sorted({p for p, _ in allowed})
    query = (
        select(ResearchRow)
        .where(
            ResearchRow.agreement_id == agreement.id,
            col(ResearchRow.provider_id).in_(providers),
        )
        .order_by(col(ResearchRow.batch_id), col(ResearchRow.seq))
        .execution_options(yield_per=2048)
    )
    open_field = ctx.keys.open_field
    for stored in session.exec(query):
        if (stored.provider_id, stored.instrument_id) not in allowed:
            continue
        row: dict[str, Any] = json.loads(
            open_field(
                key,
                f"{stored.batch_id}.{stored.seq}",
                "row",
                base64.b64decode(stored.payload_sealed),
            )
        )
        row["provider"], row["category"] = stored.provider_id, stored.category
        row[RESPONDENT_FIELD] = stored.respondent_key
        yield row


def record_release(
    ctx: AppContext,
    actor: Actor,
    agreement: Agreement,
    made: Release,
    *,
    fixed: ResearchGeneralisation | None,
    pairs: Sequence[tuple[DecisionRequest, Decision]],
    bundle: tuple[str, int],
    recipients: Sequence[str],
    now: datetime,
    taken: Collection[tuple[str, str]] = (),
) -> ResearchRelease:
    """Record the release, its decisions, the project's generalisation and the audit entry.

    The entry names every person whose rows the release took (``taken`` (provider,
    instrument) pairs, withdrawn respondents left out) by the digest of their keys, and
    is linked to each of them (``subject_index.link_release``).
    """
    manifest, manifest_sha256, state = made.manifest, made.manifest_sha256, made.state
    bundle_sha256, bundle_bytes = bundle
    counts = manifest["counts"]
    release_id = str(manifest["release"]["id"])
    consenting_providers = list(manifest["providers"]["consenting"])
    allowed = next(d for _, d in pairs if d.allowed)
    with ctx.db.write() as session:
        # Dated when they were made, before the extract ran, not at this commit.
        record_decisions(session, actor, pairs, now)
        if fixed is None:
            session.add(
                ResearchGeneralisation(
                    project=agreement.project,
                    agreement_id=agreement.id,
                    state=state.to_json(),
                    state_sha256=state.fingerprint,
                    fixed_by_release=release_id,
                    fixed_at=now,
                )
            )
        subjects, subjects_sha256 = release_digest(session, agreement.id, taken)
        leaf = usecase.record(
            session,
            ctx.clock,
            actor,
            AuditEventType.RESEARCH_EXTRACT_RELEASE,
            decision=allowed,
            purpose=agreement.purpose,
            legal_basis=agreement.legal_basis,
            parties=[*recipients, *consenting_providers],
            refs=agreement_refs(
                agreement,
                release=release_id,
                agreement_sha256=agreement.sha256,
                manifest_sha256=manifest_sha256,
                bundle_sha256=bundle_sha256,
                generalisation_sha256=state.fingerprint,
                rows_in=int(counts["rows_in"]),
                rows_out=int(counts["rows_out"]),
                rows_suppressed=int(counts["rows_suppressed"]),
                consenting=",".join(consenting_providers),
                expires_on=str(manifest["release"]["expires_on"]),
                subjects=subjects,
                subjects_sha256=subjects_sha256,
            ),
            sequenced=True,
            retention=ctx.retention.period(agreement.categories),
        )
        link_release(session, leaf, agreement.id, taken)
        row = ResearchRelease(
            id=release_id,
            agreement_id=agreement.id,
            agreement_version=agreement.version,
            agreement_sha256=agreement.sha256,
            project=agreement.project,
            policy_version=allowed.policy_version,
            manifest_sha256=manifest_sha256,
            state_sha256=state.fingerprint,
            bundle_name=f"{release_id}.tar",
            bundle_sha256=bundle_sha256,
            bundle_bytes=bundle_bytes,
            rows_in=int(counts["rows_in"]),
            rows_out=int(counts["rows_out"]),
            rows_suppressed=int(counts["rows_suppressed"]),
            consenting_providers=json.dumps(consenting_providers),
            recipients=json.dumps(list(recipients)),
            expires_on=date.fromisoformat(str(manifest["release"]["expires_on"])),
            created_at=now,
            requested_by=actor.principal_id,
            requested_by_partner=actor.partner_id,
            audit_leaf_index=leaf,
        )
        session.add(row)
        before_commit(release_id)
    return row


def before_commit(release_id: str) -> None:
    """Called just before a release's transaction commits; tests replace it to crash there."""
