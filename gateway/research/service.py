"""The research use cases: consents, intake, withdrawals, releases, downloads and proofs.

As in the case workflow, every use case that the policy governs asks it first; a
refusal is recorded (decision and audit entry) in a transaction of its own and raised as
``PolicyDeniedError``; an allowed change commits together with its decisions and its
audit entry, or not at all. Research rows are pseudonymised on intake and sealed with
the project's row key (``research.<project>`` in the key ring), so raw identifiers of
research rows are never stored and shredding the project makes its rows unreadable.

Who may do what (besides the policy):

- consent: a privacy officer of a partner the agreement names as a provider;
- rows: a system or analyst of a provider the instrument names (the policy decides
  the role, the instrument decides the partner);
- withdrawals: a system, analyst or privacy officer of a questionnaire's intake partner;
- releases: requested by one of the agreement's researchers, by a privacy officer of a
  RIEC the agreement names, or by ``gateway extract run`` on the host. Whoever asks,
  the policy is asked for every receiving science partner and every (provider,
  instrument) pair, with ``consent: given`` only when that provider's privacy officer
  consented to the agreement's current version. Pairs the policy refuses are left out;
  the manifest lists the providers whose rows are in. With no pair allowed there is no
  release.
- downloads: only the researchers of the agreement's science partners.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from gateway.audit import checkpoints
from gateway.audit import log as audit_log
from gateway.audit.events import AuditEvent, AuditEventType
from gateway.context import AppContext
from gateway.db import Database
from gateway.errors import (
    ConflictError,
    IdempotencyConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    PolicyDeniedError,
)
from gateway.identity.service import Actor, Caller
from gateway.keys import KeyKind, KeyRing, ShredReason
from gateway.keys.ring import valid_key_id
from gateway.models.partners import Partner
from gateway.models.research import (
    ResearchBatch,
    ResearchConsent,
    ResearchGeneralisation,
    ResearchRelease,
    ResearchRow,
    ResearchWithdrawal,
)
from gateway.policy.decision import NONE, Action, Consent, Decision, DecisionRequest, Relation
from gateway.policy.recording import record_decisions
from gateway.research import releases as folder
from gateway.research.agreements import Agreement, Instrument, InstrumentKind, PartnerRef
from gateway.research.bundle import sha256_file
from gateway.research.consents import (
    ConsentDecision,
    ConsentEntry,
    ConsentState,
    consenting,
    current_states,
)
from gateway.research.errors import ReleaseExpiredError
from gateway.research.extract import (
    ExtractRequest,
    ProgressSink,
    batches_from_rows,
    input_fields,
)
from gateway.research.generalise import GeneralisationState
from gateway.research.intake import (
    RESPONDENT_FIELD,
    IntakePlan,
    check_rows,
    pseudonymise_rows,
    respondent_key,
)
from gateway.research.obligations import unmet_obligations
from gateway.research.recipients import require_confirmed_recipients
from gateway.research.release import Release, make_release
from gateway.vocabulary import Role

MAX_NOTE_LENGTH = 500
NOT_ALLOWED = "not-allowed-by-policy"
"""Exclusion reason of rows whose (provider, instrument) the policy refused for this release."""
INTAKE_ROLES = frozenset({Role.PARTNER_SYSTEM, Role.ANALYST, Role.PRIVACY_OFFICER})


class NotAProviderError(PermissionDeniedError):
    """The caller's partner does not provide data under this agreement or instrument."""

    code = "not-a-provider"
    title = "Not a provider of this agreement"


class NotEntitledError(PermissionDeniedError):
    """The caller's partner and role have no part in this agreement's releases."""

    code = "not-entitled"
    title = "Not entitled under this agreement"


class NoConsentingProviderError(ConflictError):
    """No providing partner's rows may be released: nothing to release."""

    code = "no-consenting-provider"
    title = "No consenting provider"


class ConsentNotGivenError(ConflictError):
    """Only a consent can be revoked."""

    code = "consent-not-given"
    title = "No consent to revoke"


class SigningKeyNotPinnedError(ConflictError):
    """The gateway's signing key is not the one the agreement pins."""

    code = "signing-key-not-pinned"
    title = "Signing key not pinned"


class AgreementPolicyConflictError(ConflictError):
    """The agreement would release something finer than the policy's obligations allow."""

    code = "agreement-below-policy"
    title = "Agreement conflicts with the policy's obligations"


def rows_key_id(project: str) -> str:
    """Return the key ring id of the data key that seals a project's research rows."""
    return f"research.{project}"


