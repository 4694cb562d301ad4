"""Intake: rows are checked against their instrument, pseudonymised at once and sealed.

No BSN, name, IBAN or phone number of a submitted row is anywhere in the raw database
bytes (SQLite file and WAL; every PostgreSQL relation file); the scan sees the batch id,
stored in the clear, so it can fail. Only a provider the instrument names submits, as
its system or analyst; retries are idempotent; problems name fields, never values.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlmodel import func, select

from gateway.db import Database
from gateway.keys import KeyRing
from gateway.models.research import ResearchBatch, ResearchRow
from gateway.research.service.agreement_access import rows_key_id
from tests.api.test_auth import assert_problem
from tests.helpers.research import (
    ANSWERS,
    BANK,
    BANK_ROW,
    BSN,
    IBAN,
    NAME,
    PHONE,
    POLICE_ROW,
    POLITIE,
    TELECOM,
    TELECOM_ROW,
)
from tests.research_api.conftest import (
    AGREEMENT,
    EXPIRED,
    RIEC_INTAKE,
    Study,
    officer,
    system,
)


def raw_bytes(database: Database) -> bytes:
    """Return what an attacker with the database files would see."""
    with database.engine.connect() as conn:
        if database.is_sqlite:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
            path = Path(database.engine.url.database or "")
            return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
        conn.exec_driver_sql("CHECKPOINT")
        files = conn.execute(
            text(
                "SELECT pg_relation_filepath(c.oid) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname IN ('public', 'pg_toast') AND c.relkind IN ('r', 't', 'i') "
                "AND pg_relation_size(c.oid) > 0"
            )
        ).scalars()
        return b"".join(
            bytes(conn.execute(text("SELECT pg_read_binary_file(:f)"), {"f": f}).scalar_one())
            for f in list(files)
        )


def test_no_identifier_of_a_submitted_row_is_in_the_raw_database(study: Study) -> None:
    batches = []
    for who, instrument, row in (
        (system(POLITIE), "politie-incidenten", POLICE_ROW),
        (system(BANK), "bank-money-mule-signalen", BANK_ROW),
        (system(TELECOM), "telecom-simswap-meldingen", TELECOM_ROW),
        (RIEC_INTAKE, "vragenlijst-jongeren", ANSWERS),
    ):
        response = study.submit(who, instrument, [row])
        assert response.status_code == 201, response.text
        stored = response.json()
        assert stored["created"] and stored["rows"] == 1 and stored["invalid_identifiers"] == {}
        # one allow rule per research basis (the provider's own): avg-89, wpg-22, avg-6-1-a
        assert stored["rule_id"].startswith("onderzoeksrijen-aanleveren")
        batches.append(stored["batch_id"])
    study.withdraw("R-999999")

    raw = raw_bytes(study.gw.database)
    assert all(b.encode() in raw for b in batches)  # the scan sees what is in the clear
    secrets = {
        BSN, "1234.56.782", NAME, NAME.upper(), NAME.lower(), "wiebren zwartbroek hiemstra",
        "Zwartbroek", IBAN, IBAN.replace(" ", ""), PHONE, "+31648271936", "0648271936",
        "R-000417", "R-999999",
    }  # fmt: skip
    for secret in secrets:
        assert secret.encode() not in raw, secret
        assert secret.encode("utf-16-le") not in raw, secret


def test_two_providers_rows_about_one_person_get_one_pseudonym(study: Study) -> None:
    for who, instrument, row in (
        (system(POLITIE), "politie-incidenten", POLICE_ROW),
        (system(BANK), "bank-money-mule-signalen", BANK_ROW),
        (system(TELECOM), "telecom-simswap-meldingen", TELECOM_ROW),
    ):
        assert study.submit(who, instrument, [row]).status_code == 201
    ring = KeyRing.open(study.gw.settings, clock=study.gw.clock)
    with study.gw.database.read() as session:
        stored = session.exec(select(ResearchRow)).all()
    payloads = {
        row.provider_id: json.loads(
            ring.open_field(
                rows_key_id(AGREEMENT),
                f"{row.batch_id}.{row.seq}",
                "row",
                base64.b64decode(row.payload_sealed),
            )
        )
        for row in stored
    }
    pseudonymise = study.pseudonymiser()
    person = pseudonymise("bsn", BSN)
    person_nb = pseudonymise("name_birthdate", "wiebren zwartbroek hiemstra|2008-04-02")
    assert payloads[POLITIE]["bsn:bsn"] == payloads[BANK]["bsn:bsn"] == person
    for provider in (POLITIE, BANK, TELECOM):
        assert payloads[provider]["name+birth_date:name_birthdate"] == person_nb
        assert "name" not in payloads[provider] and "bsn" not in payloads[provider]
    assert payloads[BANK]["iban:iban"] == pseudonymise("iban", IBAN.replace(" ", ""))
    assert payloads[TELECOM]["phone:phone"] == pseudonymise("phone", "+31648271936")
    assert (
        payloads[POLITIE]["postcode"] == "9203 AB" and payloads[POLITIE]["offence"] == "witwassen"
    )


def test_rows_are_checked_against_their_instrument_naming_fields_not_values(study: Study) -> None:
    secret = "Jantje Geheim 0612345678"
    response = study.submit(
        system(POLITIE), "politie-incidenten", [POLICE_ROW, {**POLICE_ROW, "notes": secret}]
    )
    problem = assert_problem(response, 422, "rows-refused")
    assert "rows[1]: 1 field(s) not delivered through instrument" in problem["detail"]
    assert "notes" not in problem["detail"]  # an unknown name is input: never echoed
    assert secret not in response.text

    bad = {**POLICE_ROW, "birth_date": "14-03-2008", "offence": "x" * 101, "role": 7}
    problem = assert_problem(
        study.submit(system(POLITIE), "politie-incidenten", [bad]), 422, "rows-refused"
    )
    assert "birth_date" in problem["detail"] and "offence" in problem["detail"]
    assert "'role'" in problem["detail"] and "14-03-2008" not in response.text

    # a mistyped BSN is not stored and is counted; the row is kept
    typo = {**POLICE_ROW, "bsn": "123456783"}
    stored = study.submit(system(POLITIE), "politie-incidenten", [typo, POLICE_ROW]).json()
    assert stored["rows"] == 2 and stored["invalid_identifiers"] == {"bsn": 1}

    # unknown instrument, another provider's instrument, a partner outside the agreement
    response = study.submit(system(POLITIE), "geen-instrument", [POLICE_ROW])
    assert_problem(response, 422, "invalid-input")
    response = study.submit(system(BANK), "politie-incidenten", [POLICE_ROW])
    assert_problem(response, 403, "not-a-provider")
    response = study.submit("belastingdienst.partner-system", "politie-incidenten", [POLICE_ROW])
    assert_problem(response, 403, "not-a-provider")
    # the policy decides the role: a privacy officer does not deliver rows
    response = study.submit(officer(POLITIE), "politie-incidenten", [POLICE_ROW])
    assert_problem(response, 403, "policy-denied")
    # nothing is collected under an agreement whose period ended
    response = study.submit(system(POLITIE), "politie-incidenten", [POLICE_ROW], agreement=EXPIRED)
    assert_problem(response, 409, "agreement-not-in-effect")
    with study.gw.database.read() as session:
        assert session.exec(select(func.count()).select_from(ResearchRow)).one() == 2


def test_questionnaire_rows_carry_the_respondents_consent(study: Study) -> None:
    def submit(*rows: dict[str, Any]) -> Any:
        return study.submit(RIEC_INTAKE, "vragenlijst-jongeren", list(rows))

    assert submit(ANSWERS).status_code == 201
    # under 16 without a parent's consent: refused
    response = submit({**ANSWERS, "respondent_id": "R-2", "parental_consent": False})
    assert "rows[0].parental_consent" in assert_problem(response, 422, "rows-refused")["detail"]
    response = submit({k: v for k, v in ANSWERS.items() if k != "parental_consent"})
    assert_problem(response, 422, "rows-refused")
    # 16 or older on the day of consent: the respondent's own consent is enough
    adult = {**ANSWERS, "respondent_id": "R-3", "birth_date": "2010-10-03"}
    assert submit({**adult, "parental_consent": None}).status_code == 201
    # another consent text, no consent date, a date in the future
    for change, field in (
        ({"consent_version": "jnn-toestemming-2025"}, "consent_version"),
        ({"consent_date": None}, "consent_date"),
        ({"consent_date": "2027-01-01"}, "consent_date"),
        ({"respondent_id": " "}, "respondent_id"),
    ):
        response = submit({**ANSWERS, **change})
        assert f"rows[0].{field}" in assert_problem(response, 422, "rows-refused")["detail"]
    # a withdrawn respondent's new rows are refused
    study.withdraw("R-000417")
    response = submit(ANSWERS)
    assert "withdrew" in assert_problem(response, 422, "invalid-input")["detail"]
    # withdrawals come from the questionnaire's intake partner only, in the body
    for who in (system(POLITIE), "nscr.researcher", "riec-noord-nederland.riec-analyst"):
        response = study.call(
            who,
            "POST",
            f"/v1/research/agreements/{AGREEMENT}/withdrawals",
            json={"respondent_id": "R-3"},
        )
        assert_problem(response, 403, "not-a-provider")


def test_retries_store_nothing_new(study: Study) -> None:
    first = study.submit(system(POLITIE), "politie-incidenten", [POLICE_ROW], key="retry-key-0001")
    assert first.status_code == 201
    again = study.submit(system(POLITIE), "politie-incidenten", [POLICE_ROW], key="retry-key-0001")
    assert again.status_code == 200
    assert again.json() == {**first.json(), "created": False}
    other = study.submit(
        system(POLITIE),
        "politie-incidenten",
        [dict(reversed(POLICE_ROW.items()))],
        key="retry-key-0001",
    )
    assert other.status_code == 200  # the same content in another key order
    changed = {**POLICE_ROW, "offence": "heling"}
    response = study.submit(system(POLITIE), "politie-incidenten", [changed], key="retry-key-0001")
    assert_problem(response, 409, "idempotency-key-reused")
    response = study.submit(system(POLITIE), "politie-incidenten", [POLICE_ROW], key="short")
    assert_problem(response, 422, "invalid-input")
    with study.gw.database.read() as session:
        assert session.exec(select(func.count()).select_from(ResearchBatch)).one() == 1
        assert session.exec(select(func.count()).select_from(ResearchRow)).one() == 1


def test_batches_and_bodies_are_limited(study: Study) -> None:
    many = [POLICE_ROW] * 5_001
    response = study.submit(system(POLITIE), "politie-incidenten", many)
    assert response.status_code in (413, 422)
    huge = [{**POLICE_ROW, "offence": "x" * 90}] * 4_000  # over the 1 MiB body limit
    assert_problem(
        study.submit(system(POLITIE), "politie-incidenten", huge), 413, "payload-too-large"
    )
    response = study.submit(system(POLITIE), "politie-incidenten", [])
    assert_problem(response, 422, "validation-failed")
