"""The column-wise folds of intake equal the definitions they replaced, value for value.

``_frozen_folded`` and ``_frozen_day`` are copies of what ``gateway.research.intake``
used before the folds went column-wise (one normaliser call per distinct value, birth
dates through an LRU cache); the faster folds must give the same canonical form, the
same "" for an identifier failing its check, the same None for a missing one, and
raise what the normaliser raises for a value of the wrong type.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Iterable
from datetime import date
from functools import lru_cache
from typing import Any

import pytest

from gateway.errors import InvalidInputError
from gateway.identifiers import birth_date, bsn, canonical_name, iban
from gateway.keys.pseudonyms import Pseudonymiser
from gateway.research import intake, intake_columns
from gateway.research.intake import respondent_key
from gateway.research.intake_columns import (
    Remembered,
    folded,
    folded_bsns,
    folded_ibans,
    names,
    pseudonyms_of,
)


def folded_days(values: Iterable[Any]) -> dict[Any, str | None]:
    """``folded(values, day)`` through what the process remembers of dates (``DAYS``)."""
    return intake_columns.DAYS.folded(values)


def folded_names(values: Iterable[Any]) -> dict[Any, str | None]:
    """``folded(values, canonical_name)`` through one batch's memory of names."""
    return names().folded(values)


def remembered_day(value: Any) -> str:
    """``birth_date(value).isoformat()`` through ``DAYS`` (text is remembered); raise as it
    raises: the remembered answer for one value, as intake reads a column of them."""
    if not isinstance(value, str):
        return birth_date(value).isoformat()
    canonical = intake_columns.DAYS.known.get(value)
    if canonical is None:
        canonical = intake_columns.DAYS.learn(value)
    if not canonical:
        birth_date(value)  # raises its own error
    return canonical


def _frozen_folded(values: list[Any], fold: Callable[[Any], str]) -> dict[Any, str | None]:
    out: dict[Any, str | None] = dict.fromkeys(values)
    for value in out:
        if value is None or value == "":
            continue
        try:
            out[value] = fold(value)
        except InvalidInputError:
            out[value] = ""
    return out


@lru_cache(maxsize=1 << 15)
def _frozen_canonical_day(value: str) -> str:
    return birth_date(value).isoformat()


def _frozen_day(value: Any) -> str:
    if isinstance(value, str):
        return _frozen_canonical_day(value)
    return birth_date(value).isoformat()


def _elevens(rng: random.Random) -> str:
    """A BSN that passes the 11-test."""
    while True:
        head = [rng.randrange(10) for _ in range(8)]
        last = sum(w * d for w, d in zip(range(9, 1, -1), head, strict=True)) % 11
        if last < 10 and (any(head) or last):
            return "".join(map(str, head)) + str(last)


def _bsn_spelling(rng: random.Random) -> Any:
    good = _elevens(rng)
    return rng.choice(
        [
            good,
            good,
            f"{good[:4]}.{good[4:6]}.{good[6:]}",
            f"{good[:3]} {good[3:6]} {good[6:]}",
            f"{good[:3]}-{good[3:6]}-{good[6:]}\t",
            good[1:] if good[0] == "0" else good,  # 8 digits: a leading 0 dropped
            good[:-1] + str((int(good[-1]) + rng.randrange(1, 10)) % 10),  # fails the test
            "".join(rng.choice(string.digits) for _ in range(9)),
            "".join(rng.choice(string.digits) for _ in range(rng.randrange(1, 12))),
            good[:4] + rng.choice("ab/_") + good[5:],
            "000000000",
            "00000000",
            "0000.00.000",
            "١٢٣٤٥٦٧٨٢",  # Arabic-Indic digits: isdigit() but not ASCII
            "\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff12",  # full-width digits
            "12345678²",
            " " + good,
            good + "0",
            "",
            None,
        ]
    )


def _iban_of(bank: str, account: str) -> str:
    digits = (bank + account + "NL00").translate(
        {ord(c): str(ord(c) - 55) for c in string.ascii_uppercase}
    )
    return f"NL{98 - int(digits) % 97:02d}{bank}{account}"


