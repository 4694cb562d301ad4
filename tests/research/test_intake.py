"""Intake as pure functions: what a row may carry, what is kept, and pseudonyms on intake.

A release from rows pseudonymised on intake equals the release that pseudonymises the
same rows itself: the pass-through mode changes where pseudonyms are computed, not what
the researchers receive.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from gateway.policy.schema import CategorySchema
from gateway.policy.vocabulary import load_vocabulary
from gateway.research.agreements import Agreement
from gateway.research.errors import RowsRefusedError
from gateway.research.extract import ExtractRequest, pseudonym_field
from gateway.research.intake import (
    QUESTIONNAIRE_CONSENT,
    IntakePlan,
    check_rows,
    pseudonymise_rows,
    respondent_key,
)
from gateway.research.release_builder import make_release
from tests.conftest import POLICIES
from tests.research.conftest import RELEASE_AT, Releaser, csv_rows

TODAY = date(2026, 11, 23)


@pytest.fixture(scope="module")
def schemas() -> dict[str, CategorySchema]:
    """The category schemas of the shipped vocabulary."""
    vocabulary = load_vocabulary(POLICIES)
    return {name: vocabulary.schema(name) for name in vocabulary.schemas}


def plan_for(agreement: Agreement, instrument_id: str, schemas: dict[str, Any]) -> IntakePlan:
    instrument = next(i for i in agreement.instruments if i.id == instrument_id)
    return IntakePlan.build(agreement, instrument, schemas[instrument.category])


def test_plans_keep_no_identifier_and_no_free_text(
    agreement: Agreement, schemas: dict[str, Any]
) -> None:
    police = plan_for(agreement, "politie-incidenten", schemas)
    assert police.stored == ("birth_date", "postcode", "occurred_at", "offence", "role")
    assert [(s.field, s.sources) for s in police.pseudonyms] == [
        ("bsn:bsn", ("bsn",)),
        ("name+birth_date:name_birthdate", ("name", "birth_date")),
    ]
    bank = plan_for(agreement, "bank-money-mule-signalen", schemas)
    assert {s.field for s in bank.pseudonyms} == {
        "bsn:bsn",
        "name+birth_date:name_birthdate",
        "iban:iban",
    }
    survey = plan_for(agreement, "vragenlijst-jongeren", schemas)
    assert survey.questionnaire and "respondent_id" not in survey.stored
    assert set(QUESTIONNAIRE_CONSENT) <= set(survey.stored) <= survey.accepted
    assert "name" not in survey.stored and "q_toelichting" not in survey.accepted
    for plan in (police, bank, survey):
        fields = {pseudonym_field(c) for c in agreement.released_columns if c.transform.id_type}
        assert {s.field for s in plan.pseudonyms} <= fields


def test_pseudonyms_on_intake(agreement: Agreement, schemas: dict[str, Any], ring: Any) -> None:
    pseudonymise = ring.pseudonymiser(agreement.project)
    plan = plan_for(agreement, "bank-money-mule-signalen", schemas)
    rows = [
        {
            "bsn": "1234.56.782",
            "name": "Jan de Vries",
            "birth_date": "2008-04-02",
            "alert": "money-mule-vermoeden",
        },
        {"bsn": "123456782", "name": "JAN DE VRIES", "birth_date": "2008-04-02"},
        {"bsn": "123456783", "iban": "NL91ABNA0417164300", "name": "", "birth_date": "2008-04-02"},
        {"bsn": "123456782", "iban": "NL00ABNA0417164300"},
    ]
    prepared = pseudonymise_rows(plan, check_rows(plan, rows, TODAY), pseudonymise)
    first, second, third, fourth = prepared.payloads
    assert first["bsn:bsn"] == second["bsn:bsn"] == pseudonymise("bsn", "123456782")
    key = "name+birth_date:name_birthdate"
    assert first[key] == second[key] == pseudonymise("name_birthdate", "jan de vries|2008-04-02")
    assert first == {
        "birth_date": "2008-04-02",
        "alert": "money-mule-vermoeden",
        "bsn:bsn": first["bsn:bsn"],
        key: first[key],
    }
    assert "bsn:bsn" not in third and key not in third  # a mistyped BSN, no name
    assert third["iban:iban"] == pseudonymise("iban", "NL91ABNA0417164300")
    assert fourth == {"bsn:bsn": first["bsn:bsn"]}  # an IBAN failing mod-97
    assert prepared.invalid_identifiers == {"bsn": 1, "iban": 1}
    assert prepared.respondent_keys == [None] * 4


def test_questionnaire_consent_and_respondents(
    agreement: Agreement, schemas: dict[str, Any], ring: Any
) -> None:
    pseudonymise = ring.pseudonymiser(agreement.project)
    plan = plan_for(agreement, "vragenlijst-jongeren", schemas)
    base = {
        "respondent_id": " R-1 ",
        "name": "Fenna Bosma",
        "birth_date": "2011-06-01",
        "consent_version": "jnn-toestemming-2026-v1",
        "consent_date": "2026-10-03",
        "parental_consent": "ja",
    }
    checked = check_rows(plan, [base], TODAY)
    assert checked[0]["parental_consent"] is True
    prepared = pseudonymise_rows(plan, checked, pseudonymise)
    assert prepared.respondent_keys == [respondent_key(pseudonymise, "R-1")]
    assert prepared.payloads[0]["parental_consent"] is True
    with pytest.raises(RowsRefusedError, match=r"rows\[0\]\.parental_consent"):
        check_rows(plan, [{**base, "parental_consent": "nee"}], TODAY)
    with pytest.raises(RowsRefusedError, match="must be true or false"):
        check_rows(plan, [{**base, "parental_consent": "misschien"}], TODAY)
    with pytest.raises(RowsRefusedError, match="a batch needs at least one row"):
        check_rows(plan, [], TODAY)


def test_a_release_from_intake_equals_the_release_that_pseudonymises_itself(
    releaser: Releaser, rows: list[dict[str, Any]], agreement: Agreement, schemas: dict[str, Any]
) -> None:
    # what providers would submit: rows in the agreement, with the consent they need
    sent = []
    for row in rows:
        instrument = agreement.instrument_for(row["provider"], row["category"])
        if instrument is None or row.get("consent_withdrawn"):
            continue
        if instrument.consent_text_version is not None:
            born, day = row["birth_date"], row["consent_date"]
            if int(day[:4]) - int(born[:4]) - (day[5:] < born[5:]) < 16 and not row.get(
                "parental_consent"
            ):
                continue
        sent.append((instrument.id, row))
    direct = releaser.open(releaser.release([r for _, r in sent], "direct"))

    pseudonymise = releaser.ring.pseudonymiser(agreement.project)
    stored = []
    for instrument_id, row in sent:
        plan = plan_for(agreement, instrument_id, schemas)
        submitted = {k: v for k, v in row.items() if k in plan.accepted and v is not None}
        item = pseudonymise_rows(plan, check_rows(plan, [submitted], TODAY), pseudonymise)
        stored.append(
            {
                **item.payloads[0],
                "provider": row["provider"],
                "category": row["category"],
                "respondent_id": item.respondent_keys[0],
            }
        )
    request = ExtractRequest(
        agreement,
        "on-intake",
        RELEASE_AT,
        "policy-test-1",
        consenting_providers=agreement.provider_ids,
        pseudonymised=True,
    )
    release = make_release(
        request,
        iter(stored),
        pseudonymiser=pseudonymise,
        signer=releaser.signer,
        out_dir=releaser.out,
    )
    on_intake = releaser.open(release)
    assert _sorted(csv_rows(on_intake)) == _sorted(csv_rows(direct))  # rows are shuffled
    assert on_intake.release.manifest["generalisation"] == direct.release.manifest["generalisation"]
    assert on_intake.release.manifest["pseudonymisation"]["computed"] == "on-intake"
    assert direct.release.manifest["pseudonymisation"]["computed"] == "at-release"


def _sorted(rows: list[dict[str, str]]) -> list[list[tuple[str, str]]]:
    return sorted(sorted(row.items()) for row in rows)


def test_a_row_without_any_identifier_refuses_the_batch(
    agreement: Agreement, schemas: dict[str, Any], ring: Any
) -> None:
    # counted as nobody (or as a person each), such rows let one person pass for a class
    plan = plan_for(agreement, "bank-money-mule-signalen", schemas)
    rows = [
        {"bsn": "123456782", "alert": "rekening-geblokkeerd"},
        {"iban": "NL00ABNA0417164300", "alert": "rekening-geblokkeerd"},  # fails mod-97
        {"birth_date": "2008-04-02", "alert": "rekening-geblokkeerd"},  # no identifier at all
    ]
    checked = check_rows(plan, rows, TODAY)
    with pytest.raises(RowsRefusedError) as info:
        pseudonymise_rows(plan, checked, ring.pseudonymiser(agreement.project))
    assert info.value.extensions["problems"] == [
        "rows[1]: no valid identifier links this row to a person (bsn, iban, name+birth_date)",
        "rows[2]: no valid identifier links this row to a person (bsn, iban, name+birth_date)",
    ]


@pytest.mark.parametrize(
    ("instrument_id", "row", "field"),
    [
        ("politie-incidenten", {"bsn": "123456782", "offence": "ontvoering van Jan"}, "offence"),
        ("politie-incidenten", {"bsn": "123456782", "role": "Jan zei dat hij"}, "role"),
        ("bank-money-mule-signalen", {"bsn": "123456782", "alert": "zie notitie"}, "alert"),
        (
            "gemeenten-jeugdregistraties",
            {"bsn": "123456782", "registration": "jeugdhulp bij Jan"},
            "registration",
        ),
    ],
)
def test_kept_values_outside_the_code_list_are_refused_on_intake(
    agreement: Agreement,
    schemas: dict[str, Any],
    instrument_id: str,
    row: dict[str, Any],
    field: str,
) -> None:
    plan = plan_for(agreement, instrument_id, schemas)
    with pytest.raises(RowsRefusedError) as info:
        check_rows(plan, [row], TODAY)
    assert info.value.extensions["problems"] == [
        f"rows[0].{field}: not one of the values the agreement lists for it"
    ]
    assert "Jan" not in info.value.detail  # the value is never echoed
