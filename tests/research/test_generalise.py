"""Generalisation levels (vectorised) against a table of values, and the stored state."""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pytest

from gateway.research.errors import GeneralisationStateError
from gateway.research.generalise import (
    DEFAULT_AGE_BANDS,
    GeneralisationState,
    age_band_labels,
    generalise,
    municipality_of_pc4,
    province_of_pc4,
    strings,
)
from gateway.research.transforms import Generalisable

STATE = GeneralisationState("a", "p", {}, reference_date=date(2026, 11, 23))
BIRTH = Generalisable.BIRTH_DATE
POSTCODE = Generalisable.POSTCODE
TIME = Generalisable.TIMESTAMP

CASES: list[tuple[Generalisable, str, str | None, str | None]] = [
    (BIRTH, "year", "2008-03-14", "2008"),
    (BIRTH, "year", " 2008-03-14 ", "2008"),
    (BIRTH, "year", "2008-02-30", None),
    (BIRTH, "year", "2008-13-01", None),
    (BIRTH, "year", "14-03-2008", None),
    (BIRTH, "year", "2008-3-14", None),
    (BIRTH, "year", None, None),
    (BIRTH, "age_band", "2010-11-23", "16-17"),  # 16 on the reference day
    (BIRTH, "age_band", "2010-11-24", "12-15"),  # 16 the day after
    (BIRTH, "age_band", "2008-01-01", "18-22"),
    (BIRTH, "age_band", "1990-06-01", "30-39"),
    (BIRTH, "age_band", "1950-06-01", "65+"),
    (BIRTH, "age_band", "2020-06-01", "0-11"),
    (BIRTH, "age_band", "2027-01-01", None),  # born after the reference date
    (POSTCODE, "pc4", "9203 AB", "9203"),
    (POSTCODE, "pc4", "9203ab", "9203"),
    (POSTCODE, "pc4", "9203", "9203"),
    (POSTCODE, "pc4", "0203AB", None),
    (POSTCODE, "pc4", "9203SS", None),
    (POSTCODE, "pc4", "92031", None),
    (POSTCODE, "municipality", "9203 AB", "Smallingerland"),
    (POSTCODE, "municipality", "8911BZ", "Leeuwarden"),
    (POSTCODE, "municipality", "9712 CP", "Groningen"),
    (POSTCODE, "municipality", "8501AA", "overig Friesland"),
    (POSTCODE, "municipality", "9501AA", "overig Groningen"),
    (POSTCODE, "municipality", "1012AB", "overig Nederland"),
    (POSTCODE, "municipality", "XXXX", None),
    (POSTCODE, "province", "9203 AB", "Friesland"),
    (POSTCODE, "province", "9401AA", "Drenthe"),
    (POSTCODE, "province", "9712 CP", "Groningen"),
    (POSTCODE, "province", "1012AB", "overig Nederland"),
    (POSTCODE, "province", "XXXX", None),
    (TIME, "week", "2026-02-14T21:05:00+01:00", "2026-W07"),
    (TIME, "week", "2024-12-30T08:00:00+01:00", "2025-W01"),  # ISO year differs
    (TIME, "week", "2027-01-01", "2026-W53"),
    (TIME, "week", "2026-02-30T10:00:00", None),
    (TIME, "month", "2026-02-14T21:05:00+01:00", "2026-02"),
    (TIME, "quarter", "2026-02-14T21:05:00+01:00", "2026-Q1"),
    (TIME, "quarter", "2025-12-31", "2025-Q4"),
    (TIME, "year", "2026-02-14T21:05:00+01:00", "2026"),
    (TIME, "year", "2026-02-30", None),
]


@pytest.mark.parametrize(("what", "level", "value", "expected"), CASES)
def test_levels(what: Generalisable, level: str, value: str | None, expected: str | None) -> None:
    values = pa.array(["2000-01-01", value, None], pa.string())
    if what is POSTCODE:
        values = pa.array(["9203AB", value, None], pa.string())
    (out,) = generalise(what, [level], values, STATE)
    assert out.to_pylist()[1] == expected
    assert out.to_pylist()[2] is None


def test_several_levels_at_once() -> None:
    values = pa.array(["9203 AB", "8911BZ", "9203ab"], pa.string())
    pc4, municipality = generalise(POSTCODE, ["pc4", "municipality"], values, STATE)
    assert pc4.to_pylist() == ["9203", "8911", "9203"]
    assert municipality.to_pylist() == ["Smallingerland", "Leeuwarden", "Smallingerland"]


def test_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="no level 'decade'"):
        generalise(BIRTH, ["decade"], pa.array(["2008-01-01"]), STATE)


def test_age_band_labels_and_municipality_table() -> None:
    assert age_band_labels(DEFAULT_AGE_BANDS)[:3] == ("0-11", "12-15", "16-17")
    assert age_band_labels(DEFAULT_AGE_BANDS)[-1] == "65+"
    assert municipality_of_pc4(9209) == "Smallingerland"
    assert municipality_of_pc4(9210) == "overig Friesland"


def test_every_municipality_lies_in_one_province() -> None:
    # a level must be coarser than the one before it for every value, or a coarser node
    # of the lattice could split a class the finer one kept together
    province_of: dict[str, set[str]] = {}
    for code in range(1000, 10000):
        province_of.setdefault(municipality_of_pc4(code), set()).add(province_of_pc4(code))
    assert all(len(p) == 1 for p in province_of.values()), province_of
    assert province_of["Assen"] == {"Drenthe"} and province_of["Leeuwarden"] == {"Friesland"}


def test_strings_turns_any_values_into_text() -> None:
    assert strings([date(2008, 3, 14), 12, None, "x"]).to_pylist() == [
        "2008-03-14",
        "12",
        None,
        "x",
    ]
    assert strings(pa.array([1, None])).to_pylist() == ["1", None]


def test_state_round_trips_as_canonical_json() -> None:
    state = GeneralisationState(
        "jeugd", "jeugd-project", {"born": "year", "area": "pc4"}, date(2026, 11, 23)
    )
    again = GeneralisationState.from_json(state.to_json())
    assert again == state and again.fingerprint == state.fingerprint
    assert state.to_json() == (
        '{"age_bands":[0,12,16,18,23,30,40,50,65],"agreement":"jeugd",'
        '"levels":{"area":"pc4","born":"year"},"project":"jeugd-project",'
        '"reference_date":"2026-11-23","version":1}'
    )


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"version": 2}',
        '{"version": 1, "agreement": "a", "project": "p", "levels": {"x": 1},'
        ' "reference_date": "2026-01-01", "age_bands": [0]}',
        '{"version": 1, "agreement": "a", "project": "p", "levels": {},'
        ' "reference_date": "2026-01-01", "age_bands": [5, 1]}',
        '{"version": 1, "agreement": "a", "project": "p", "levels": {},'
        ' "reference_date": "yesterday", "age_bands": [0]}',
    ],
)
def test_malformed_state_is_refused(text: str) -> None:
    with pytest.raises(GeneralisationStateError, match="malformed"):
        GeneralisationState.from_json(text)
