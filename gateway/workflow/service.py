"""The case workflow's use cases: signals, hit/no-hit, go/no-go, outputs, steps, records.

Every use case asks the policy first. A refusal is recorded (decision and audit entry)
in a transaction of its own and then raised as ``PolicyDeniedError``; an allowed change
commits together with its decisions and its audit entry, or not at all. Content that
may identify people is sealed with the case's data key before it reaches the store.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from gateway.audit import log as audit_log
from gateway.audit.events import AuditEvent, AuditEventType
from gateway.context import AppContext
from gateway.errors import (
    ConflictError,
    IdempotencyConflictError,
    InvalidInputError,
    KeyShreddedError,
    NotFoundError,
    PermissionDeniedError,
    PolicyDeniedError,
)
from gateway.identity.service import Actor, Caller
from gateway.keys import KeyKind
from gateway.models.cases import (
    Case,
    CaseOutput,
    CaseParticipant,
    CaseSubject,
    CaseTransition,
    Holding,
    Record,
    RecordSubject,
)
from gateway.models.partners import Partner
from gateway.obligations.apply import ObligationError, apply
from gateway.obligations.types import to_json_list
from gateway.policy.decision import (
    NONE,
    Action,
    Consent,
    Decision,
    DecisionRequest,
    Relation,
)
from gateway.policy.recording import record_decisions
from gateway.policy.schema import validate_record
from gateway.vocabulary import Role
from gateway.workflow import sealing
from gateway.workflow.steps import (
    OUTPUT_STEP,
    OutputKind,
    Process,
    Step,
    TransitionNotAllowed,
    plan_transition,
)
from gateway.workflow.subjects import Subject, subject, subjects_of, unique

SIGNAL_PURPOSE = "signaalbeoordeling"
OPEN, CLOSED, SHREDDED = "open", "closed", "shredded"
ONWARD_CONDITIONS = frozenset({"never", "with-provider-consent", "per-policy"})
MAX_RETENTION_DAYS = 20 * 365

# The data category the policy knows each output kind by.
OUTPUT_CATEGORY: dict[OutputKind, str] = {
    OutputKind.SIGNAL: "signal",
    OutputKind.GO: "go-decision",
    OutputKind.NO_GO: "go-decision",
    OutputKind.ANALYSIS: "analysis",
    OutputKind.ADVICE: "advice",
    OutputKind.RESULTS: "result",
    OutputKind.EVALUATION: "evaluation",
    OutputKind.CLOSURE: "closure",
}
WRITABLE_OUTPUTS = frozenset(
    {OutputKind.ANALYSIS, OutputKind.ADVICE, OutputKind.RESULTS, OutputKind.EVALUATION}
)
# The roles that work in a case and read its content; privacy officers see only its state.
# Operators and researchers have no business with case data at all.
CASE_ROLES = frozenset({Role.PARTNER_SYSTEM, Role.ANALYST, Role.RIEC_ANALYST})
CASE_VIEW_ROLES = CASE_ROLES | {Role.PRIVACY_OFFICER}


class NotParticipantError(PermissionDeniedError):
    """The caller's partner does not take part in the case."""

    code = "not-a-participant"
    title = "Not a participant of this case"


class RoleNotInCaseError(PermissionDeniedError):
    """The caller's role has no business with this case data (e.g. operators, researchers)."""

    code = "role-not-in-case"
    title = "This role has no access to case data"


class NotCaseRiecError(PermissionDeniedError):
    """Another RIEC (or the LIEC) taking part in a case does not steer it."""

    code = "not-the-case-riec"
    title = "Only the RIEC running this case can do this"


@dataclass(frozen=True, slots=True)
class SubjectIn:
    """An identifier as given by a caller: its type and value."""

    id_type: str
    value: str


@dataclass(frozen=True, slots=True)
class Intervention:
    """An intervention the advice assigns to one partner, for one purpose."""

    partner_id: str
    purpose: str
    description: str


@dataclass(frozen=True, slots=True)
class RecordIn:
    """A record a partner shares into a case, with its provenance."""

    category: str
    legal_basis: str
    purposes: tuple[str, ...]
    onward: str
    retention_days: int
    fields: Mapping[str, Any]
    summary: str | None = None


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where a record came from; it travels with the record wherever it goes."""

    provider: str
    provider_kind: str
    category: str
    legal_basis: str
    purposes: tuple[str, ...]
    onward: str
    shared_at: datetime
    shared_at_step: int
    retention_until: datetime | None


@dataclass(frozen=True, slots=True)
class ReleasedRecord:
    """A record as one partner may see it, with the rule and obligations that shaped it."""

    id: str
    provenance: Provenance
    fields: dict[str, Any]
    summary_only: bool
    rule_id: str
    obligations: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class RecordsView:
    """What one read of a case's records returned, and how many records were withheld."""

    case_id: str
    step: int
    policy_version: str
    records: list[ReleasedRecord]
    withheld: int
    withheld_by_rule: dict[str, int]


@dataclass(frozen=True, slots=True)
class OutputView:
    """A step output as one partner may see it."""

    id: str
    kind: str
    step: int
    author_partner: str
    created_at: datetime
    purpose: str | None
    legal_basis: str | None
    content: dict[str, Any]


@dataclass(frozen=True, slots=True)
class OutputsView:
    """The outputs one partner may read, and how many were withheld."""

    case_id: str
    step: int
    outputs: list[OutputView]
    withheld: int


@dataclass(frozen=True, slots=True)
class CaseView:
    """A case's state as its participants see it (no content)."""

    id: str
    process: str
    step: int
    step_label: str
    status: str
    riec: str
    purpose: str | None
    legal_basis: str | None
    participants: list[str]
    created_at: datetime
    closed_at: datetime | None
    transitions: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ShareResult:
    """The outcome of sharing: the record id, and whether this call stored it."""

    record_id: str
    created: bool
    policy_version: str
    rule_id: str