# ----- views ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConsentView:
    """A provider's current state on an agreement, and the decision that set it."""

    provider: str
    state: ConsentState
    agreement_version: int
    decided_by: str | None
    decided_at: datetime | None
    note: str | None


@dataclass(frozen=True, slots=True)
class ConsentsView:
    """Every provider's current state, and the whole history of decisions."""

    agreement_id: str
    agreement_version: int
    providers: list[ConsentView]
    history: list[ConsentEntry]


@dataclass(frozen=True, slots=True)
class IntakeResult:
    """What an intake stored: the batch, its row count, identifiers that failed their check."""

    batch_id: str
    created: bool
    rows: int
    invalid_identifiers: dict[str, int]
    policy_version: str
    rule_id: str


@dataclass(frozen=True, slots=True)
class WithdrawalResult:
    """A recorded withdrawal: whether this call recorded it, and how many rows it excludes."""

    agreement_id: str
    created: bool
    rows_excluded: int
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class ReleaseView:
    """A recorded release."""

    id: str
    agreement_id: str
    agreement_version: int
    agreement_sha256: str
    project: str
    policy_version: str
    manifest_sha256: str
    generalisation_sha256: str
    bundle_name: str
    bundle_sha256: str
    bundle_bytes: int
    rows_in: int
    rows_out: int
    rows_suppressed: int
    consenting_providers: list[str]
    recipients: list[str]
    expires_on: date
    created_at: datetime
    requested_by: str
    audit_index: int


def _release_view(row: ResearchRelease) -> ReleaseView:
    return ReleaseView(
        id=row.id,
        agreement_id=row.agreement_id,
        agreement_version=row.agreement_version,
        agreement_sha256=row.agreement_sha256,
        project=row.project,
        policy_version=row.policy_version,
        manifest_sha256=row.manifest_sha256,
        generalisation_sha256=row.state_sha256,
        bundle_name=row.bundle_name,
        bundle_sha256=row.bundle_sha256,
        bundle_bytes=row.bundle_bytes,
        rows_in=row.rows_in,
        rows_out=row.rows_out,
        rows_suppressed=row.rows_suppressed,
        consenting_providers=json.loads(row.consenting_providers),
        recipients=json.loads(row.recipients),
        expires_on=row.expires_on,
        created_at=row.created_at,
        requested_by=row.requested_by,
        audit_index=row.audit_leaf_index,
    )


def _entry(row: ResearchConsent) -> ConsentEntry:
    return ConsentEntry(
        provider=row.provider_id,
        decision=ConsentDecision(row.decision),
        agreement_version=row.agreement_version,
        recorded_by=row.recorded_by,
        recorded_at=row.recorded_at,
        note=row.note,
    )


def _check_idempotency_key(key: str) -> None:
    if not 8 <= len(key) <= 128 or not key.isprintable():
        raise InvalidInputError(
            "the Idempotency-Key header must be 8 to 128 printable characters",
            field="Idempotency-Key",
        )


