"""Rows intake: a provider delivers rows for one instrument; they are pseudonymised and sealed.

Who may deliver is checked first (a provider the instrument names, the agreement's
period, the policy: role and the provider's own legal basis), every time, so a retry is
no way past the policy. Identifiers are replaced by the project's pseudonyms before
anything is stored, and each row is sealed with the project's row key
(``rows_key_id``), so shredding the project makes its rows unreadable.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from gateway import usecase
from gateway.audit.events import AuditEventType
from gateway.context import AppContext
from gateway.errors import InvalidInputError
from gateway.identity.service import Actor, Caller
from gateway.models.research import (
    ResearchBatch,
    ResearchRow,
    ResearchRowSubject,
    ResearchWithdrawal,
)
from gateway.policy.decision import Action, Decision, DecisionRequest, Relation
from gateway.research.agreements import Agreement, Instrument
from gateway.research.errors import NotAProviderError
from gateway.research.intake import (
    RESPONDENT_FIELD,
    IntakePlan,
    check_rows,
    pseudonymise_rows,
)
from gateway.research.service.agreement_access import (
    agreement_refs,
    find_agreement,
    provider_ref,
    rows_key_id,
)
from gateway.research.service.results import IntakeResult
from gateway.research.subject_index import row_persons, row_subject_values


def find_instrument(agreement: Agreement, instrument_id: str) -> Instrument:
    """Return the agreement's instrument; raise InvalidInputError naming the ones it has."""
    for instrument in agreement.instruments:
        if instrument.id == instrument_id:
            return instrument
    raise InvalidInputError(
        f"agreement {agreement.id} has no such instrument; it has "
        f"{', '.join(i.id for i in agreement.instruments)}",
        field="instrument",
    )


def submit_rows(
    ctx: AppContext,
    caller: Caller,
    agreement_id: str,
    idempotency_key: str,
    instrument_id: str,
    rows: Sequence[Mapping[str, Any]],
) -> IntakeResult:
    """A provider submits rows for one instrument; they are pseudonymised and sealed at once.

    A retry with the same idempotency key and content is answered with the stored batch
    (``created`` False, audited as a replay) only to a caller who may deliver now; the
    same key with other content is a conflict. Raises NotFoundError, NotAProviderError,
    AgreementNotInEffectError, PolicyDeniedError, IdempotencyConflictError,
    RowsRefusedError or InvalidInputError.
    """
    usecase.check_idempotency_key(idempotency_key)
    agreement = find_agreement(ctx, agreement_id)
    instrument = find_instrument(agreement, instrument_id)
    provider_ref(caller, agreement)
    if caller.partner_id not in instrument.providers:
        raise NotAProviderError(
            f"instrument {instrument.id} is delivered by {', '.join(instrument.providers)} only",
            instrument=instrument.id,
        )
    now = ctx.clock.now()
    agreement.require_in_effect(now)
    request = DecisionRequest(
        partner_id=caller.partner_id,
        partner_kind=caller.partner_kind,
        role=caller.role.value,
        action=Action.ROWS_SUBMIT,
        purpose=agreement.purpose,
        category=instrument.category,
        legal_basis=instrument.legal_basis,
        provider_kind=caller.partner_kind,
        relation=Relation.OWN,
    )
    actor = Actor.of(caller)
    # Authority before idempotency: a retry is no way past the policy.
    (allowed,) = usecase.allow_or_refuse(ctx, actor, [request], "submitting these research rows")
    content_key = ctx.keys.blind_index(
        "research-rows",
        json.dumps(
            {"agreement": agreement.id, "instrument": instrument.id, "rows": list(rows)},
            sort_keys=True,
            separators=(",", ":"),
            default=str,
        ),
    )
    with ctx.db.read() as session:
        earlier = earlier_batch(session, caller, idempotency_key, content_key)
    if earlier is not None:
        return _replay(ctx, actor, agreement, instrument, (request, allowed), earlier)
    vocabulary = ctx.policy.compiled.vocabulary
    plan = IntakePlan.build(agreement, instrument, vocabulary.schema(instrument.category))
    checked = check_rows(plan, rows, now.date())
    keys = ctx.keys
    pseudonymiser = keys.pseudonymiser(agreement.project)
    prepared = pseudonymise_rows(plan, checked, pseudonymiser)
    # the gateway-wide keyed index too, so a data-subject request finds these rows
    persons = row_persons(plan, checked, keys.blind_index)
    if plan.questionnaire:
        _refuse_withdrawn(ctx, agreement, prepared.respondent_keys)
    row_key = rows_key_id(agreement.project)
    keys.create_case_key(row_key)
    batch_id = f"rb-{secrets.token_hex(10)}"
    values = [
        {
            "batch_id": batch_id,
            "seq": seq,
            "agreement_id": agreement.id,
            "instrument_id": instrument.id,
            "provider_id": caller.partner_id,
            "category": instrument.category,
            "respondent_key": respondent,
            "payload_sealed": base64.b64encode(
                keys.seal_field(
                    row_key,
                    f"{batch_id}.{seq}",
                    "row",
                    json.dumps(payload, separators=(",", ":")).encode(),
                )
            ).decode(),
        }
        for seq, (payload, respondent) in enumerate(
            zip(prepared.payloads, prepared.respondent_keys, strict=True)
        )
    ]
    invalid = dict(sorted(prepared.invalid_identifiers.items()))
    try:
        with ctx.db.write() as session:
            session.add(
                ResearchBatch(
                    id=batch_id,
                    agreement_id=agreement.id,
                    instrument_id=instrument.id,
                    provider_id=caller.partner_id,
                    submitted_by=caller.principal_id,
                    idempotency_key=idempotency_key,
                    content_key=content_key,
                    row_count=len(values),
                    invalid_identifiers=json.dumps(invalid),
                    policy_version=allowed.policy_version,
                    rule_id=allowed.rule_id,
                    created_at=now,
                )
            )
            session.flush()
            session.execute(insert(ResearchRow), values)
            indexed = row_subject_values(batch_id, persons)
            if indexed:
                session.execute(insert(ResearchRowSubject), indexed)
            usecase.record(
                session,
                ctx.clock,
                actor,
                AuditEventType.RESEARCH_ROWS_SUBMIT,
                decisions=[(request, allowed)],
                purpose=agreement.purpose,
                legal_basis=instrument.legal_basis,
                persons=persons,
                refs=agreement_refs(
                    agreement,
                    instrument=instrument.id,
                    category=instrument.category,
                    batch=batch_id,
                    rows=len(values),
                    invalid_identifiers=sum(invalid.values()),
                ),
                retention=ctx.retention.period([instrument.category]),
            )
    except IntegrityError:
        # A concurrent retry with the same key won the race; answer as a retry.
        with ctx.db.read() as session:
            earlier = earlier_batch(session, caller, idempotency_key, content_key)
        if earlier is None:
            raise
        return _replay(ctx, actor, agreement, instrument, (request, allowed), earlier)
    return IntakeResult(
        batch_id=batch_id,
        created=True,
        rows=len(values),
        invalid_identifiers=invalid,
        policy_version=allowed.policy_version,
        rule_id=allowed.rule_id,
    )


