"""Dutch identifiers: a table of valid spellings and their canonical form, and a table
of values that must fail with a message naming the type but never the value."""

from __future__ import annotations

from datetime import date

import pytest

from gateway import identifiers
from gateway.errors import InvalidIdentifierError, InvalidInputError
from gateway.identifiers import IdType, normalise

VALID: list[tuple[str, str, str]] = [
    ("bsn", "111222333", "111222333"),
    ("bsn", "123456782", "123456782"),
    ("bsn", "1234.56.782", "123456782"),
    ("bsn", " 1234 56 782 ", "123456782"),
    ("bsn", "12345672", "012345672"),
    ("kvk", "12345678", "12345678"),
    ("kvk", "1234 5678", "12345678"),
    ("kvk", "99000001", "99000001"),
    ("iban", "NL91ABNA0417164300", "NL91ABNA0417164300"),
    ("iban", "nl91 abna 0417 1643 00", "NL91ABNA0417164300"),
    ("iban", "NL20INGB0001234567", "NL20INGB0001234567"),
    ("phone", "06-12345678", "+31612345678"),
    ("phone", "0612345678", "+31612345678"),
    ("phone", "+31 6 1234 5678", "+31612345678"),
    ("phone", "0031612345678", "+31612345678"),
    ("phone", "+31 (0)6 12345678", "+31612345678"),
    ("phone", "+310612345678", "+31612345678"),
    ("phone", "050-3123456", "+31503123456"),
    ("phone", "(058) 233 44 55", "+31582334455"),
    ("postcode", "1234 AB", "1234AB"),
    ("postcode", "9203ab", "9203AB"),
    ("postcode", "8911 BZ", "8911BZ"),
    ("name_birthdate", "Jan de Vries|2008-03-14", "jan de vries|2008-03-14"),
    ("name_birthdate", "  JÁN  de  VRIES |2008-03-14", "jan de vries|2008-03-14"),
    ("name_birthdate", "Jan-Willem van 't Hof|1999-12-31", "jan willem van t hof|1999-12-31"),
    ("name_birthdate", "Sjoukje Dijkstra|2010-01-01", "sjoukje dijkstra|2010-01-01"),
    ("name_birthdate", "Ünal Öztürk|2007-07-07", "unal ozturk|2007-07-07"),
]

INVALID: list[tuple[str, str, str]] = [
    ("bsn", "123456789", "11-test"),
    ("bsn", "111222334", "11-test"),
    ("bsn", "000000000", "11-test"),
    ("bsn", "1234567", "9 digits"),
    ("bsn", "1234567890", "9 digits"),
    ("bsn", "12345678a", "9 digits"),
    ("bsn", "\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff12", "9 digits"),  # full width
    ("bsn", "", "9 digits"),
    ("kvk", "1234567", "8 digits"),
    ("kvk", "123456789", "8 digits"),
    ("kvk", "ABCDEFGH", "8 digits"),
    ("kvk", "00000000", "zeros"),
    ("iban", "NL92ABNA0417164300", "mod-97"),
    ("iban", "NL91ABNA041716430", "Dutch IBAN"),
    ("iban", "DE89370400440532013000", "Dutch IBAN"),
    ("iban", "NL91AB1A0417164300", "Dutch IBAN"),
    ("phone", "+32 470 12 34 56", "only Dutch"),
    ("phone", "0032470123456", "only Dutch"),
    ("phone", "12345678", "must start"),
    ("phone", "06-1234567", "9 digits"),
    ("phone", "06-123456789", "9 digits"),
    ("phone", "06-1234567x", "9 digits"),
    ("phone", "+31 0 12345678", "must not start with 0"),
    ("postcode", "0123AB", "4 digits"),
    ("postcode", "1234A", "4 digits"),
    ("postcode", "ABCD12", "4 digits"),
    ("postcode", "1234SA", "never used"),
    ("postcode", "1234 SS", "never used"),
    ("name_birthdate", "Jan de Vries", "name|YYYY-MM-DD"),
    ("name_birthdate", "|2008-03-14", "no letters"),
    ("name_birthdate", "1234|2008-03-14", "no letters"),
    ("name_birthdate", "Jan|2008-02-30", "real"),
    ("name_birthdate", "Jan|14-03-2008", "real"),
    ("name_birthdate", "Jan|14-3-2008", "YYYY-MM-DD"),
    ("name_birthdate", "Jan|1850-01-01", "before 1900"),
]


@pytest.mark.parametrize(("id_type", "value", "expected"), VALID)
def test_valid_values_normalise_to_one_spelling(id_type: str, value: str, expected: str) -> None:
    assert normalise(id_type, value) == expected
    assert normalise(id_type, expected) == expected  # idempotent


@pytest.mark.parametrize(("id_type", "value", "problem"), INVALID)
def test_invalid_values_name_the_type_and_never_the_value(
    id_type: str, value: str, problem: str
) -> None:
    with pytest.raises(InvalidIdentifierError) as info:
        normalise(id_type, value)
    message = str(info.value)
    assert message.startswith(f"{id_type}: ")
    assert problem in message
    assert info.value.id_type == IdType(id_type)
    assert info.value.code == "invalid-identifier"
    for part in value.replace("|", " ").split():
        if len(part) >= 4:
            assert part not in message


def test_unknown_type_is_an_input_error() -> None:
    with pytest.raises(InvalidInputError, match="unknown identifier type"):
        normalise("passport", "X")


def test_name_birthdate_accepts_date_objects() -> None:
    assert identifiers.name_birthdate("Fenna Bakker", date(2009, 5, 1)) == "fenna bakker|2009-05-01"


def test_non_text_value_is_refused() -> None:
    with pytest.raises(InvalidIdentifierError, match="must be text"):
        normalise("bsn", 123456782)  # type: ignore[arg-type]  # the check under test


def test_plain_names_fold_exactly_as_the_general_rule_does() -> None:
    """Names of only letters and single spaces skip the general folding: same result."""
    import random
    import re

    def general(value: str) -> str:
        return re.sub(r"[^a-z]+", " ", value.lower()).strip()

    rng = random.Random(7)
    alphabet = "aAzZ qQ-'.\t0"
    spellings = ["Jan de Vries", " jan", "jan ", "a  b", "van 't Hof", "A", "JAN\tDE VRIES"]
    for _ in range(3000):
        spellings.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8))))
    for value in spellings:
        expected = general(value)
        if expected:
            assert identifiers.canonical_name(value) == expected, repr(value)
        else:
            with pytest.raises(InvalidIdentifierError, match="no letters"):
                identifiers.canonical_name(value)
