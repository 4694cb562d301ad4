"""A person's processing log (AVG art. 15) covers case records and research rows, once each.

Research intake, withdrawal and release entries name the persons of their rows by the
gateway's keyed subject index, so the privacy officer of a partner that delivered rows
about a person finds that the person's pseudonymised data went to a science partner.
Every line, of case and research events alike, is checked against the LDV data model.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlmodel import select

from gateway.audit.verify import verify_log
from gateway.demo import POLITIE as POLITIE_SYSTEM
from gateway.demo import RIEC
from gateway.models.audit import AuditEntry, AuditSubject
from tests.helpers.cases import POLICE_RECORD, go, start_case
from tests.helpers.ldv import assert_ldv_line, assert_one_span_per_person, every_line
from tests.helpers.research import ANSWERS, BANK, BANK_ROW, BSN, NAME, POLICE_ROW, POLITIE
from tests.research_api.conftest import RIEC_INTAKE, Study, officer, system

TRACE = "0af7651916cd43dd8448eb211c80319c"
RESPONDENT = "Lotte van der Vragen"  # answers a questionnaire, then withdraws
ANSWERED = {**ANSWERS, "name": RESPONDENT}
CALLER_SPAN = "b7ad6b7169203331"


def _case_about_the_person(study: Study) -> str:
    """A case at step 3 with a police record about the study's person, read by the RIEC."""
    walk = start_case(study.gw)
    go(walk)
    record = {
        **POLICE_RECORD,
        "fields": {**POLICE_RECORD["fields"], "subject_bsn": BSN, "subject_name": NAME},
    }
    response = study.gw.client.post(
        walk.case("/records"),
        json=record,
        headers={
            **study.gw.auth(POLITIE_SYSTEM),
            "Idempotency-Key": "ldv-record-0001",
            "traceparent": f"00-{TRACE}-{CALLER_SPAN}-01",
        },
    )
    assert response.status_code == 201, response.text
    walk.records(RIEC)
    return walk.case_id


def _research_about_the_person(study: Study, synthetic_rows: list[dict[str, Any]]) -> str:
    """Rows about the person from the police and the bank, a questionnaire, one release.

    The synthetic study's rows go in too, so the disclosure check lets a release out.
    """
    study.submit_synthetic(synthetic_rows)
    for who, instrument, row in (
        (system(POLITIE), "politie-incidenten", POLICE_ROW),
        (system(BANK), "bank-money-mule-signalen", BANK_ROW),
        (RIEC_INTAKE, "vragenlijst-jongeren", ANSWERED),
    ):
        response = study.submit(who, instrument, [row])
        assert response.status_code == 201, response.text
    study.withdraw(str(ANSWERS["respondent_id"]))
    study.consent_all()
    return str(study.released()["id"])


def _lookup(study: Study, who: str, *identifiers: tuple[str, str]) -> list[dict[str, Any]]:
    given = identifiers or (("bsn", BSN), ("name", NAME))
    response = study.gw.client.post(
        "/v1/subjects/processing-log",
        json={"identifiers": [{"type": t, "value": v} for t, v in given]},
        headers=study.gw.auth(who),
    )
    assert response.status_code == 200, response.text
    return [
        line for line in response.json()["lines"] if line["name"] != "subject:processing-log:read"
    ]


def test_a_person_with_case_records_and_research_rows_gets_both_once_each(
    study: Study, synthetic_rows: list[dict[str, Any]]
) -> None:
    _case_about_the_person(study)
    _research_about_the_person(study, synthetic_rows)

    lines = _lookup(study, officer(POLITIE))
    names = Counter(line["name"] for line in lines)
    # the police shared the record, two partners' reads name it as provider, it delivered
    # rows, and the release took them: each processing once, although the person was
    # looked up by BSN and by name and the record names both
    assert names == {
        "case:record:share": 1,
        "case:record:read": 1,
        "research:rows:submit": 1,
        "research:extract:release": 1,
    }, names
    spans = [(line["trace_id"], line["span_id"]) for line in lines]
    assert len(spans) == len(set(spans))
    release = next(line for line in lines if line["name"] == "research:extract:release")
    attributes = release["attributes"]
    assert attributes["nl.riec.gateway.parties"].count("nscr") == 1  # the science partner
    assert attributes["dpl.core.data_subject_id_type"] == "bsn"
    assert attributes["dpl.core.processing_activity_id"] == (
        "urn:riec-gateway:verwerkingsactiviteit:onderzoeksextract-verstrekken"
    )
    share = next(line for line in lines if line["name"] == "case:record:share")
    assert share["foreign_operation"]["trace_id"] == TRACE
    assert share["foreign_operation"]["span_id"] == CALLER_SPAN
    for line in lines:
        assert BSN not in str(line) and NAME not in str(line)

    # the bank's officer sees its own delivery and the release it consented to, not the case
    bank = Counter(line["name"] for line in _lookup(study, officer(BANK)))
    assert bank == {"research:rows:submit": 1, "research:extract:release": 1}, bank


def test_every_line_of_case_and_research_events_fits_the_ldv_data_model(
    study: Study, synthetic_rows: list[dict[str, Any]]
) -> None:
    _case_about_the_person(study)
    _research_about_the_person(study, synthetic_rows)
    checked = Counter[str]()
    for entry, lines in every_line(study.gw.database):
        assert lines, entry.event_type
        for line in lines:
            assert_ldv_line(line)
        assert_one_span_per_person(entry, lines)
        checked[entry.event_type] += len(lines)
    for kind in (
        "case:signal:submit",
        "case:record:share",
        "case:record:read",
        "research:rows:submit",
        "research:respondent:withdraw",
        "research:extract:release",
    ):
        assert checked[kind], kind


def test_a_release_names_only_persons_whose_rows_it_took(
    study: Study, synthetic_rows: list[dict[str, Any]]
) -> None:
    _research_about_the_person(study, synthetic_rows)
    withdrawn_only = Counter(
        line["name"]
        for line in _lookup(study, officer("riec-noord-nederland"), ("name", RESPONDENT))
    )
    # the questionnaire respondent withdrew: the release took none of their answers, so
    # the RIEC's intake is logged, their withdrawal too, and no release about them
    assert withdrawn_only["research:rows:submit"] == 1
    assert withdrawn_only["research:respondent:withdraw"] == 1
    assert withdrawn_only["research:extract:release"] == 0


def test_the_release_links_are_verifiable_and_a_removed_link_is_found(
    study: Study, synthetic_rows: list[dict[str, Any]]
) -> None:
    _research_about_the_person(study, synthetic_rows)
    db, now = study.gw.database, study.gw.clock.now()
    assert verify_log(db, [], study.gw.settings.log_origin, now).ok
    with db.write() as session:
        leaf = session.exec(
            select(AuditEntry.leaf_index).where(AuditEntry.event_type == "research:extract:release")
        ).one()
        links = session.exec(select(AuditSubject).where(AuditSubject.leaf_index == leaf)).all()
        assert len(links) > 100  # the synthetic study's people, by keyed index
        session.delete(links[0])
    problem = verify_log(db, [], study.gw.settings.log_origin, now).problem
    assert problem is not None and "data-subject links" in str(problem)
