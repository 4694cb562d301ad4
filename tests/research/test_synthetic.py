"""The synthetic data: valid identifiers, realistic places and ages, people at several providers."""

from __future__ import annotations

import contextlib
import types
from collections import defaultdict
from datetime import date
from typing import Any

from gateway import identifiers
from gateway.errors import InvalidInputError
from gateway.research import synthetic


def test_same_seed_same_rows_and_it_streams() -> None:
    stream = synthetic.rows(500, seed=7)
    assert isinstance(stream, types.GeneratorType)
    first = list(stream)
    assert len(first) == 500
    assert first == list(synthetic.rows(500, seed=7))
    assert first != list(synthetic.rows(500, seed=8))


def test_bsns_are_unique_and_pass_the_eleven_test() -> None:
    made = [synthetic.bsn_for(i) for i in range(50_000)]
    assert len(set(made)) == len(made)
    assert [identifiers.bsn(b) for b in made] == made


def test_ibans_have_valid_check_digits() -> None:
    for account in (0, 1, 4_171_643_00, 9_999_999_999):
        iban = synthetic.iban_for("VBNK", account)
        assert identifiers.iban(iban) == iban and iban.startswith("NL")


def _normalised(rows: list[dict[str, Any]], field: str, kind: str) -> tuple[int, int]:
    good = bad = 0
    for row in rows:
        if row.get(field) is None:
            continue
        try:
            identifiers.normalise(kind, row[field])
            good += 1
        except InvalidInputError:
            bad += 1
    return good, bad


def test_identifiers_are_valid_in_every_spelling(rows: list[dict[str, Any]]) -> None:
    for field, kind in (("iban", "iban"), ("phone", "phone"), ("postcode", "postcode")):
        good, bad = _normalised(rows, field, kind)
        assert good > 100 and bad == 0, field
    good, bad = _normalised(rows, "bsn", "bsn")
    assert good > 1000 and 0 < bad < good * 0.01  # a few mistyped BSNs, as in real registers
    spellings = {row["bsn"] for row in rows if row.get("bsn") and "." in row["bsn"]}
    assert spellings  # some providers write 1234.56.782
    phones = {row["phone"][:3] for row in rows if row.get("phone")}
    assert {"06-", "+31"} <= phones | {p[:3] for p in phones}


def test_places_and_ages_fit_the_study(rows: list[dict[str, Any]]) -> None:
    codes = [int(row["postcode"][:4]) for row in rows if row.get("postcode")]
    assert all(8400 <= code <= 9999 for code in codes)
    study = [c for c in codes if 8911 <= c <= 8941 or 9711 <= c <= 9747 or 9200 <= c <= 9209]
    assert len(study) > 0.75 * len(codes)
    assert any(9200 <= c <= 9209 for c in codes)  # Smallingerland
    years = [date.fromisoformat(row["birth_date"]).year for row in rows]
    young = [y for y in years if 2005 <= y <= 2011]
    assert len(young) > 0.6 * len(years) and min(years) < 2000


def test_one_person_appears_at_several_providers(rows: list[dict[str, Any]]) -> None:
    providers: dict[str, set[str]] = defaultdict(set)
    bsns: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        key = identifiers.name_birthdate(row["name"], row["birth_date"])
        providers[key].add(row["provider"])
        if row.get("bsn"):
            with contextlib.suppress(InvalidInputError):
                bsns[key].add(identifiers.bsn(row["bsn"]))
    spread = [p for p in providers.values() if len(p) >= 3]
    assert len(spread) > len(providers) * 0.1
    # the same BSN at every provider; only rare namesakes born on the same day share a key
    assert sum(len(found) > 1 for found in bsns.values()) <= len(bsns) * 0.01
    seen = set().union(*providers.values())
    assert {
        "politie-noord-nederland",
        "om-noord-nederland",
        "voorbeeldbank",
        "voorbeeldtelecom",
        "riec-noord-nederland",
        "gemeente-smallingerland",
    } <= seen


def test_questionnaires_carry_consent_some_minor_some_withdrawn(rows: list[dict[str, Any]]) -> None:
    answers = [row for row in rows if row["category"] == "questionnaire"]
    assert answers
    assert all(r["consent_version"] == synthetic.QUESTIONNAIRE_CONSENT_VERSION for r in answers)
    minors = [r for r in answers if r["parental_consent"] is not None]
    assert any(r["parental_consent"] for r in minors)
    assert any(r["parental_consent"] is False for r in minors)
    assert any(r["consent_withdrawn"] for r in answers)
    assert all(r["name"].split()[0] in r["q_toelichting"] for r in answers)  # free text names


def test_events_carry_offences_alerts_and_sim_swaps(rows: list[dict[str, Any]]) -> None:
    assert {r["offence"] for r in rows if r.get("offence")} <= set(synthetic.OFFENCES)
    assert {r["alert"] for r in rows if r.get("alert")} == set(synthetic.ALERTS)
    assert "sim-swap" in {r["report"] for r in rows if r.get("report")}
    assert any(r["provider"] == "belastingdienst" for r in rows)  # out of scope on purpose