def _iban_spelling(rng: random.Random) -> Any:
    bank = "".join(rng.choice(string.ascii_uppercase) for _ in range(4))
    good = _iban_of(bank, "".join(rng.choice(string.digits) for _ in range(10)))
    spaced = " ".join(good[i : i + 4] for i in range(0, len(good), 4))
    broken = list(good)
    broken[rng.randrange(2, len(good))] = rng.choice(string.digits + string.ascii_uppercase)
    return rng.choice(
        [
            good,
            spaced,
            spaced.lower(),
            good.lower(),
            "".join(broken),  # usually fails mod-97 or the format
            good[:2] + f"{(int(good[2:4]) + 1) % 100:02d}" + good[4:],
            "DE" + good[2:],
            good[:-1],
            good + "0",
            good[:8] + "ß" + good[9:],
            "NL91ßß0417164300",  # "ß".upper() is "SS": 18 characters again
            "NL91ABNA0417164300",
            "NL91abna0417164300",
            "NL91ABNA041716430O",
            "NL91ABN40417164300",
            "NL9 1ABNA0417164300",
            "NL91\tABNA0417164300",
            "\uff2e\uff2c91ABNA0417164300",  # full-width N and L
            "NL91ÀBNA0417164300",
            "",
            None,
        ]
    )


def _birth_date_text(rng: random.Random) -> Any:
    year, month, day = rng.randint(1890, 2030), rng.randint(1, 13), rng.randint(1, 31)
    return rng.choice(
        [
            f"{year:04d}-{month:02d}-{day:02d}",
            f" {year:04d}-{month:02d}-{day:02d}\t",
            f"{year:04d}{month:02d}{day:02d}",
            f"{year:04d}-W{rng.randint(1, 53):02d}-{rng.randint(1, 7)}",
            f"{day:02d}-{month:02d}-{year:04d}",
            f"{year:04d}-{month}-{day}",
            date(rng.randint(1880, 2030), 1, 1),
            "",
            None,
        ]
    )


@pytest.mark.parametrize("seed", range(5))
def test_folded_bsns_equals_the_normaliser_per_value(seed: int) -> None:
    rng = random.Random(seed)
    values = [_bsn_spelling(rng) for _ in range(4000)]
    assert list(folded_bsns(values).items()) == list(_frozen_folded(values, bsn).items())


@pytest.mark.parametrize("seed", range(5))
def test_folded_ibans_equals_the_normaliser_per_value(seed: int) -> None:
    rng = random.Random(seed)
    values = [_iban_spelling(rng) for _ in range(4000)]
    expected = _frozen_folded(values, iban)
    assert list(folded_ibans(values).items()) == list(expected.items())
    assert any(expected.values()) and "" in expected.values()


@pytest.mark.parametrize("seed", range(3))
def test_folded_days_equals_the_remembered_definition(seed: int) -> None:
    rng = random.Random(seed)
    values = [_birth_date_text(rng) for _ in range(3000)]
    for _ in range(2):  # the second time from what was remembered
        assert list(folded_days(values).items()) == list(
            _frozen_folded(values, _frozen_day).items()
        )


def test_remembered_folds_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(intake_columns, "DAYS", Remembered(intake_columns.DAYS.fold, 10))
    values = [f"2001-01-{d:02d}" for d in range(1, 32)]
    assert folded_days(values) == _frozen_folded(values, _frozen_day)
    assert folded_days(values) == _frozen_folded(values, _frozen_day)
    assert len(intake_columns.DAYS.known) <= 10


@pytest.mark.parametrize("seed", range(3))
def test_folded_names_equals_the_normaliser_per_value(seed: int) -> None:
    rng = random.Random(seed)
    names: list[str | None] = ["Jan de Vries", "JAN DE VRIES", "José Ñúñez", "  ", "ß"]
    names += ["O'Brien-de  Vries"]
    names += ["Ærø", "ﬁona", "\u00a0Anna", "anna\t", "A", "123", "", None, "Zoë  van\u200bDijk"]
    letters = string.ascii_letters + " -'.éëïöüçñ"
    values = [
        rng.choice(names)
        if rng.random() < 0.3
        else "".join(rng.choice(letters) for _ in range(rng.randrange(1, 16)))
        for _ in range(3000)
    ]
    for _ in range(2):  # the second time from what was remembered
        assert list(folded_names(values).items()) == list(
            _frozen_folded(values, canonical_name).items()
        )