class Research:
    """The research use cases, bound to one gateway context."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    # ----- agreements and who stands where ---------------------------------------------

    def agreements(self) -> list[Agreement]:
        """Return every loaded agreement, by id."""
        return [self.ctx.agreements[k] for k in sorted(self.ctx.agreements)]

    def agreement(self, agreement_id: str) -> Agreement:
        """Return one agreement; raise NotFoundError if none has that id."""
        found = self.ctx.agreements.get(agreement_id)
        if found is None:
            raise NotFoundError("no such research agreement", field="agreement_id")
        return found

    @staticmethod
    def _named(agreement: Agreement) -> set[str]:
        return {p.partner for p in (*agreement.providers, *agreement.science_partners)}

    @staticmethod
    def _is_researcher(caller: Caller, agreement: Agreement) -> bool:
        science = {p.partner for p in agreement.science_partners}
        return caller.role is Role.RESEARCHER and caller.partner_id in science

    def _may_see(self, caller: Caller, agreement: Agreement) -> None:
        """Researchers of the agreement and privacy officers of partners it names; else 403."""
        officer = caller.role is Role.PRIVACY_OFFICER and caller.partner_id in self._named(
            agreement
        )
        if not (officer or self._is_researcher(caller, agreement)):
            raise NotEntitledError(
                "only the agreement's researchers and the privacy officers of the partners it "
                "names can see this",
                agreement=agreement.id,
            )

    def _provider_ref(self, caller: Caller, agreement: Agreement) -> PartnerRef:
        for ref in agreement.providers:
            if ref.partner == caller.partner_id:
                if ref.kind != caller.partner_kind:
                    raise ConflictError(
                        f"the agreement names {ref.partner} as a {ref.kind}, the partner "
                        f"registry as a {caller.partner_kind}; correct one of them first"
                    )
                return ref
        raise NotAProviderError(
            "only partners the agreement names as providers can do this", agreement=agreement.id
        )

    def _allow_or_refuse(
        self, actor: Actor, requests: Sequence[DecisionRequest], what: str
    ) -> list[Decision]:
        """Return the allowing decisions, or record them all and raise PolicyDeniedError."""
        decisions = [self.ctx.policy.decide(r) for r in requests]
        refused = next((d for d in decisions if not d.allowed), None)
        if refused is not None:
            with self.ctx.db.write() as session:
                record_decisions(
                    session, actor, zip(requests, decisions, strict=True), self.ctx.clock.now()
                )
            raise PolicyDeniedError.of(refused, what)
        return decisions

    def _audit(
        self,
        session: Session,
        actor: Actor,
        event_type: AuditEventType,
        agreement: Agreement,
        decision: Decision | None,
        *,
        parties: Iterable[str] = (),
        legal_basis: str | None = None,
        details: dict[str, Any] | None = None,
        **refs: str | int | bool | None,
    ) -> int:
        own = {actor.partner_id} if actor.partner_id else set()
        return audit_log.append(
            session,
            AuditEvent(
                type=event_type,
                at=self.ctx.clock.now(),
                actor_principal=actor.principal_id,
                actor_partner=actor.partner_id,
                purpose=agreement.purpose,
                legal_basis=legal_basis or agreement.legal_basis,
                policy_version=decision.policy_version if decision else None,
                parties=tuple(sorted(set(parties) | own)),
                refs={
                    "agreement": agreement.id,
                    "agreement_version": agreement.version,
                    **refs,
                    "rule": decision.rule_id if decision else None,
                },
                details=details,
            ),
        )

    # ----- consent ---------------------------------------------------------------------

    def _history(self, session: Session, agreement: Agreement) -> list[ConsentEntry]:
        rows = session.exec(
            select(ResearchConsent)
            .where(ResearchConsent.agreement_id == agreement.id)
            .order_by(col(ResearchConsent.id))
        ).all()
        return [_entry(r) for r in rows]

    def record_consent(
        self, caller: Caller, agreement_id: str, decision: ConsentDecision, note: str | None
    ) -> ConsentView:
        """A provider's privacy officer records consent, refusal or revocation; return the state.

        Raises NotFoundError, NotAProviderError, PolicyDeniedError (e.g. not a privacy
        officer), ConsentNotGivenError (revoking without a consent) or InvalidInputError.
        """
        agreement = self.agreement(agreement_id)
        self._provider_ref(caller, agreement)
        if note is not None and len(note) > MAX_NOTE_LENGTH:
            raise InvalidInputError(
                f"a note has at most {MAX_NOTE_LENGTH} characters", field="note"
            )
        request = DecisionRequest(
            partner_id=caller.partner_id,
            partner_kind=caller.partner_kind,
            role=caller.role.value,
            action=Action.CONSENT_RECORD,
            purpose=agreement.purpose,
        )
        actor = Actor.of(caller)
        (allowed,) = self._allow_or_refuse(actor, [request], "recording consent")
        now = self.ctx.clock.now()
        with self.ctx.db.write() as session:
            audit_log.lock_head(session)  # serialises decisions on one agreement
            state = current_states(
                self._history(session, agreement), [caller.partner_id], agreement.version
            )[caller.partner_id]
            if decision is ConsentDecision.REVOKE and (
                state is None or state.state is not ConsentState.CONSENTED
            ):
                raise ConsentNotGivenError(
                    f"{caller.partner_id} has no consent to version {agreement.version} of "
                    "this agreement to revoke"
                )
            record_decisions(session, actor, [(request, allowed)], now)
            leaf = self._audit(
                session,
                actor,
                AuditEventType.RESEARCH_CONSENT_RECORD,
                agreement,
                allowed,
                parties=[p.partner for p in agreement.science_partners],
                details={"note": note} if note else None,
                consent=decision.value,
                provider=caller.partner_id,
            )
            session.add(
                ResearchConsent(
                    agreement_id=agreement.id,
                    agreement_version=agreement.version,
                    provider_id=caller.partner_id,
                    decision=decision.value,
                    note=note,
                    recorded_by=caller.principal_id,
                    recorded_at=now,
                    policy_version=allowed.policy_version,
                    audit_leaf_index=leaf,
                )
            )
        entry = ConsentEntry(
            caller.partner_id, decision, agreement.version, caller.principal_id, now, note
        )
        return self._consent_view(caller.partner_id, agreement, entry)

    @staticmethod
    def _consent_view(
        provider: str, agreement: Agreement, entry: ConsentEntry | None
    ) -> ConsentView:
        return ConsentView(
            provider=provider,
            state=ConsentState.NONE if entry is None else entry.state,
            agreement_version=agreement.version,
            decided_by=None if entry is None else entry.recorded_by,
            decided_at=None if entry is None else entry.recorded_at,
            note=None if entry is None else entry.note,
        )

    def consents(self, caller: Caller, agreement_id: str) -> ConsentsView:
        """Return each provider's current state and the history; see ``_may_see`` for who."""
        agreement = self.agreement(agreement_id)
        self._may_see(caller, agreement)
        with self.ctx.db.read() as session:
            history = self._history(session, agreement)
        providers = [p.partner for p in agreement.providers]
        current = current_states(history, providers, agreement.version)
        return ConsentsView(
            agreement_id=agreement.id,
            agreement_version=agreement.version,
            providers=[self._consent_view(p, agreement, current[p]) for p in providers],
            history=history,
        )

    # ----- intake ----------------------------------------------------------------------

    def _instrument(self, agreement: Agreement, instrument_id: str) -> Instrument:
        for instrument in agreement.instruments:
            if instrument.id == instrument_id:
                return instrument
        raise InvalidInputError(
            f"agreement {agreement.id} has no such instrument; it has "
            f"{', '.join(i.id for i in agreement.instruments)}",
            field="instrument",
        )

    def submit_rows(
        self,
        caller: Caller,
        agreement_id: str,
        idempotency_key: str,
        instrument_id: str,
        rows: Sequence[Mapping[str, Any]],
    ) -> IntakeResult:
        """A provider submits rows for one instrument; they are pseudonymised and sealed at once.

        Who may deliver is checked first (provider, agreement period, policy: role and the
        provider's own legal basis), every time: a retry with the same idempotency key and
        content is answered with the stored batch (``created`` False, audited as a replay)
        only to a caller who may deliver now; the same key with other content is a
        conflict. Raises NotFoundError, NotAProviderError, AgreementNotInEffectError,
        PolicyDeniedError, RowsRefusedError or InvalidInputError.
        """
        _check_idempotency_key(idempotency_key)
        agreement = self.agreement(agreement_id)
        instrument = self._instrument(agreement, instrument_id)
        self._provider_ref(caller, agreement)
        if caller.partner_id not in instrument.providers:
            raise NotAProviderError(
                f"instrument {instrument.id} is delivered by "
                f"{', '.join(instrument.providers)} only",
                instrument=instrument.id,
            )
        now = self.ctx.clock.now()
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
        (allowed,) = self._allow_or_refuse(actor, [request], "submitting these research rows")
        content_key = self.ctx.keys.blind_index(
            "research-rows",
            json.dumps(
                {"agreement": agreement.id, "instrument": instrument.id, "rows": list(rows)},
                sort_keys=True,
                separators=(",", ":"),
                default=str,
            ),
        )
        with self.ctx.db.read() as session:
            earlier = self._earlier_batch(session, caller, idempotency_key, content_key)
        if earlier is not None:
            return self._replay(actor, agreement, instrument, (request, allowed), earlier)
        vocabulary = self.ctx.policy.compiled.vocabulary
        plan = IntakePlan.build(agreement, instrument, vocabulary.schema(instrument.category))
        checked = check_rows(plan, rows, now.date())
        keys = self.ctx.keys
        pseudonymiser = keys.pseudonymiser(agreement.project)
        prepared = pseudonymise_rows(plan, checked, pseudonymiser)
        if plan.questionnaire:
            self._refuse_withdrawn(agreement, prepared.respondent_keys)
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
            with self.ctx.db.write() as session:
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
                record_decisions(session, actor, [(request, allowed)], now)
                self._audit(
                    session,
                    actor,
                    AuditEventType.RESEARCH_ROWS_SUBMIT,
                    agreement,
                    allowed,
                    legal_basis=instrument.legal_basis,
                    instrument=instrument.id,
                    category=instrument.category,
                    batch=batch_id,
                    rows=len(values),
                    invalid_identifiers=sum(invalid.values()),
                )
        except IntegrityError:
            # A concurrent retry with the same key won the race; answer as a retry.
            with self.ctx.db.read() as session:
                earlier = self._earlier_batch(session, caller, idempotency_key, content_key)
            if earlier is None:
                raise
            return self._replay(actor, agreement, instrument, (request, allowed), earlier)
        return IntakeResult(
            batch_id=batch_id,
            created=True,
            rows=len(values),
            invalid_identifiers=invalid,
            policy_version=allowed.policy_version,
            rule_id=allowed.rule_id,
        )

    def _replay(
        self,
        actor: Actor,
        agreement: Agreement,
        instrument: Instrument,
        decided: tuple[DecisionRequest, Decision],
        earlier: IntakeResult,
    ) -> IntakeResult:
        """Record the allowing decision and a replay audit entry; return the stored batch."""
        now = self.ctx.clock.now()
        with self.ctx.db.write() as session:
            record_decisions(session, actor, [decided], now)
            self._audit(
                session,
                actor,
                AuditEventType.RESEARCH_ROWS_SUBMIT,
                agreement,
                decided[1],
                legal_basis=instrument.legal_basis,
                instrument=instrument.id,
                category=instrument.category,
                batch=earlier.batch_id,
                rows=0,
                replay=True,
            )
        return earlier

    @staticmethod
    def _earlier_batch(
        session: Session, caller: Caller, idempotency_key: str, content_key: str
    ) -> IntakeResult | None:
        earlier = session.exec(
            select(ResearchBatch).where(
                ResearchBatch.provider_id == caller.partner_id,
                ResearchBatch.idempotency_key == idempotency_key,
            )
        ).one_or_none()
        if earlier is None:
            return None
        if earlier.content_key != content_key:
            raise IdempotencyConflictError(
                "this Idempotency-Key was used before for different content; nothing was stored"
            )
        return IntakeResult(
            batch_id=earlier.id,
            created=False,
            rows=earlier.row_count,
            invalid_identifiers=json.loads(earlier.invalid_identifiers),
            policy_version=earlier.policy_version,
            rule_id=earlier.rule_id,
        )

    def _refuse_withdrawn(self, agreement: Agreement, keys: Sequence[str | None]) -> None:
        wanted = {k for k in keys if k is not None}
        with self.ctx.db.read() as session:
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

    # ----- withdrawals -----------------------------------------------------------------

    def withdraw(self, caller: Caller, agreement_id: str, respondent_id: str) -> WithdrawalResult:
        """The questionnaire intake partner records a respondent's withdrawal.

        Only the respondent's pseudonym is stored; the respondent is left out of every
        later release. Recording it twice is harmless (``created`` False). Raises
        NotFoundError, NotAProviderError or InvalidInputError.
        """
        agreement = self.agreement(agreement_id)
        self._provider_ref(caller, agreement)
        intakes = [
            i
            for i in agreement.instruments
            if i.kind is InstrumentKind.QUESTIONNAIRE and caller.partner_id in i.providers
        ]
        if not intakes or caller.role not in INTAKE_ROLES:
            raise NotAProviderError(
                "only the system, an analyst or the privacy officer of a questionnaire's "
                "intake partner records withdrawals",
                agreement=agreement.id,
            )
        key = respondent_key(self.ctx.keys.pseudonymiser(agreement.project), respondent_id)
        now = self.ctx.clock.now()
        actor = Actor.of(caller)
        try:
            with self.ctx.db.write() as session:
                earlier = session.get(ResearchWithdrawal, (agreement.id, key))
                rows = int(
                    session.exec(
                        select(func.count())
                        .select_from(ResearchRow)
                        .where(
                            ResearchRow.agreement_id == agreement.id,
                            ResearchRow.respondent_key == key,
                        )
                    ).one()
                )
                if earlier is not None:
                    return WithdrawalResult(agreement.id, False, rows, earlier.recorded_at)
                session.add(
                    ResearchWithdrawal(
                        agreement_id=agreement.id,
                        respondent_key=key,
                        provider_id=caller.partner_id,
                        recorded_by=caller.principal_id,
                        recorded_at=now,
                    )
                )
                self._audit(
                    session,
                    actor,
                    AuditEventType.RESEARCH_RESPONDENT_WITHDRAW,
                    agreement,
                    None,
                    parties=[p.partner for p in agreement.science_partners],
                    legal_basis=intakes[0].legal_basis,
                    rows_excluded=rows,
                )
        except IntegrityError:
            return self.withdraw(caller, agreement_id, respondent_id)  # a concurrent twin won
        return WithdrawalResult(agreement.id, True, rows, now)

    # ----- releases --------------------------------------------------------------------

    def _may_request_release(self, caller: Caller, agreement: Agreement) -> None:
        riec_officer = (
            caller.role is Role.PRIVACY_OFFICER
            and caller.partner_kind == "riec"
            and caller.partner_id in self._named(agreement)
        )
        if not (riec_officer or self._is_researcher(caller, agreement)):
            raise NotEntitledError(
                "a release is requested by one of the agreement's researchers or by a privacy "
                "officer of a RIEC the agreement names",
                agreement=agreement.id,
            )

    def _science_partners(self, session: Session, agreement: Agreement) -> list[Partner]:
        found = []
        for ref in agreement.science_partners:
            partner = session.get(Partner, ref.partner)
            if partner is None or not partner.active or partner.kind != "science":
                raise ConflictError(
                    f"science partner {ref.partner} is not an active science partner in the "
                    "registry; its researchers cannot receive a release"
                )
            found.append(partner)
        return found

    def _decide_release(
        self,
        agreement: Agreement,
        science: Sequence[Partner],
        kinds: Mapping[str, str],
        consented: set[str],
    ) -> tuple[list[tuple[DecisionRequest, Decision]], set[tuple[str, str]]]:
        """Ask the policy for every receiving partner and (provider, instrument) pair."""
        pairs: list[tuple[DecisionRequest, Decision]] = []
        allowed: set[tuple[str, str]] = set()
        for instrument in agreement.instruments:
            for provider in instrument.providers:
                ok = True
                for partner in science:
                    request = DecisionRequest(
                        partner_id=partner.id,
                        partner_kind=partner.kind,
                        role=Role.RESEARCHER.value,
                        action=Action.EXTRACT_RELEASE,
                        purpose=agreement.purpose,
                        category=instrument.category,
                        legal_basis=instrument.legal_basis,
                        provider_kind=kinds.get(provider, NONE),
                        relation=Relation.OTHER,
                        consent=Consent.GIVEN if provider in consented else Consent.ABSENT,
                    )
                    decision = self.ctx.policy.decide(request)
                    pairs.append((request, decision))
                    ok = ok and decision.allowed
                    if decision.allowed:
                        problems = unmet_obligations(agreement, decision.obligations)
                        if problems:
                            raise AgreementPolicyConflictError(
                                f"agreement {agreement.id} conflicts with policy rule "
                                f"{decision.rule_id}: " + "; ".join(problems)
                            )
                if ok:
                    allowed.add((provider, instrument.id))
        return pairs, allowed

    def _is_recorded(self, release_id: str) -> bool:
        with self.ctx.db.read() as session:
            return session.get(ResearchRelease, release_id) is not None

    def recover(self) -> dict[str, list[str]]:
        """Complete or discard bundles that interrupted releases left; return what was done."""
        where = self.ctx.settings.resolved_releases_dir
        with folder.release_lock(where):
            return folder.recover(where, self._is_recorded)

    def _stored_rows(
        self, session: Session, agreement: Agreement, allowed: set[tuple[str, str]]
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
        open_field = self.ctx.keys.open_field
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

    def release(
        self,
        actor: Actor,
        agreement_id: str,
        *,
        caller: Caller | None = None,
        progress: ProgressSink | None = None,
    ) -> ReleaseView:
        """Release the agreement's stored rows to its researchers; return the recorded release.

        ``caller`` is the API caller (checked: a researcher of the agreement or a RIEC
        privacy officer it names); the CLI passes none. Raises NotFoundError,
        NotEntitledError, AgreementNotInEffectError, NoConsentingProviderError,
        AgreementPolicyConflictError, DisclosureCheckFailedError, KeyShreddedError or
        ConflictError (a science partner not in the registry). On any error nothing is
        published and nothing recorded.
        """
        agreement = self.agreement(agreement_id)
        if caller is not None:
            self._may_request_release(caller, agreement)
        now = self.ctx.clock.now()
        agreement.require_in_effect(now)
        self._require_pinned_signer(agreement)
        with self.ctx.db.read() as session:
            science = self._science_partners(session, agreement)
            kinds = {
                p.id: p.kind
                for p in session.exec(
                    select(Partner).where(col(Partner.id).in_(sorted(agreement.provider_ids)))
                ).all()
            }
            consented = consenting(
                self._history(session, agreement), agreement.provider_ids, agreement.version
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
        pairs, allowed = self._decide_release(agreement, science, kinds, consented)
        if not allowed:
            with self.ctx.db.write() as session:
                record_decisions(session, actor, pairs, now)
            raise NoConsentingProviderError(
                f"no provider of agreement {agreement.id} may be released now: each needs its "
                "privacy officer's consent to this version of the agreement, and the policy's "
                "allow",
                agreement=agreement.id,
            )
        with self.ctx.db.read() as session:
            age_recipients = require_confirmed_recipients(session, agreement)
        excluded = Counter[str]()
        for provider, instrument, count in counts:
            if (provider, instrument) not in allowed:
                excluded[NOT_ALLOWED] += int(count)
        state = None if fixed is None else GeneralisationState.from_json(fixed.state)
        policy_version = pairs[0][1].policy_version
        releases_dir = self.ctx.settings.resolved_releases_dir
        recipients = sorted(p.id for p in science)
        with folder.release_lock(releases_dir):
            folder.recover(releases_dir, self._is_recorded)
            release_id = f"{agreement.id[:60]}-{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
            pseudonymiser = self.ctx.keys.pseudonymiser(agreement.project)
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
            with self.ctx.db.read() as session:
                made = make_release(
                    request,
                    batches=batches_from_rows(
                        self._stored_rows(session, agreement, allowed),
                        input_fields(agreement, pseudonymised=True),
                    ),
                    pseudonymiser=pseudonymiser,
                    signer=self.ctx.signer,
                    out_dir=folder.pending_dir(releases_dir),
                    progress=progress,
                    recipients=age_recipients,
                )
            try:
                pseudonymiser.check_live()
                digest, size = sha256_file(made.bundle)
                row = self._record_release(
                    actor,
                    agreement,
                    made,
                    fixed=fixed,
                    pairs=pairs,
                    bundle=(digest, size),
                    recipients=recipients,
                    now=now,
                )
            except BaseException:
                made.bundle.unlink(missing_ok=True)
                raise
            folder.finish(made.bundle, folder.final_path(releases_dir, release_id))
        return _release_view(row)

    def _require_pinned_signer(self, agreement: Agreement) -> None:
        """Refuse (SigningKeyNotPinnedError) when the agreement pins another signing key."""
        pin = agreement.signing_pin
        if pin is not None and self.ctx.signer.fingerprint != pin:
            raise SigningKeyNotPinnedError(
                f"agreement {agreement.id} pins signing key sha256:{pin}, but this gateway "
                f"signs with sha256:{self.ctx.signer.fingerprint}; nothing is released until "
                "the agreement pins the gateway's key",
                agreement=agreement.id,
            )

    def _record_release(
        self,
        actor: Actor,
        agreement: Agreement,
        made: Release,
        *,
        fixed: ResearchGeneralisation | None,
        pairs: Sequence[tuple[DecisionRequest, Decision]],
        bundle: tuple[str, int],
        recipients: Sequence[str],
        now: datetime,
    ) -> ResearchRelease:
        """Record the release, its decisions, the project's generalisation and the audit entry."""
        manifest, manifest_sha256, state = made.manifest, made.manifest_sha256, made.state
        bundle_sha256, bundle_bytes = bundle
        counts = manifest["counts"]
        release_id = str(manifest["release"]["id"])
        consenting_providers = list(manifest["providers"]["consenting"])
        allowed = next(d for _, d in pairs if d.allowed)
        with self.ctx.db.write() as session:
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
            leaf = self._audit(
                session,
                actor,
                AuditEventType.RESEARCH_EXTRACT_RELEASE,
                agreement,
                allowed,
                parties=[*recipients, *consenting_providers],
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
            )
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

    # ----- what researchers and privacy officers read ----------------------------------

    def _release_row(self, release_id: str) -> tuple[ResearchRelease, Agreement]:
        with self.ctx.db.read() as session:
            row = session.get(ResearchRelease, release_id)
        if row is None:
            raise NotFoundError("no such release", field="release_id")
        agreement = self.agreement(row.agreement_id)
        return row, agreement

    def releases(self, caller: Caller, agreement_id: str) -> list[ReleaseView]:
        """Return an agreement's releases, newest first; see ``_may_see`` for who."""
        agreement = self.agreement(agreement_id)
        self._may_see(caller, agreement)
        with self.ctx.db.read() as session:
            rows = session.exec(
                select(ResearchRelease)
                .where(ResearchRelease.agreement_id == agreement.id)
                .order_by(
                    col(ResearchRelease.created_at).desc(),
                    col(ResearchRelease.audit_leaf_index).desc(),
                )
            ).all()
        return [_release_view(r) for r in rows]

    def release_view(self, caller: Caller, release_id: str) -> ReleaseView:
        """Return one release's record; see ``_may_see`` for who."""
        row, agreement = self._release_row(release_id)
        self._may_see(caller, agreement)
        return _release_view(row)

    def bundle(self, caller: Caller, release_id: str) -> Path:
        """Return the bundle of a release for one of its researchers to download (audited).

        Raises NotFoundError, NotEntitledError (anyone but the agreement's researchers)
        or ReleaseExpiredError after the release's retention.
        """
        row, agreement = self._release_row(release_id)
        if not self._is_researcher(caller, agreement):
            raise NotEntitledError(
                "only the agreement's researchers download its releases", release=release_id
            )
        if self.ctx.clock.now().date() > row.expires_on:
            raise ReleaseExpiredError(
                f"release {release_id} could be kept until {row.expires_on.isoformat()}; it is "
                "no longer handed out",
                release=release_id,
            )
        path = folder.final_path(self.ctx.settings.resolved_releases_dir, row.id)
        if not path.exists():
            self.recover()
        if not path.exists() or sha256_file(path) != (row.bundle_sha256, row.bundle_bytes):
            raise NotFoundError("the bundle of this release is missing", release=release_id)
        with self.ctx.db.write() as session:
            self._audit(
                session,
                Actor.of(caller),
                AuditEventType.RESEARCH_EXTRACT_DOWNLOAD,
                agreement,
                None,
                release=row.id,
                manifest_sha256=row.manifest_sha256,
            )
        return path

    def proof(self, caller: Caller, release_id: str) -> str:
        """Return the release's audit proof (see ``proof_text``); see ``_may_see`` for who."""
        _row, agreement = self._release_row(release_id)
        self._may_see(caller, agreement)
        return self.proof_text(release_id)

    def proof_text(self, release_id: str) -> str:
        """Return the tlog-proof of the release's audit entry under a signed checkpoint.

        The entry's leaf (in the proof) names the release and its manifest's SHA-256.
        Raises NotFoundError for an unknown release.
        """
        row, _agreement = self._release_row(release_id)
        ctx = self.ctx
        checkpoint = checkpoints.checkpoint_covering(
            ctx.db,
            ctx.clock,
            ctx.signer,
            ctx.settings.log_origin,
            row.audit_leaf_index,
            retired_public_keys=ctx.retired_public_keys,
        )
        return checkpoints.proof_bundle(ctx.db, checkpoint, row.audit_leaf_index)

    # ----- end of the project ----------------------------------------------------------

    def shred_project(self, actor: Actor, agreement_id: str, *, by: str | None = None) -> bool:
        """Destroy the project's pseudonymisation secret and its row key, in one audited step.

        Afterwards the stored rows cannot be read, no rows can be added, and the project's
        pseudonyms cannot be produced or linked by anyone. ``by`` (a role) records that
        someone asked for it; without it, the project's retention ended. Returns False if
        both were destroyed before.
        """
        agreement = self.agreement(agreement_id)
        keys = self.ctx.keys
        reason = ShredReason.RETENTION if by is None else ShredReason.REQUEST
        with self.ctx.db.write() as session:
            rows = keys.shred_case(
                session, rows_key_id(agreement.project), actor=actor, reason=reason, by=by
            )
            secret = keys.shred_project(
                session, agreement.project, actor=actor, reason=reason, by=by
            )
            self._audit(
                session,
                actor,
                AuditEventType.RESEARCH_PROJECT_SHRED,
                agreement,
                None,
                project=agreement.project,
                rows_key_destroyed=rows,
                secret_destroyed=secret,
            )
        return rows or secret


def require_project(keys: KeyRing, project: str, agreement_projects: Collection[str]) -> None:
    """Raise InvalidInputError for a malformed id, NotFoundError unless the project is known."""
    valid_key_id(project, "project")
    if project not in agreement_projects and not keys.has_key(KeyKind.PROJECT, project):
        raise NotFoundError(f"no such research project: {project}", project=project)


def shred_project_on_request(
    db: Database,
    keys: KeyRing,
    actor: Actor,
    project: str,
    *,
    by: str,
    agreement_projects: Collection[str],
) -> bool:
    """Destroy ``project``'s pseudonymisation secret and row key now, at the request of ``by``.

    One transaction with the key ring's audit entries. Raises NotFoundError for a project
    neither an agreement nor the key ring knows; returns False if it was shredded before.
    """
    require_project(keys, project, agreement_projects)
    with db.write() as session:
        rows = False
        if project in agreement_projects or keys.has_key(KeyKind.CASE, rows_key_id(project)):
            rows = keys.shred_case(
                session, rows_key_id(project), actor=actor, reason=ShredReason.REQUEST, by=by
            )
        secret = keys.shred_project(
            session, project, actor=actor, reason=ShredReason.REQUEST, by=by
        )
    return rows or secret


def before_commit(release_id: str) -> None:
    """Called just before a release's transaction commits; tests replace it to crash there."""