def _replay(
    ctx: AppContext,
    actor: Actor,
    agreement: Agreement,
    instrument: Instrument,
    decided: tuple[DecisionRequest, Decision],
    earlier: IntakeResult,
) -> IntakeResult:
    """Record the allowing decision and a replay audit entry; return the stored batch."""
    with ctx.db.write() as session:
        usecase.record(
            session,
            ctx.clock,
            actor,
            AuditEventType.RESEARCH_ROWS_SUBMIT,
            decisions=[decided],
            purpose=agreement.purpose,
            legal_basis=instrument.legal_basis,
            refs=agreement_refs(
                agreement,
                instrument=instrument.id,
                category=instrument.category,
                batch=earlier.batch_id,
                rows=0,
                replay=True,
            ),
            retention=ctx.retention.period([instrument.category]),
        )
    return earlier


def earlier_batch(
    session: Session, caller: Caller, idempotency_key: str, content_key: str
) -> IntakeResult | None:
    """Return the batch the caller's partner stored under this key (None if there is none).

    Raises IdempotencyConflictError when that batch had other content.
    """
    earlier = session.exec(
        select(ResearchBatch).where(
            ResearchBatch.provider_id == caller.partner_id,
            ResearchBatch.idempotency_key == idempotency_key,
        )
    ).one_or_none()
    if earlier is None:
        return None
    usecase.same_content(earlier.content_key, content_key)
    return IntakeResult(
        batch_id=earlier.id,
        created=False,
        rows=earlier.row_count,
        invalid_identifiers=json.loads(earlier.invalid_identifiers),
        policy_version=earlier.policy_version,
        rule_id=earlier.rule_id,
    )


def _refuse_withdrawn(ctx: AppContext, agreement: Agreement, keys: Sequence[str | None]) -> None:
    """Raise InvalidInputError naming the rows of respondents who withdrew; store nothing."""
    wanted = {k for k in keys if k is not None}
    with ctx.db.read() as session:
        gone = set(
            session.exec(
                select(ResearchWithdrawal.respondent_key).where(
                    ResearchWithdrawal.agreement_id == agreement.id,
                    col(ResearchWithdrawal.respondent_key).in_(sorted(wanted)),
                )
            ).all()
        )
    rows = [f"rows[{i}].{RESPONDENT_FIELD}" for i, k in enumerate(keys) if k in gone]
    if rows:
        raise InvalidInputError(
            "nothing was stored: these respondents withdrew their consent: " + ", ".join(rows),
            problems=rows[:20],
        )