@pytest.mark.parametrize(
    ("fold", "definition"),
    [
        (folded_bsns, bsn),
        (folded_ibans, iban),
        (folded_days, _frozen_day),
        (folded_names, canonical_name),
        (lambda values: folded(values, bsn), bsn),
    ],
)
def test_a_value_of_the_wrong_type_fares_as_before(
    fold: Callable[[list[Any]], Any], definition: Callable[[Any], str]
) -> None:
    for value in (123456782, 12.5, b"123456782", b"2001-01-01", date(2001, 1, 1)):
        values = ["123456782", value]
        try:
            expected: Any = list(_frozen_folded(values, definition).items())
        except Exception as exc:  # whatever it raised, the fold must raise it too
            with pytest.raises(type(exc)):
                fold(values)
        else:
            assert list(fold(values).items()) == expected


def test_pseudonyms_of_equals_one_call_per_key() -> None:
    rng = random.Random(7)
    pseudonymise = Pseudonymiser("project-x", 3, rng.randbytes(32), lambda: None)
    keys = [
        rng.choice(["", "123456782", "jan|2008-03-14", f"k{rng.randrange(50)}"]) for _ in range(500)
    ]
    expected = {k: pseudonymise("bsn", k) for k in keys if k} | {"": ""}
    assert pseudonyms_of(pseudonymise, "bsn", keys) == expected
    assert pseudonymise.many("bsn", list(expected)[:-1]) == [
        pseudonymise("bsn", k) for k in list(expected)[:-1]
    ]

    class PerCall:
        key_id = "per-call"

        def __call__(self, id_type: str, value: str) -> str:
            return pseudonymise(id_type, value)

    assert pseudonyms_of(PerCall(), "bsn", keys) == expected


def test_respondent_keys_equal_one_key_per_row() -> None:
    """Distinct respondent ids are hashed once; the first malformed one raises as before."""
    rng = random.Random(11)
    pseudonymise = Pseudonymiser("project-x", 3, rng.randbytes(32), lambda: None)
    good = [f"R{rng.randrange(40):07d}" for _ in range(300)]
    good += [" R0000001", "R0000001\t", "x" * 64]
    assert intake._respondent_keys(pseudonymise, good) == [
        respondent_key(pseudonymise, value) for value in good
    ]
    for bad in (None, "", "   ", "x" * 65, "R\x00", 42, ["R1"]):
        values = [*good[:5], bad, *good[5:10], None]
        with pytest.raises(InvalidInputError) as before:
            [respondent_key(pseudonymise, value) for value in values]
        with pytest.raises(InvalidInputError) as after:
            intake._respondent_keys(pseudonymise, values)
        assert after.value.detail == before.value.detail


@pytest.mark.parametrize("seed", range(3))
def test_remembered_columns_equal_the_fold_of_each_row(seed: int) -> None:
    """``column`` gives each row what ``folded`` gives its value, first time or remembered."""
    rng = random.Random(seed)
    days = Remembered(intake_columns.DAYS.fold, 1 << 15)
    names = Remembered(canonical_name, 1 << 16)
    day_values = [_birth_date_text(rng) for _ in range(2000)]
    name_values = [
        rng.choice(["Jan de Vries", "JOSÉ ñúñez", "  ", "ß", "", None]) for _ in range(50)
    ]
    name_values += [f"Anna {rng.randrange(30)}x" for _ in range(50)]
    for _ in range(2):
        expected = _frozen_folded(day_values, _frozen_day)
        assert days.column(day_values) == [expected[v] for v in day_values]
        expected = _frozen_folded(name_values, canonical_name)
        assert names.column(name_values) == [expected[v] for v in name_values]
    plain = ["2001-01-01", "2001-01-02"] * 5
    assert days.column(plain) == [v for v in plain]  # all remembered: no pass in Python
    with pytest.raises(TypeError):
        days.column(["2001-01-01", ["2001-01-02"]])


def test_an_empty_birth_date_stays_missing_after_it_was_asked_for_alone() -> None:
    """Asking for an empty date's error must not make later batches count it as failing."""
    with pytest.raises(InvalidInputError):
        remembered_day("")
    assert folded_days(["", "2001-02-03"]) == {"": None, "2001-02-03": "2001-02-03"}
    assert intake_columns.DAYS.column(["", None]) == [None, None]
