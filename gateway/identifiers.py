"""Normalise and validate Dutch identifiers before they are pseudonymised or compared.

Every function returns one canonical spelling (so the same person gets the same
pseudonym whatever way a provider wrote the value) or raises ``InvalidInputError``
whose message names the identifier type and what is wrong, never the value itself.

Canonical forms: BSN ``123456782`` (9 digits, 11-test), KvK ``12345678``, IBAN
``NL91ABNA0417164300`` (mod-97), phone ``+31612345678`` (E.164), postcode ``1234AB``,
name and birth date ``jan de vries|2008-03-14``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import date
from enum import StrEnum

from gateway.errors import InvalidIdentifierError, InvalidInputError


class IdType(StrEnum):
    """The identifier types the gateway normalises and pseudonymises."""

    BSN = "bsn"
    KVK = "kvk"
    IBAN = "iban"
    PHONE = "phone"
    POSTCODE = "postcode"
    NAME_BIRTHDATE = "name_birthdate"


_SEPARATORS = str.maketrans("", "", " .-\t")
_IBAN_NL = re.compile(r"NL[0-9]{2}[A-Z]{4}[0-9]{10}")
_POSTCODE = re.compile(r"[1-9][0-9]{3}[A-Z]{2}")
_POSTCODE_UNUSED_LETTERS = frozenset({"SA", "SD", "SS"})  # never issued by PostNL
_PHONE_JUNK = str.maketrans("", "", " .-/()\t")
_NAME_JUNK = re.compile(r"[^a-z]+")
_IBAN_LETTER_DIGITS = str.maketrans({chr(c): str(c - 55) for c in range(ord("A"), ord("Z") + 1)})


def bsn(value: str) -> str:
    """Return the 9-digit BSN; accept spaces, dots and dashes, and 8 digits (leading 0).

    Raises InvalidIdentifierError if it is not 8-9 digits or fails the 11-test.
    """
    digits = value if len(value) == 9 and value.isdigit() else value.translate(_SEPARATORS)
    if len(digits) == 8:
        digits = "0" + digits
    if len(digits) != 9 or not digits.isdigit() or not digits.isascii():
        raise InvalidIdentifierError(IdType.BSN, "must be 9 digits")
    b = digits.encode("ascii")
    # 11-test: 9*d1 + 8*d2 + ... + 2*d8 - d9 must be divisible by 11; the weights sum
    # to 43, so subtracting 43 * ord("0") turns the byte values back into digits.
    total = 9 * b[0] + 8 * b[1] + 7 * b[2] + 6 * b[3] + 5 * b[4] + 4 * b[5] + 3 * b[6] + 2 * b[7]
    total -= b[8] + 43 * 48
    if total % 11 != 0 or digits == "000000000":
        raise InvalidIdentifierError(IdType.BSN, "fails the 11-test")
    return digits


def kvk(value: str) -> str:
    """Return the 8-digit KvK number; raise InvalidIdentifierError otherwise."""
    digits = value.translate(_SEPARATORS)
    if len(digits) != 8 or not digits.isdigit() or not digits.isascii():
        raise InvalidIdentifierError(IdType.KVK, "must be 8 digits")
    if digits == "00000000":
        raise InvalidIdentifierError(IdType.KVK, "must not be all zeros")
    return digits


def iban(value: str) -> str:
    """Return a Dutch IBAN without spaces, upper case; check the mod-97 check digits.

    Raises InvalidIdentifierError for other countries, wrong lengths or check digits.
    """
    compact = value.replace(" ", "").upper()
    if not _IBAN_NL.fullmatch(compact):
        raise InvalidIdentifierError(
            IdType.IBAN, "must be a Dutch IBAN: NL, 2 check digits, 4 letters, 10 digits"
        )
    rearranged = compact[4:] + compact[:4]
    if int(rearranged.translate(_IBAN_LETTER_DIGITS)) % 97 != 1:
        raise InvalidIdentifierError(IdType.IBAN, "check digits do not match (mod-97)")
    return compact


def phone(value: str) -> str:
    """Return a Dutch phone number in E.164 (``+31`` and 9 digits).

    Accepts national (``06-12345678``), international (``+31 6 1234 5678``, ``0031...``)
    and ``+31 (0)6...`` spellings. Raises InvalidIdentifierError for anything else,
    including numbers of other countries.
    """
    text = value.strip().replace("(0)", "")
    compact = text.translate(_PHONE_JUNK)
    if compact.startswith("+"):
        if not compact.startswith("+31"):
            raise InvalidIdentifierError(IdType.PHONE, "only Dutch numbers (+31) are accepted")
        national = compact[3:]
    elif compact.startswith("0031"):
        national = compact[4:]
    elif compact.startswith("00"):
        raise InvalidIdentifierError(IdType.PHONE, "only Dutch numbers (+31) are accepted")
    elif compact.startswith("0"):
        national = compact[1:]
    else:
        raise InvalidIdentifierError(
            IdType.PHONE, "must start with 0, +31 or 0031 (a Dutch number)"
        )
    if len(national) == 10 and national.startswith("0"):
        national = national[1:]  # "+310612345678": a trunk zero kept after the country code
    if len(national) != 9 or not national.isdigit() or not national.isascii():
        raise InvalidIdentifierError(IdType.PHONE, "must have 9 digits after the 0 or +31")
    if national[0] == "0":
        raise InvalidIdentifierError(IdType.PHONE, "area or mobile code must not start with 0")
    return "+31" + national


def postcode(value: str) -> str:
    """Return a Dutch postcode as ``1234AB``; raise InvalidIdentifierError otherwise."""
    compact = value.replace(" ", "").upper()
    if not _POSTCODE.fullmatch(compact) or not compact.isascii():
        raise InvalidIdentifierError(
            IdType.POSTCODE, "must be 4 digits (not starting with 0) and 2 letters"
        )
    if compact[4:] in _POSTCODE_UNUSED_LETTERS:
        raise InvalidIdentifierError(IdType.POSTCODE, "letters SA, SD and SS are never used")
    return compact


def canonical_name(value: str) -> str:
    """Return a name folded for matching: no accents, lower case, letters and single spaces.

    Raises InvalidIdentifierError if no letters remain.
    """
    if value.isascii():
        stripped = value.lower()
        if stripped.replace(" ", "").isalpha() and "  " not in stripped:
            return stripped.strip()  # letters (at least one) and single spaces: nothing to fold
    else:
        decomposed = unicodedata.normalize("NFKD", value)
        stripped = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    folded = _NAME_JUNK.sub(" ", stripped.replace("ß", "ss")).strip()
    if not folded:
        raise InvalidIdentifierError(IdType.NAME_BIRTHDATE, "name has no letters")
    return folded


def birth_date(value: str | date) -> date:
    """Return a birth date from a ``date`` or an ISO ``YYYY-MM-DD`` string.

    Raises InvalidIdentifierError if it is not a real date or lies before 1900.
    """
    if isinstance(value, date):
        parsed = value
    else:
        text = value.strip()
        if len(text) != 10:
            raise InvalidIdentifierError(IdType.NAME_BIRTHDATE, "birth date must be YYYY-MM-DD")
        try:
            parsed = date.fromisoformat(text)
        except ValueError:
            raise InvalidIdentifierError(
                IdType.NAME_BIRTHDATE, "birth date must be a real YYYY-MM-DD date"
            ) from None
    if parsed.year < 1900:
        raise InvalidIdentifierError(IdType.NAME_BIRTHDATE, "birth date lies before 1900")
    return parsed


def name_birthdate(name: str, born: str | date) -> str:
    """Return the canonical ``name|YYYY-MM-DD`` key of a person known by name and birth date.

    Raises InvalidIdentifierError if the name has no letters or the date is not valid.
    """
    return f"{canonical_name(name)}|{birth_date(born).isoformat()}"


def _name_birthdate_key(value: str) -> str:
    name, sep, born = value.rpartition("|")
    if not sep:
        raise InvalidIdentifierError(IdType.NAME_BIRTHDATE, "must look like name|YYYY-MM-DD")
    return name_birthdate(name, born)


NORMALISERS: dict[IdType, Callable[[str], str]] = {
    IdType.BSN: bsn,
    IdType.KVK: kvk,
    IdType.IBAN: iban,
    IdType.PHONE: phone,
    IdType.POSTCODE: postcode,
    IdType.NAME_BIRTHDATE: _name_birthdate_key,
}


def normalise(id_type: IdType | str, value: str) -> str:
    """Return ``value`` in the canonical form of ``id_type``.

    ``name_birthdate`` values are given as ``name|YYYY-MM-DD``. Raises
    InvalidIdentifierError for a malformed value and InvalidInputError for an unknown type.
    """
    try:
        kind = IdType(id_type)
    except ValueError:
        raise InvalidInputError("unknown identifier type") from None
    if not isinstance(value, str):
        raise InvalidIdentifierError(kind, "must be text")
    return NORMALISERS[kind](value)
