"""Obligations as pure functions, tested with tables: records in, records out."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.errors import InvalidInputError
from gateway.obligations import (
    AggregateOnly,
    DropFields,
    GeneraliseBirthDate,
    GeneralisePostcode,
    GeneraliseTimestamp,
    Obligation,
    ObligationError,
    Pseudonymise,
    RemoveFreeText,
    SummaryOnly,
    apply,
    apply_many,
    build,
    from_json,
)
from gateway.policy.schema import CategorySchema, parse_field_type, validate_record

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
SCHEMA = CategorySchema(
    "money-mule-alert",
    {
        "iban": parse_field_type("identifier:iban"),
        "holder_name": parse_field_type("identifier:name"),
        "birth_date": parse_field_type("birth_date"),
        "postcode": parse_field_type("postcode"),
        "alerted_at": parse_field_type("timestamp"),
        "alert_code": parse_field_type("code"),
        "remarks": parse_field_type("free-text"),
    },
)
RECORD: dict[str, Any] = {
    "iban": "NL91ABNA0417164300",
    "holder_name": "Jan Jansen",
    "birth_date": "2008-03-14",
    "postcode": "9203 AB",
    "alerted_at": "2026-11-23T08:15:00+00:00",
    "alert_code": "MULE-1",
    "remarks": "vriend van de garagehouder",
}


def fake_pseudonym(id_type: str, value: str) -> str:
    """A stand-in for the key ring's keyed pseudonymiser: visibly not the value."""
    return f"p:{id_type}:{len(value)}"


CASES: list[tuple[str, list[Obligation], dict[str, Any]]] = [
    ("nothing", [], RECORD),
    (
        "drop fields",
        [DropFields(("holder_name", "remarks"))],
        {k: v for k, v in RECORD.items() if k not in ("holder_name", "remarks")},
    ),
    (
        "pseudonymise all identifiers",
        [Pseudonymise()],
        {**RECORD, "iban": "p:iban:18", "holder_name": "p:name:10"},
    ),
    ("pseudonymise only IBANs", [Pseudonymise(("iban",))], {**RECORD, "iban": "p:iban:18"}),
    ("birth year", [GeneraliseBirthDate("year")], {**RECORD, "birth_date": "2008"}),
    ("age band of 5", [GeneraliseBirthDate("age-band", 5)], {**RECORD, "birth_date": "15-19"}),
    ("age band of 10", [GeneraliseBirthDate("age-band", 10)], {**RECORD, "birth_date": "10-19"}),
    ("PC4", [GeneralisePostcode("pc4")], {**RECORD, "postcode": "9203"}),
    ("ISO week", [GeneraliseTimestamp()], {**RECORD, "alerted_at": "2026-W48"}),
    (
        "remove free text",
        [RemoveFreeText()],
        {k: v for k, v in RECORD.items() if k != "remarks"},
    ),
    (
        "the research extract",
        [
            Pseudonymise(),
            GeneraliseBirthDate("year"),
            GeneralisePostcode("pc4"),
            GeneraliseTimestamp(),
            RemoveFreeText(),
        ],
        {
            "iban": "p:iban:18",
            "holder_name": "p:name:10",
            "birth_date": "2008",
            "postcode": "9203",
            "alerted_at": "2026-W48",
            "alert_code": "MULE-1",
        },
    ),
]


@pytest.mark.parametrize(("name", "obligations", "expected"), CASES, ids=[c[0] for c in CASES])
def test_apply_table(name: str, obligations: list[Obligation], expected: dict[str, Any]) -> None:
    before = dict(RECORD)
    assert apply(obligations, RECORD, SCHEMA, fake_pseudonym, NOW) == expected
    assert before == RECORD  # the input is never changed


def test_summary_only_returns_the_providers_summary_and_nothing_else() -> None:
    out = apply([SummaryOnly(), Pseudonymise()], RECORD, SCHEMA, fake_pseudonym, NOW, summary="s")
    assert out == {"summary": "s"}
    with pytest.raises(ObligationError, match="summary"):
        apply([SummaryOnly()], RECORD, SCHEMA, fake_pseudonym, NOW)


def test_municipality_needs_a_lookup() -> None:
    with pytest.raises(ObligationError, match="lookup"):
        apply([GeneralisePostcode("municipality")], RECORD, SCHEMA, fake_pseudonym, NOW)
    out = apply(
        [GeneralisePostcode("municipality")],
        RECORD,
        SCHEMA,
        fake_pseudonym,
        NOW,
        municipality_of={"9203": "Smallingerland"}.get,
    )
    assert out["postcode"] == "Smallingerland"


def test_a_field_outside_the_schema_is_refused() -> None:
    with pytest.raises(ObligationError, match="outside category"):
        apply([], {**RECORD, "bsn": "123456782"}, SCHEMA, fake_pseudonym, NOW)


def test_aggregate_only_counts_and_suppresses_small_groups() -> None:
    rows = [
        {**RECORD, "postcode": pc, "alert_code": code}
        for pc, code in [("9203 AB", "A")] * 5 + [("9203 XY", "A")] * 2 + [("9711 AA", "B")] * 3
    ]
    with pytest.raises(ObligationError, match="set of records"):
        apply([AggregateOnly(5)], RECORD, SCHEMA, fake_pseudonym, NOW)
    out = apply_many(
        [GeneralisePostcode("pc4"), AggregateOnly(5)],
        rows,
        SCHEMA,
        fake_pseudonym,
        NOW,
        group_by=("postcode", "alert_code"),
    )
    assert out == [{"postcode": "9203", "alert_code": "A", "count": 7}]
    with pytest.raises(ObligationError, match="identifiers"):
        apply_many([AggregateOnly(2)], rows, SCHEMA, fake_pseudonym, NOW, group_by=("iban",))


@pytest.mark.parametrize(
    "obligation",
    [
        DropFields(("a",)),
        Pseudonymise(("bsn",)),
        GeneraliseBirthDate("age-band", 10),
        GeneralisePostcode("municipality"),
        GeneraliseTimestamp(),
        RemoveFreeText(),
        SummaryOnly(),
        AggregateOnly(10),
    ],
)
def test_json_round_trip(obligation: Obligation) -> None:
    assert from_json(obligation.to_json()) == obligation


@pytest.mark.parametrize(
    ("kind", "params", "message"),
    [
        ("shred", {}, "unknown obligation"),
        ("drop-fields", {}, "at least one field"),
        ("generalise-birth-date", {"to": "month"}, "year or age-band"),
        ("generalise-postcode", {"to": "pc5"}, "pc4 or municipality"),
        ("aggregate-only", {"k": 1}, "at least 2"),
        ("summary-only", {"k": 3}, "no parameter"),
    ],
)
def test_bad_obligations_are_refused(kind: str, params: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        build(kind, params)


def test_validate_record_names_fields_never_values() -> None:
    problems = validate_record(
        SCHEMA, {"iban": 12, "postcode": "not a postcode", "extra": "Jan", "alerted_at": "x"}
    )
    assert len(problems) == 4
    assert not any("Jan" in p or "not a postcode" in p for p in problems)
    assert validate_record(SCHEMA, RECORD) == []
