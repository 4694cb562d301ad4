"""Reading records: partners read a case's records as the policy allows at its step.

A read returns each allowed record with its provenance and its obligations applied;
withheld records are only counted, by deciding rule. Sharing is
``gateway.workflow.records``.
"""

from __future__ import annotations

import json

from sqlmodel import col, select

from gateway.audit.events import AuditEventType
from gateway.context import AppContext
from gateway.db import table_of
from gateway.identity.actors import Caller
from gateway.models.cases import Case, CaseOutput, Record, RecordSubject
from gateway.models.partners import Partner
from gateway.obligations.apply import apply
from gateway.obligations.errors import ObligationError
from gateway.obligations.types import to_json_list
from gateway.policy.decision import NONE, Action, Decision, DecisionRequest, Relation
from gateway.workflow import sealing
from gateway.workflow.access import (
    CASE_ROLES,
    CaseState,
    decide,
    readable,
    record_in_case,
    refusals,
    role_may_read,
    state_of,
    with_case_state,
)
from gateway.workflow.steps import OutputKind, Step
from gateway.workflow.views import Provenance, RecordsView, ReleasedRecord


def _read_purpose(ctx: AppContext, case: CaseState, caller: Caller) -> str:
    """At step 5 a partner reads for its own intervention's purpose; else the case's."""
    if case.step != Step.UITVOEREN:
        return case.purpose or NONE
    with ctx.db.read() as session:
        advices = session.exec(
            select(CaseOutput)
            .where(CaseOutput.case_id == case.id, CaseOutput.kind == OutputKind.ADVICE.value)
            .order_by(col(CaseOutput.seq).desc())
        ).all()
    for advice in advices:
        if caller.partner_id not in json.loads(advice.assigned_partners):
            continue
        content = sealing.open_map(ctx.keys, case.id, advice.id, advice.content_sealed)
        for item in content.get("interventions", []):
            if item["partner"] == caller.partner_id:
                return str(item["purpose"])
    return case.purpose or NONE


_CASES_TABLE = table_of(Case)
_RECORDS_TABLE = table_of(Record)
_PARTNERS_TABLE = table_of(Partner)
_SUBJECTS_TABLE = table_of(RecordSubject)
# The case's state, then for a participant one row per record and subject (one with no
# subject when it names none), in the records' order: a read's data in one statement.
_CASE_RECORDS = with_case_state(
    _RECORDS_TABLE.join(
        _PARTNERS_TABLE, _PARTNERS_TABLE.c.id == _RECORDS_TABLE.c.provider_partner_id
    ).outerjoin(_SUBJECTS_TABLE, _SUBJECTS_TABLE.c.record_id == _RECORDS_TABLE.c.id),
    _RECORDS_TABLE.c.case_id == _CASES_TABLE.c.id,
    _RECORDS_TABLE.c.id.label("record_id"),
    _RECORDS_TABLE.c.provider_partner_id,
    _PARTNERS_TABLE.c.kind.label("provider_kind"),
    _RECORDS_TABLE.c.step.label("record_step"),
    _RECORDS_TABLE.c.category,
    _RECORDS_TABLE.c.legal_basis.label("record_legal_basis"),
    _RECORDS_TABLE.c.purposes,
    _RECORDS_TABLE.c.onward,
    _RECORDS_TABLE.c.retention_until,
    _RECORDS_TABLE.c.fields_sealed,
    _RECORDS_TABLE.c.summary_sealed,
    _RECORDS_TABLE.c.created_at,
    _SUBJECTS_TABLE.c.id_type,
    _SUBJECTS_TABLE.c.subject_key,
).order_by(_RECORDS_TABLE.c.created_at, _RECORDS_TABLE.c.id)


def read_records(ctx: AppContext, caller: Caller, case_id: str) -> RecordsView:
    """Return the case's records as the policy lets the caller see them at this step.

    Each allowed record comes with its provenance and with the obligations applied
    (fields dropped, identifiers pseudonymised, values generalised, or only the
    provider's summary); withheld records are only counted, by deciding rule. Roles
    outside the case's work get RoleNotInCaseError (audited), not counts.
    """
    with refusals(ctx, caller, case_id):
        role_may_read(caller, CASE_ROLES)
        # One statement, so one committed state on every database: no transaction needed.
        with ctx.db.lookup() as conn:
            found = conn.execute(
                _CASE_RECORDS, {"case_id": case_id, "partner_id": caller.partner_id}
            ).all()
        case = state_of(found[0] if found else None, case_id)
        readable(ctx, case)
        purpose = _read_purpose(ctx, case, caller)
    rows = []  # each record's first row
    subjects_by_record: dict[str, list[tuple[str, str]]] = {}
    for row in found:
        if row.record_id is None:  # a case without records
            continue
        about = subjects_by_record.get(row.record_id)
        if about is None:
            about = subjects_by_record[row.record_id] = []
            rows.append(row)
        if row.subject_key is not None:
            about.append((row.id_type, row.subject_key))
    vocabulary = ctx.policy.compiled.vocabulary
    pseudonymise = ctx.keys.pseudonymiser(f"case.{case_id}")
    now = ctx.clock.now()
    pairs: list[tuple[DecisionRequest, Decision]] = []
    released: list[ReleasedRecord] = []
    withheld_by_rule: dict[str, int] = {}
    for record in rows:
        own = record.provider_partner_id == caller.partner_id
        request = decide(
            caller,
            Action.RECORD_READ,
            case,
            purpose=purpose,
            category=record.category,
            legal_basis=record.record_legal_basis,
            provider_kind=record.provider_kind,
            relation=Relation.OWN if own else Relation.OTHER,
        )
        decision = ctx.policy.decide(request)
        pairs.append((request, decision))
        if not decision.allowed:
            withheld_by_rule[decision.rule_id] = withheld_by_rule.get(decision.rule_id, 0) + 1
            continue
        record_id = record.record_id
        fields = sealing.open_map(ctx.keys, case_id, record_id, record.fields_sealed)
        summary = (
            None
            if record.summary_sealed is None
            else sealing.open_value(ctx.keys, case_id, record_id, "summary", record.summary_sealed)
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
                id=record_id,
                provenance=Provenance(
                    provider=record.provider_partner_id,
                    provider_kind=record.provider_kind,
                    category=record.category,
                    legal_basis=record.record_legal_basis,
                    purposes=tuple(json.loads(record.purposes)),
                    onward=record.onward,
                    shared_at=record.created_at,
                    shared_at_step=record.record_step,
                    retention_until=record.retention_until,
                ),
                fields=shaped,
                summary_only=any(o.kind == "summary-only" for o in decision.obligations),
                rule_id=decision.rule_id,
                obligations=to_json_list(decision.obligations),
            )
        )
    withheld = len(rows) - len(released)
    with ctx.db.write() as session:
        record_in_case(
            session,
            ctx,
            caller,
            AuditEventType.RECORD_READ,
            case,
            decisions=pairs,
            decision=pairs[0][1] if pairs else None,
            persons=[subjects_by_record.get(r.id, []) for r in released],
            parties={r.provenance.provider for r in released},
            purpose=purpose,
            refs={"returned": len(released), "withheld": withheld},
        )
    return RecordsView(
        case_id=case_id,
        step=case.step,
        policy_version=ctx.policy.version,
        records=released,
        withheld=withheld,
        withheld_by_rule=withheld_by_rule,
    )