@dataclass(frozen=True, slots=True)
class HitResult:
    """Hit or no hit per participant, never content."""

    case_id: str
    hits: dict[str, bool]
    policy_version: str


def _next_seq(case: Case) -> int:
    """Return the case's next sequence number (the caller holds the case row's lock)."""
    case.seq += 1
    return case.seq


def new_id(prefix: str) -> str:
    """Return a random, unguessable id such as ``case-3f9a...`` (no personal data)."""
    return f"{prefix}-{secrets.token_hex(10)}"


class Workflow:
    """The case use cases, bound to one gateway context."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    # ----- helpers ---------------------------------------------------------------------

    def _request(
        self,
        caller: Caller,
        action: Action,
        case: Case | None,
        *,
        process: str | None = None,
        step: int | None = None,
        purpose: str | None = None,
        category: str = NONE,
        legal_basis: str = NONE,
        provider_kind: str = NONE,
        relation: Relation = Relation.NONE,
        consent: Consent = Consent.NOT_NEEDED,
    ) -> DecisionRequest:
        return DecisionRequest(
            partner_id=caller.partner_id,
            partner_kind=caller.partner_kind,
            role=caller.role.value,
            action=action,
            process=process or (case.process if case else NONE),
            step=step if step is not None else (case.step if case else None),
            purpose=purpose or (case.purpose if case and case.purpose else NONE),
            category=category,
            legal_basis=legal_basis,
            provider_kind=provider_kind,
            relation=relation,
            consent=consent,
        )

    def _allow_or_refuse(
        self, caller: Caller, request: DecisionRequest, what: str, case_id: str | None
    ) -> Decision:
        """Return the allowing decision, or record the refusal and raise PolicyDeniedError."""
        decision = self.ctx.policy.decide(request)
        if not decision.allowed:
            with self.ctx.db.write() as session:
                record_decisions(
                    session,
                    Actor.of(caller),
                    [(request, decision)],
                    self.ctx.clock.now(),
                    case_id=case_id,
                )
            raise PolicyDeniedError.of(decision, what)
        return decision

    @contextmanager
    def _refusals(self, caller: Caller, case_id: str | None) -> Iterator[None]:
        """Audit a refusal raised inside the block, then let it go on to the caller.

        Policy refusals are recorded where they are decided; this records the others
        (wrong role, not a participant) in a transaction of their own. Enter it before
        the read session, so that the session is closed before the refusal is written.
        """
        try:
            yield
        except PermissionDeniedError as exc:
            if not isinstance(exc, PolicyDeniedError):
                with self.ctx.db.write() as session:
                    audit_log.append(
                        session,
                        AuditEvent(
                            type=AuditEventType.ACCESS_REFUSE,
                            at=self.ctx.clock.now(),
                            actor_principal=caller.principal_id,
                            actor_partner=caller.partner_id,
                            case_id=case_id,
                            refs={"refusal": exc.code, "role": caller.role.value},
                        ),
                    )
            raise

    @staticmethod
    def _role_may_read(caller: Caller, roles: frozenset[Role]) -> None:
        """Raise RoleNotInCaseError unless the caller's role reads this kind of case data."""
        if caller.role not in roles:
            raise RoleNotInCaseError(
                f"the role {caller.role.value} has no access to case data",
            )

    @staticmethod
    def _steers(caller: Caller, case: Case) -> None:
        """Raise NotCaseRiecError for a RIEC that takes part in a case another RIEC runs.

        The policy names the RIEC by its kind; which RIEC runs this case is the case's.
        """
        if caller.partner_kind == "riec" and caller.partner_id != case.riec_partner_id:
            raise NotCaseRiecError(
                "only the RIEC running this case adds partners, asks hit/no-hit, records "
                "the go decision, writes its outputs and moves it between steps",
                case=case.id,
            )

    def _case(self, session: Session, case_id: str, caller: Caller, *, lock: bool = False) -> Case:
        query = select(Case).where(Case.id == case_id)
        if lock:
            query = query.with_for_update()
        case = session.exec(query).one_or_none()
        if case is None:
            raise NotFoundError("no such case", field="case_id")
        participant = session.get(CaseParticipant, (case_id, caller.partner_id))
        if participant is None:
            raise NotParticipantError(
                "only partners taking part in a case can act on it", case=case_id
            )
        return case

    def _participants(self, session: Session, case_id: str) -> list[str]:
        return list(
            session.exec(
                select(CaseParticipant.partner_id)
                .where(CaseParticipant.case_id == case_id)
                .order_by(col(CaseParticipant.partner_id))
            ).all()
        )

    def _audit(
        self,
        session: Session,
        caller: Caller,
        event_type: AuditEventType,
        case: Case | None,
        decision: Decision | None,
        *,
        subjects: Iterable[str] = (),
        parties: Iterable[str] = (),
        purpose: str | None = None,
        legal_basis: str | None = None,
        details: dict[str, Any] | None = None,
        **refs: str | int | bool | None,
    ) -> int:
        return audit_log.append(
            session,
            AuditEvent(
                type=event_type,
                at=self.ctx.clock.now(),
                actor_principal=caller.principal_id,
                actor_partner=caller.partner_id,
                case_id=case.id if case else None,
                step=case.step if case else None,
                purpose=purpose or (case.purpose if case else None),
                legal_basis=legal_basis or (case.legal_basis if case else None),
                policy_version=decision.policy_version if decision else None,
                subjects=tuple(sorted(set(subjects))),
                parties=tuple(sorted(set(parties) | {caller.partner_id})),
                refs={**refs, "rule": decision.rule_id if decision else None},
                details=details,
            ),
        )

    def _view(self, session: Session, case: Case) -> CaseView:
        transitions = session.exec(
            select(CaseTransition)
            .where(CaseTransition.case_id == case.id)
            .order_by(col(CaseTransition.seq))
        ).all()
        return CaseView(
            id=case.id,
            process=case.process,
            step=case.step,
            step_label=Step(case.step).label,
            status=case.status,
            riec=case.riec_partner_id,
            purpose=case.purpose,
            legal_basis=case.legal_basis,
            participants=self._participants(session, case.id),
            created_at=case.created_at,
            closed_at=case.closed_at,
            transitions=[
                {
                    "from_step": t.from_step,
                    "to_step": t.to_step,
                    "at": t.at,
                    "by": t.partner_id,
                    "reason": t.reason,
                    "policy_version": t.policy_version,
                    "rule_id": t.rule_id,
                }
                for t in transitions
            ],
        )

    def _subjects(self, given: Sequence[SubjectIn]) -> list[Subject]:
        return unique(subject(self.ctx.keys, s.id_type, s.value) for s in given)

    def _known_term(self, dimension: str, value: str) -> None:
        problem = self.ctx.policy.compiled.vocabulary.unknown(dimension, value)
        if problem is not None:
            raise InvalidInputError(problem, field=dimension)

    # ----- cases and signals -----------------------------------------------------------

    def submit_signal(
        self,
        caller: Caller,
        *,
        process: str,
        riec_partner_id: str,
        legal_basis: str,
        description: str,
        subjects: Sequence[SubjectIn],
    ) -> CaseView:
        """Step 1: a partner submits a signal; a case opens with the submitter and the RIEC.

        Only the RIEC and the submitter can read the signal. Raises PolicyDeniedError,
        InvalidInputError (unknown process, RIEC, basis or identifier) or NotFoundError.
        """
        try:
            Process(process)
        except ValueError as exc:
            raise InvalidInputError("unknown work process", field="process") from exc
        if not description.strip():
            raise InvalidInputError("a signal needs a description", field="description")
        request = self._request(
            caller,
            Action.SIGNAL_SUBMIT,
            None,
            process=process,
            step=Step.INDIENEN_SIGNAAL,
            purpose=SIGNAL_PURPOSE,
            category="signal",
            legal_basis=legal_basis,
            relation=Relation.OWN,
        )
        decision = self._allow_or_refuse(caller, request, "submitting this signal", None)
        found = self._subjects(subjects)
        now = self.ctx.clock.now()
        case_id = new_id("case")
        with self.ctx.db.write() as session:
            riec = session.get(Partner, riec_partner_id)
            if riec is None or riec.kind != "riec" or not riec.active:
                raise InvalidInputError("riec must name an active RIEC partner", field="riec")
            self.ctx.keys.create_case_key(case_id)
            case = Case(
                id=case_id,
                process=process,
                step=Step.INDIENEN_SIGNAAL,
                status=OPEN,
                riec_partner_id=riec.id,
                created_by=caller.principal_id,
                created_at=now,
            )
            session.add(case)
            session.flush()
            for partner_id in {caller.partner_id, riec.id}:
                session.add(
                    CaseParticipant(
                        case_id=case_id,
                        partner_id=partner_id,
                        added_by=caller.principal_id,
                        added_at=now,
                    )
                )
            output = self._add_output(
                session,
                case,
                caller,
                OutputKind.SIGNAL,
                {
                    "description": description,
                    # as the submitter wrote them; the indexes use the canonical form
                    "subjects": [{"type": s.id_type, "value": s.value.strip()} for s in subjects],
                },
                now,
                purpose=SIGNAL_PURPOSE,
                legal_basis=legal_basis,
            )
            for s in found:
                session.add(
                    CaseSubject(
                        case_id=case_id,
                        subject_key=s.key,
                        id_type=s.id_type,
                        value_sealed=sealing.seal_value(
                            self.ctx.keys, case_id, s.key, "value", s.value
                        ),
                    )
                )
            record_decisions(session, Actor.of(caller), [(request, decision)], now, case_id=case_id)
            self._audit(
                session,
                caller,
                AuditEventType.SIGNAL_SUBMIT,
                case,
                decision,
                subjects=[s.key for s in found],
                parties=[riec.id],
                purpose=SIGNAL_PURPOSE,
                legal_basis=legal_basis,
                output=output.id,
            )
            return self._view(session, case)

    def list_cases(self, caller: Caller) -> list[CaseView]:
        """Return the cases the caller's partner takes part in, newest first.

        Raises RoleNotInCaseError (audited) for roles that see no cases.
        """
        with self._refusals(caller, None), self.ctx.db.read() as session:
            self._role_may_read(caller, CASE_VIEW_ROLES)
            cases = session.exec(
                select(Case)
                .join(CaseParticipant, col(CaseParticipant.case_id) == col(Case.id))
                .where(CaseParticipant.partner_id == caller.partner_id)
                .order_by(col(Case.created_at).desc())
            ).all()
            return [self._view(session, c) for c in cases]

    def get_case(self, caller: Caller, case_id: str) -> CaseView:
        """Return one case's state; participants in a case role or privacy officers only.

        Raises RoleNotInCaseError or NotParticipantError (both audited), NotFoundError.
        """
        with self._refusals(caller, case_id), self.ctx.db.read() as session:
            self._role_may_read(caller, CASE_VIEW_ROLES)
            return self._view(session, self._case(session, case_id, caller))

    def add_participant(self, caller: Caller, case_id: str, partner_id: str) -> CaseView:
        """The RIEC adds a partner to an open case. Raises PolicyDeniedError, NotFoundError.

        The policy decides on the added partner's kind too (as ``provider_kind``): banks,
        telecom and science partners take part only where a rule allows their kind.
        """
        with self._refusals(caller, case_id), self.ctx.db.read() as session:
            case = self._case(session, case_id, caller)
            self._steers(caller, case)
            added = session.get(Partner, partner_id)
            # an unknown partner is decided as "none", so a caller without the right
            # learns nothing about which partners exist
            added_kind = added.kind if added is not None and added.active else NONE
        self._open(case)
        request = self._request(caller, Action.PARTICIPANT_ADD, case, provider_kind=added_kind)
        decision = self._allow_or_refuse(caller, request, "adding a partner to this case", case_id)
        now = self.ctx.clock.now()
        with self.ctx.db.write() as session:
            case = self._case(session, case_id, caller, lock=True)
            self._open(case)
            partner = session.get(Partner, partner_id)
            if partner is None or not partner.active:
                raise NotFoundError("no active partner with that id", field="partner_id")
            if session.get(CaseParticipant, (case_id, partner_id)) is not None:
                raise ConflictError("that partner already takes part in the case")
            session.add(
                CaseParticipant(
                    case_id=case_id,
                    partner_id=partner_id,
                    added_by=caller.principal_id,
                    added_at=now,
                )
            )
            record_decisions(session, Actor.of(caller), [(request, decision)], now, case_id=case_id)
            self._audit(
                session,
                caller,
                AuditEventType.PARTICIPANT_ADD,
                case,
                decision,
                parties=[partner_id],
                partner=partner_id,
            )
            session.flush()
            return self._view(session, case)

    def _readable(self, case: Case) -> None:
        """Raise KeyShreddedError for a shredded case, saying who shredded it and when."""
        if case.status == SHREDDED:
            recorded = self.ctx.keys.shredded_error(KeyKind.CASE, case.id)
            if recorded is not None:
                raise recorded
            raise KeyShreddedError(
                "this case reached the end of its retention period: its key was destroyed "
                "and its content can no longer be read by anyone",
                case=case.id,
            )

    @staticmethod
    def _open(case: Case) -> None:
        if case.status != OPEN:
            raise TransitionNotAllowed("the case is closed; it cannot change any more")

    # ----- step 2: hit/no-hit and the go/no-go decision --------------------------------

    def register_holdings(
        self, caller: Caller, category: str, identifiers: Sequence[SubjectIn]
    ) -> int:
        """Record that the caller's partner holds information on these subjects.

        Only keyed indexes are stored. Returns how many new index entries were added.
        """
        with self._refusals(caller, None):
            if caller.role not in (Role.PARTNER_SYSTEM, Role.ANALYST):
                raise PermissionDeniedError("only a partner's system or analyst registers holdings")
        try:
            self.ctx.policy.compiled.vocabulary.schema(category)
        except KeyError as exc:
            raise InvalidInputError("unknown category", field="category") from exc
        found = self._subjects(identifiers)
        now = self.ctx.clock.now()
        added = 0
        with self.ctx.db.write() as session:
            for s in found:
                if session.get(Holding, (caller.partner_id, s.key, category)) is None:
                    session.add(
                        Holding(
                            partner_id=caller.partner_id,
                            subject_key=s.key,
                            category=category,
                            id_type=s.id_type,
                            registered_at=now,
                        )
                    )
                    added += 1
            self._audit(
                session,
                caller,
                AuditEventType.HOLDINGS_REGISTER,
                None,
                None,
                subjects=[s.key for s in found],
                category=category,
                added=added,
            )
        return added

    def hit_query(self, caller: Caller, case_id: str, identifier: SubjectIn) -> HitResult:
        """Step 2: which participants hold information on a subject? Yes or no, never content."""
        with self._refusals(caller, case_id), self.ctx.db.read() as session:
            case = self._case(session, case_id, caller)
            self._steers(caller, case)
        self._open(case)
        request = self._request(
            caller, Action.HIT_QUERY, case, purpose=SIGNAL_PURPOSE, category="hit-result"
        )
        decision = self._allow_or_refuse(caller, request, "a hit/no-hit query", case_id)
        found = subject(self.ctx.keys, identifier.id_type, identifier.value)
        now = self.ctx.clock.now()
        with self.ctx.db.write() as session:
            asked = [p for p in self._participants(session, case_id) if p != caller.partner_id]
            holders = set(
                session.exec(
                    select(Holding.partner_id).where(
                        Holding.subject_key == found.key, col(Holding.partner_id).in_(asked)
                    )
                ).all()
            )
            holders |= set(
                session.exec(
                    select(Record.provider_partner_id)
                    .join(RecordSubject, col(RecordSubject.record_id) == col(Record.id))
                    .where(
                        RecordSubject.subject_key == found.key,
                        col(Record.provider_partner_id).in_(asked),
                    )
                ).all()
            )
            hits = {p: p in holders for p in asked}
            record_decisions(session, Actor.of(caller), [(request, decision)], now, case_id=case_id)
            self._audit(
                session,
                caller,
                AuditEventType.HIT_QUERY,
                case,
                decision,
                subjects=[found.key],
                parties=asked,
                purpose=SIGNAL_PURPOSE,
                details={"hits": sorted(p for p, hit in hits.items() if hit)},
                asked=len(asked),
                hits=len(holders),
            )
        return HitResult(case_id=case_id, hits=hits, policy_version=decision.policy_version)

    def record_go_decision(
        self,
        caller: Caller,
        case_id: str,
        *,
        go: bool,
        purpose: str,
        legal_basis: str,
        motivation: str,
    ) -> CaseView:
        """Step 2: record the stuurploeg's go (purpose and legal basis) or no-go (closes)."""
        with self._refusals(caller, case_id), self.ctx.db.read() as session:
            case = self._case(session, case_id, caller)
            self._steers(caller, case)
        self._open(case)
        if case.step != Step.VERKENNEN:
            raise TransitionNotAllowed("a go/no-go decision is recorded at step 2 (Verkennen)")
        request = self._request(
            caller,
            Action.DECISION_RECORD,
            case,
            purpose=purpose,
            category="go-decision",
            legal_basis=legal_basis,
        )
        decision = self._allow_or_refuse(caller, request, "recording this decision", case_id)
        now = self.ctx.clock.now()
        kind = OutputKind.GO if go else OutputKind.NO_GO
        with self.ctx.db.write() as session:
            case = self._case(session, case_id, caller, lock=True)
            if case.step != Step.VERKENNEN or case.status != OPEN:
                raise TransitionNotAllowed("the case moved on; the decision was not recorded")
            output = self._add_output(
                session,
                case,
                caller,
                kind,
                {"motivation": motivation},
                now,
                purpose=purpose,
                legal_basis=legal_basis,
            )
            if go:
                case.purpose, case.legal_basis = purpose, legal_basis
            record_decisions(session, Actor.of(caller), [(request, decision)], now, case_id=case_id)
            self._audit(
                session,
                caller,
                AuditEventType.GO_DECISION,
                case,
                decision,
                parties=self._participants(session, case_id),
                purpose=purpose,
                legal_basis=legal_basis,
                output=output.id,
                go=go,
            )
            if not go:
                self._close(session, case, caller, decision, now, "no-go: the case stops")
            session.add(case)
            session.flush()
            return self._view(session, case)

    # ----- outputs ---------------------------------------------------------------------

    def write_output(
        self,
        caller: Caller,
        case_id: str,
        kind: OutputKind,
        text: str,
        interventions: Sequence[Intervention] = (),
    ) -> OutputView:
        """Write the current step's output (analysis, advice, results or evaluation)."""
        if kind not in WRITABLE_OUTPUTS:
            raise InvalidInputError(
                "outputs written here are analysis, advice, results and evaluation",
                field="kind",
            )
        if not text.strip():
            raise InvalidInputError("an output needs text", field="text")
        with self._refusals(caller, case_id), self.ctx.db.read() as session:
            case = self._case(session, case_id, caller)
            if kind is not OutputKind.RESULTS:  # results are each partner's own
                self._steers(caller, case)
            participants = set(self._participants(session, case_id))
        self._open(case)
        if OUTPUT_STEP[kind] != case.step:
            raise TransitionNotAllowed(
                f"a {kind.value} is written at step {int(OUTPUT_STEP[kind])}, "
                f"the case is at step {case.step}"
            )
        if kind is OutputKind.ADVICE:
            if not interventions:
                raise InvalidInputError(
                    "an advice assigns at least one intervention to a partner",
                    field="interventions",
                )
            for item in interventions:
                if item.partner_id not in participants:
                    raise InvalidInputError(
                        "interventions go to partners taking part in the case",
                        field="interventions",
                    )
                self._known_term("purpose", item.purpose)
        elif interventions:
            raise InvalidInputError("only an advice has interventions", field="interventions")
        request = self._request(
            caller,
            Action.OUTPUT_WRITE,
            case,
            category=OUTPUT_CATEGORY[kind],
            relation=Relation.OWN,
        )
        decision = self._allow_or_refuse(caller, request, f"writing the {kind.value}", case_id)
        now = self.ctx.clock.now()
        content: dict[str, Any] = {"text": text}
        if interventions:
            content["interventions"] = [
                {"partner": i.partner_id, "purpose": i.purpose, "description": i.description}
                for i in interventions
            ]
        with self.ctx.db.write() as session:
            case = self._case(session, case_id, caller, lock=True)
            if case.step != OUTPUT_STEP[kind] or case.status != OPEN:
                raise TransitionNotAllowed("the case moved on; the output was not stored")
            assigned = sorted({i.partner_id for i in interventions})
            output = self._add_output(session, case, caller, kind, content, now, assigned=assigned)
            record_decisions(session, Actor.of(caller), [(request, decision)], now, case_id=case_id)
            self._audit(
                session,
                caller,
                AuditEventType.OUTPUT_WRITE,
                case,
                decision,
                parties=assigned,
                output=output.id,
                kind=kind.value,
            )
            return self._output_view(output, content)

    def _add_output(
        self,
        session: Session,
        case: Case,
        caller: Caller,
        kind: OutputKind,
        content: dict[str, Any],
        now: datetime,
        *,
        purpose: str | None = None,
        legal_basis: str | None = None,
        assigned: Sequence[str] = (),
    ) -> CaseOutput:
        """Store a step output at the case's current step, sealed; the caller holds the lock."""
        output_id = new_id("out")
        output = CaseOutput(
            seq=_next_seq(case),
            id=output_id,
            case_id=case.id,
            step=case.step,
            kind=kind.value,
            author_principal_id=caller.principal_id,
            author_partner_id=caller.partner_id,
            created_at=now,
            purpose=purpose,
            legal_basis=legal_basis,
            assigned_partners=json.dumps(list(assigned)),
            content_sealed=sealing.seal_map(self.ctx.keys, case.id, output_id, content),
        )
        session.add(output)
        return output

    @staticmethod
    def _output_view(output: CaseOutput, content: dict[str, Any]) -> OutputView:
        return OutputView(
            id=output.id,
            kind=output.kind,
            step=output.step,
            author_partner=output.author_partner_id,
            created_at=output.created_at,
            purpose=output.purpose,
            legal_basis=output.legal_basis,
            content=content,
        )

    def read_outputs(self, caller: Caller, case_id: str) -> OutputsView:
        """Return the outputs (signal included) the caller may read at the case's step.

        Roles outside the case's work get RoleNotInCaseError (audited), not counts.
        """
        with self._refusals(caller, case_id), self.ctx.db.read() as session:
            self._role_may_read(caller, CASE_ROLES)
            case = self._case(session, case_id, caller)
            self._readable(case)
            outputs = session.exec(
                select(CaseOutput)
                .where(CaseOutput.case_id == case_id)
                .order_by(col(CaseOutput.seq))
            ).all()
        pairs: list[tuple[DecisionRequest, Decision]] = []
        shown: list[OutputView] = []
        for output in outputs:
            kind = OutputKind(output.kind)
            own = output.author_partner_id == caller.partner_id
            request = self._request(
                caller,
                Action.SIGNAL_READ if kind is OutputKind.SIGNAL else Action.OUTPUT_READ,
                case,
                category=OUTPUT_CATEGORY[kind],
                relation=Relation.OWN if own else Relation.OTHER,
            )
            decision = self.ctx.policy.decide(request)
            pairs.append((request, decision))
            if not decision.allowed:
                continue
            content = sealing.open_map(self.ctx.keys, case_id, output.id, output.content_sealed)
            # the case's own RIEC sees every intervention; anyone else (another RIEC too) its own
            if kind is OutputKind.ADVICE and caller.partner_id != case.riec_partner_id and not own:
                content["interventions"] = [
                    i for i in content.get("interventions", []) if i["partner"] == caller.partner_id
                ]
            shown.append(self._output_view(output, content))
        withheld = len(outputs) - len(shown)
        with self.ctx.db.write() as session:
            record_decisions(
                session, Actor.of(caller), pairs, self.ctx.clock.now(), case_id=case_id
            )
            self._audit(
                session,
                caller,
                AuditEventType.OUTPUT_READ,
                case,
                pairs[0][1] if pairs else None,
                parties={o.author_partner for o in shown},
                returned=len(shown),
                withheld=withheld,
            )
        return OutputsView(case_id=case_id, step=case.step, outputs=shown, withheld=withheld)

    # ----- steps -----------------------------------------------------------------------

    def _outputs_at_current_step(self, session: Session, case: Case) -> set[OutputKind]:
        entered = session.exec(
            select(CaseTransition.seq)
            .where(CaseTransition.case_id == case.id, CaseTransition.to_step == case.step)
            .order_by(col(CaseTransition.seq).desc())
        ).first()
        query = select(CaseOutput.kind).where(
            CaseOutput.case_id == case.id, CaseOutput.step == case.step
        )
        if entered is not None:
            query = query.where(col(CaseOutput.seq) > entered)
        return {OutputKind(kind) for kind in session.exec(query).all()}

    def transition(
        self,
        caller: Caller,
        case_id: str,
        to_step: int,
        reason: str | None,
        closure_text: str | None = None,
    ) -> CaseView:
        """Move a case to another step, if its output exists and the policy allows it.

        Moving to step 7 closes the case: access ends except each provider's own records,
        and the retention clock of every record starts.
        """
        try:
            target = Step(to_step)
        except ValueError as exc:
            raise InvalidInputError("to_step must be 1 to 7", field="to_step") from exc
        with self._refusals(caller, case_id), self.ctx.db.read() as session:
            case = self._case(session, case_id, caller)
            self._steers(caller, case)
            plan_transition(
                Step(case.step),
                target,
                self._outputs_at_current_step(session, case),
                reason,
                closed=case.status != OPEN,
            )
        request = self._request(caller, Action.STEP_TRANSITION, case)
        decision = self._allow_or_refuse(caller, request, "this step transition", case_id)
        now = self.ctx.clock.now()
        with self.ctx.db.write() as session:
            case = self._case(session, case_id, caller, lock=True)
            move = plan_transition(
                Step(case.step),
                target,
                self._outputs_at_current_step(session, case),
                reason,
                closed=case.status != OPEN,
            )
            self._record_transition(session, case, caller, decision, move.target, reason, now)
            record_decisions(session, Actor.of(caller), [(request, decision)], now, case_id=case_id)
            self._audit(
                session,
                caller,
                AuditEventType.STEP_TRANSITION,
                case,
                decision,
                parties=self._participants(session, case_id),
                source_step=int(move.source),
                target_step=int(move.target),
                backward=move.backward,
            )
            if move.closes:
                if closure_text:
                    self._add_output(
                        session, case, caller, OutputKind.CLOSURE, {"text": closure_text}, now
                    )
                self._close(session, case, caller, decision, now, None)
            session.add(case)
            session.flush()
            return self._view(session, case)

    def _record_transition(
        self,
        session: Session,
        case: Case,
        caller: Caller,
        decision: Decision,
        target: Step,
        reason: str | None,
        now: datetime,
    ) -> None:
        session.add(
            CaseTransition(
                seq=_next_seq(case),
                id=new_id("tr"),
                case_id=case.id,
                from_step=case.step,
                to_step=int(target),
                at=now,
                principal_id=caller.principal_id,
                partner_id=caller.partner_id,
                reason=(reason or None) and reason[:500],
                policy_version=decision.policy_version,
                rule_id=decision.rule_id,
            )
        )
        case.step = int(target)

    def _close(
        self,
        session: Session,
        case: Case,
        caller: Caller,
        decision: Decision,
        now: datetime,
        reason: str | None,
    ) -> None:
        """Close a case: step 7, access ends but for providers, record retention starts."""
        if case.step != Step.AFSLUITEN:
            self._record_transition(session, case, caller, decision, Step.AFSLUITEN, reason, now)
        case.status = CLOSED
        case.closed_at = now
        for record in session.exec(select(Record).where(Record.case_id == case.id)).all():
            record.retention_until = now + timedelta(days=record.retention_days)
            session.add(record)
        self._audit(
            session,
            caller,
            AuditEventType.CASE_CLOSE,
            case,
            decision,
            parties=self._participants(session, case.id),
        )

    # ----- records ---------------------------------------------------------------------

    def share_record(
        self, caller: Caller, case_id: str, idempotency_key: str, record: RecordIn
    ) -> ShareResult:
        """Share a record into a case under the provider's legal basis.

        A retry with the same idempotency key and content returns the stored record
        (``created`` False, audited as a replay); the same key with other content is a
        conflict. Authority (participant, role and policy) is checked before the key, so
        a caller that may not share learns nothing about what was shared before.
        """
        if not 8 <= len(idempotency_key) <= 128 or not idempotency_key.isprintable():
            raise InvalidInputError(
                "the Idempotency-Key header must be 8 to 128 printable characters",
                field="Idempotency-Key",
            )
        vocabulary = self.ctx.policy.compiled.vocabulary
        self._known_term("category", record.category)
        self._known_term("legal_basis", record.legal_basis)
        if not vocabulary.may_invoke(caller.partner_kind, record.legal_basis):
            # A basis of another kind of partner: refused and recorded before any retry answer.
            with self.ctx.db.read() as session:
                owner = self._case(session, case_id, caller)
            foreign = self._request(
                caller,
                Action.RECORD_SHARE,
                owner,
                category=record.category,
                legal_basis=record.legal_basis,
                provider_kind=caller.partner_kind,
                relation=Relation.OWN,
            )
            self._allow_or_refuse(caller, foreign, "sharing this record", case_id)
        for purpose in record.purposes:
            self._known_term("purpose", purpose)
        if record.onward not in ONWARD_CONDITIONS:
            raise InvalidInputError(
                f"onward must be one of {', '.join(sorted(ONWARD_CONDITIONS))}", field="onward"
            )
        if not 1 <= record.retention_days <= MAX_RETENTION_DAYS:
            raise InvalidInputError(
                f"retention_days must be 1 to {MAX_RETENTION_DAYS}", field="retention_days"
            )
        schema = vocabulary.schema(record.category)
        if not schema.fields:
            raise InvalidInputError(
                "the category is not one records can be shared in",
                field="category",
            )
        problems = validate_record(schema, record.fields)
        if problems:
            raise InvalidInputError(
                "the record does not match its category: " + "; ".join(problems)
            )
        found = subjects_of(self.ctx.keys, schema, record.fields)
        content_key = self.ctx.keys.blind_index(
            "record-content",
            json.dumps(
                {
                    "category": record.category,
                    "legal_basis": record.legal_basis,
                    "purposes": sorted(record.purposes),
                    "onward": record.onward,
                    "retention_days": record.retention_days,
                    "fields": record.fields,
                    "summary": record.summary,
                    "case": case_id,
                },
                sort_keys=True,
                default=str,
            ),
        )
        with self._refusals(caller, case_id), self.ctx.db.read() as session:
            case = self._case(session, case_id, caller)
        self._open(case)
        request = self._request(
            caller,
            Action.RECORD_SHARE,
            case,
            category=record.category,
            legal_basis=record.legal_basis,
            provider_kind=caller.partner_kind,
            relation=Relation.OWN,
        )
        decision = self._allow_or_refuse(caller, request, "sharing this record", case_id)
        with self.ctx.db.read() as session:
            earlier = self._earlier_share(session, caller, idempotency_key, content_key)
        if earlier is not None:
            return self._replayed(caller, case, request, decision, earlier)
        now = self.ctx.clock.now()
        record_id = new_id("rec")
        checked = case  # the block below rebinds ``case``; a rollback expires that one
        try:
            with self.ctx.db.write() as session:
                case = self._case(session, case_id, caller, lock=True)
                self._open(case)
                session.add(
                    Record(
                        id=record_id,
                        case_id=case_id,
                        provider_partner_id=caller.partner_id,
                        provided_by=caller.principal_id,
                        step=case.step,
                        category=record.category,
                        legal_basis=record.legal_basis,
                        purposes=json.dumps(sorted(record.purposes)),
                        onward=record.onward,
                        retention_days=record.retention_days,
                        idempotency_key=idempotency_key,
                        content_key=content_key,
                        fields_sealed=sealing.seal_map(
                            self.ctx.keys, case_id, record_id, dict(record.fields)
                        ),
                        summary_sealed=None
                        if record.summary is None
                        else sealing.seal_value(
                            self.ctx.keys, case_id, record_id, "summary", record.summary
                        ),
                        created_at=now,
                    )
                )
                session.flush()
                session.add_all(
                    RecordSubject(record_id=record_id, subject_key=s.key, id_type=s.id_type)
                    for s in unique(found)
                )
                record_decisions(
                    session, Actor.of(caller), [(request, decision)], now, case_id=case_id
                )
                self._audit(
                    session,
                    caller,
                    AuditEventType.RECORD_SHARE,
                    case,
                    decision,
                    subjects=[s.key for s in found],
                    parties=[case.riec_partner_id],
                    legal_basis=record.legal_basis,
                    record=record_id,
                    category=record.category,
                )
        except IntegrityError:
            # A concurrent retry with the same key won the race; answer as a retry.
            with self.ctx.db.read() as session:
                earlier = self._earlier_share(session, caller, idempotency_key, content_key)
            if earlier is None:
                raise
            return self._replayed(caller, checked, request, decision, earlier)
        return ShareResult(
            record_id=record_id,
            created=True,
            policy_version=decision.policy_version,
            rule_id=decision.rule_id,
        )

    def _replayed(
        self,
        caller: Caller,
        case: Case,
        request: DecisionRequest,
        decision: Decision,
        earlier: str,
    ) -> ShareResult:
        """Record an allowed retry (its decision and a replay entry) and answer it."""
        with self.ctx.db.write() as session:
            record_decisions(
                session,
                Actor.of(caller),
                [(request, decision)],
                self.ctx.clock.now(),
                case_id=case.id,
            )
            self._audit(
                session,
                caller,
                AuditEventType.RECORD_SHARE_REPLAY,
                case,
                decision,
                parties=[case.riec_partner_id],
                record=earlier,
                replay=True,
            )
        return ShareResult(
            record_id=earlier,
            created=False,
            policy_version=decision.policy_version,
            rule_id=decision.rule_id,
        )

    @staticmethod
    def _earlier_share(
        session: Session, caller: Caller, idempotency_key: str, content_key: str
    ) -> str | None:
        """Return the id of the caller's partner's record stored under this key, if any.

        Raises IdempotencyConflictError when that record's content differs.
        """
        earlier = session.exec(
            select(Record).where(
                Record.provider_partner_id == caller.partner_id,
                Record.idempotency_key == idempotency_key,
            )
        ).one_or_none()
        if earlier is None:
            return None
        if earlier.content_key != content_key:
            raise IdempotencyConflictError(
                "this Idempotency-Key was used before for different content; nothing was stored"
            )
        return earlier.id

    def _read_purpose(self, session: Session, case: Case, caller: Caller) -> str:
        """At step 5 a partner reads for its own intervention's purpose; else the case's."""
        if case.step != Step.UITVOEREN:
            return case.purpose or NONE
        advices = session.exec(
            select(CaseOutput)
            .where(CaseOutput.case_id == case.id, CaseOutput.kind == OutputKind.ADVICE.value)
            .order_by(col(CaseOutput.seq).desc())
        ).all()
        for advice in advices:
            if caller.partner_id not in json.loads(advice.assigned_partners):
                continue
            content = sealing.open_map(self.ctx.keys, case.id, advice.id, advice.content_sealed)
            for item in content.get("interventions", []):
                if item["partner"] == caller.partner_id:
                    return str(item["purpose"])
        return case.purpose or NONE

    def read_records(self, caller: Caller, case_id: str) -> RecordsView:
        """Return the case's records as the policy lets the caller see them at this step.

        Each allowed record comes with its provenance and with the obligations applied
        (fields dropped, identifiers pseudonymised, values generalised, or only the
        provider's summary); withheld records are only counted, by deciding rule. Roles
        outside the case's work get RoleNotInCaseError (audited), not counts.
        """
        with self._refusals(caller, case_id), self.ctx.db.read() as session:
            self._role_may_read(caller, CASE_ROLES)
            case = self._case(session, case_id, caller)
            self._readable(case)
            purpose = self._read_purpose(session, case, caller)
            rows = session.exec(
                select(Record, Partner)
                .join(Partner, col(Partner.id) == col(Record.provider_partner_id))
                .where(Record.case_id == case_id)
                .order_by(col(Record.created_at), col(Record.id))
            ).all()
            subject_rows = session.exec(
                select(RecordSubject).where(
                    col(RecordSubject.record_id).in_([r.id for r, _ in rows])
                )
            ).all()
        subjects_by_record: dict[str, list[str]] = {}
        for row in subject_rows:
            subjects_by_record.setdefault(row.record_id, []).append(row.subject_key)
        vocabulary = self.ctx.policy.compiled.vocabulary
        pseudonymise = self.ctx.keys.pseudonymiser(f"case.{case_id}")
        now = self.ctx.clock.now()
        pairs: list[tuple[DecisionRequest, Decision]] = []
        released: list[ReleasedRecord] = []
        withheld_by_rule: dict[str, int] = {}
        for record, provider in rows:
            own = record.provider_partner_id == caller.partner_id
            request = self._request(
                caller,
                Action.RECORD_READ,
                case,
                purpose=purpose,
                category=record.category,
                legal_basis=record.legal_basis,
                provider_kind=provider.kind,
                relation=Relation.OWN if own else Relation.OTHER,
            )
            decision = self.ctx.policy.decide(request)
            pairs.append((request, decision))
            if not decision.allowed:
                withheld_by_rule[decision.rule_id] = withheld_by_rule.get(decision.rule_id, 0) + 1
                continue
            fields = sealing.open_map(self.ctx.keys, case_id, record.id, record.fields_sealed)
            summary = (
                None
                if record.summary_sealed is None
                else sealing.open_value(
                    self.ctx.keys, case_id, record.id, "summary", record.summary_sealed
                )
            )
            try:
                shaped = apply(
                    decision.obligations,
                    fields,
                    vocabulary.schema(record.category),
                    pseudonymise,
                    now,
                    summary=summary,
                )
            except ObligationError:
                key = f"{decision.rule_id} (obligation not applicable)"
                withheld_by_rule[key] = withheld_by_rule.get(key, 0) + 1
                continue
            released.append(
                ReleasedRecord(
                    id=record.id,
                    provenance=Provenance(
                        provider=provider.id,
                        provider_kind=provider.kind,
                        category=record.category,
                        legal_basis=record.legal_basis,
                        purposes=tuple(json.loads(record.purposes)),
                        onward=record.onward,
                        shared_at=record.created_at,
                        shared_at_step=record.step,
                        retention_until=record.retention_until,
                    ),
                    fields=shaped,
                    summary_only=any(o.kind == "summary-only" for o in decision.obligations),
                    rule_id=decision.rule_id,
                    obligations=to_json_list(decision.obligations),
                )
            )
        withheld = len(rows) - len(released)
        with self.ctx.db.write() as session:
            record_decisions(session, Actor.of(caller), pairs, now, case_id=case_id)
            self._audit(
                session,
                caller,
                AuditEventType.RECORD_READ,
                case,
                pairs[0][1] if pairs else None,
                subjects=[k for r in released for k in subjects_by_record.get(r.id, [])],
                parties={r.provenance.provider for r in released},
                purpose=purpose,
                returned=len(released),
                withheld=withheld,
            )
        return RecordsView(
            case_id=case_id,
            step=case.step,
            policy_version=self.ctx.policy.version,
            records=released,
            withheld=withheld,
            withheld_by_rule=withheld_by_rule,
        )
