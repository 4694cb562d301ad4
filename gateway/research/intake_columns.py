"""Column-wise folding and hashing for intake: each distinct value of a batch handled once.

A fold maps every distinct value of one column of a batch to what intake keeps of it:
None when missing or empty, "" when the identifier fails its check, else its canonical
form (``gateway.identifiers``). ``folded`` is the general definition (one call of the
normaliser per distinct value); the others give the same result faster for the columns
every batch carries: the BSN 11-test and the IBAN format and mod-97 check run on all of
a batch's candidates at once (numpy), birth dates are looked up in what earlier batches
folded and names in what the same batch folded (``Remembered``: spellings on their own,
never a name with its date or an identifier; names, personal data, are forgotten with
their batch). Anything outside those fast paths goes
through the normaliser itself, so the errors stay its own.

``pseudonyms_of`` hashes a batch's distinct canonical identifiers of one type in one
call when the pseudonymiser offers that (``many``), without a Python call per value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import compress
from operator import not_
from typing import Any

import numpy as np

from gateway.errors import InvalidInputError
from gateway.identifiers import birth_date, bsn, canonical_name, iban
from gateway.research.pseudonyms import Pseudonymiser

_SEPARATORS = str.maketrans("", "", " .-\t")
"""What ``gateway.identifiers.bsn`` strips from a BSN (spaces, dots, dashes, tabs)."""
_BSN_WEIGHTS = np.array([9, 8, 7, 6, 5, 4, 3, 2, -1], dtype=np.int64)
"""The 11-test: 9*d1 + 8*d2 + ... + 2*d8 - d9 must be divisible by 11."""
DAY_CACHE = 1 << 15
"""Birth date spellings remembered across batches (about 90 years of days)."""
NAME_CACHE = 1 << 16
"""At most this many name spellings remembered within one batch (a batch is smaller)."""


def folded(values: Iterable[Any], fold: Callable[[Any], str]) -> dict[Any, str | None]:
    """Return each distinct value's fold: None when missing or empty, "" when it fails."""
    out: dict[Any, str | None] = dict.fromkeys(values)
    for value in out:
        if value is None or value == "":
            continue
        try:
            out[value] = fold(value)
        except InvalidInputError:
            out[value] = ""
    return out


def _candidates(
    values: Iterable[Any], fold: Callable[[Any], str], reduce: Callable[[str], str | None]
) -> tuple[dict[Any, str | None], list[str], list[str]]:
    """Return the distinct values' folds so far, and the texts left for the array check.

    Missing and empty values stay None; values that are not text are folded by ``fold``
    itself; a text that ``reduce`` turns into None fails (""). The rest are returned as
    two lists: each spelling and its reduced form, to be checked at once.
    """
    out: dict[Any, str | None] = dict.fromkeys(values)
    spelt: list[str] = []
    reduced: list[str] = []
    for value in out:
        if value is None or value == "":
            continue
        if type(value) is not str:
            out[value] = _fold_one(fold, value)
            continue
        text = reduce(value)
        if text is None:
            out[value] = ""
            continue
        spelt.append(value)
        reduced.append(text)
    return out, spelt, reduced


def _bsn_digits(value: str) -> str | None:
    """Return ``value`` reduced as ``bsn`` reduces it, or None if not then 9 ASCII digits."""
    text = value if len(value) == 9 and value.isdigit() else value.translate(_SEPARATORS)
    if len(text) == 8:
        text = "0" + text
    return text if len(text) == 9 and text.isdigit() and text.isascii() else None


def _iban_compact(value: str) -> str | None:
    """Return ``value`` compacted as ``iban`` compacts it, or None if not 18 ASCII characters."""
    compact = value.replace(" ", "").upper()
    return compact if len(compact) == _IBAN_LENGTH and compact.isascii() else None


def folded_bsns(values: Iterable[Any]) -> dict[Any, str | None]:
    """Return ``folded(values, bsn)``, with the 11-test of all candidates done at once.

    Each text is reduced as ``bsn`` reduces it (separators out, a leading 0 for 8
    digits); one that is then not 9 ASCII digits fails, the rest take the 11-test (and
    the all-zero check) as one array. Values that are not text go through ``bsn``.
    """
    out, spelt, digits = _candidates(values, bsn, _bsn_digits)
    if digits:
        array = np.frombuffer("".join(digits).encode("ascii"), dtype=np.uint8).reshape(-1, 9)
        numbers = array.astype(np.int64) - 48
        passing = ((numbers @ _BSN_WEIGHTS) % 11 == 0) & numbers.any(axis=1)
        good = passing.tolist()
        out.update(zip(compress(spelt, good), compress(digits, good), strict=True))
        out.update(dict.fromkeys(compress(spelt, map(not_, good)), ""))
    return out


_IBAN_LENGTH = 18
_IBAN_ORDER = (*range(4, _IBAN_LENGTH), 0, 1, 2, 3)
"""Mod-97 reads a Dutch IBAN from its bank code on, then ``NL`` and the check digits."""
_IBAN_LETTERS = frozenset({0, 1, 4, 5, 6, 7})
"""Positions of a Dutch IBAN that hold letters (``NL`` and the bank code)."""


def folded_ibans(values: Iterable[Any]) -> dict[Any, str | None]:
    """Return ``folded(values, iban)``, with the format and mod-97 checks done at once.

    Each text is compacted as ``iban`` compacts it (spaces out, upper case); one that is
    then not 18 ASCII characters cannot be a Dutch IBAN and fails, the rest are checked
    as one array: ``NL``, 2 digits, 4 letters, 10 digits, and the remainder 1 modulo 97
    with letters counted as 10-35. Values that are not text go through ``iban``.
    """
    out, spelt, compacts = _candidates(values, iban, _iban_compact)
    if compacts:
        text = np.frombuffer("".join(compacts).encode("ascii"), dtype=np.uint8)
        chars = text.reshape(-1, _IBAN_LENGTH).astype(np.int64)
        digit = (chars >= ord("0")) & (chars <= ord("9"))
        letter = (chars >= ord("A")) & (chars <= ord("Z"))
        shaped = (
            (chars[:, 0] == ord("N"))
            & (chars[:, 1] == ord("L"))
            & digit[:, 2:4].all(axis=1)
            & letter[:, 4:8].all(axis=1)
            & digit[:, 8:].all(axis=1)
        )
        remainder = np.zeros(len(chars), dtype=np.int64)
        for at in _IBAN_ORDER:
            if at in _IBAN_LETTERS:  # a letter counts as two digits: A = 10 ... Z = 35
                remainder = (remainder * 100 + chars[:, at] - (ord("A") - 10)) % 97
            else:
                remainder = (remainder * 10 + chars[:, at] - ord("0")) % 97
        good = (shaped & (remainder == 1)).tolist()
        out.update(zip(compress(spelt, good), compress(compacts, good), strict=True))
        out.update(dict.fromkeys(compress(spelt, map(not_, good)), ""))
    return out


class Remembered:
    """Folds of text values remembered across batches: at most ``limit``, all dropped when full.

    ``folded`` gives what ``folded(values, fold)`` gives; a remembered spelling is looked
    up without a Python call, and one failing its check is remembered as "" (the fold
    raises its own error again where the error itself is asked for). Values that are
    not text are folded every time, never remembered.
    """

    def __init__(self, fold: Callable[[Any], str], limit: int) -> None:
        self.fold = fold
        self.limit = limit
        self.known: dict[str, str] = {}

    def learn(self, value: str) -> str:
        """Fold ``value`` ("" if it fails its check) and remember it."""
        try:
            canonical = self.fold(value)
        except InvalidInputError:
            canonical = ""
        if not value:  # an empty spelling is a missing value, never a remembered failure
            return canonical
        if len(self.known) >= self.limit:
            self.known.clear()
        self.known[value] = canonical
        return canonical

    def folded(self, values: Iterable[Any]) -> dict[Any, str | None]:
        """Return ``folded(values, self.fold)``: remembered spellings are looked up."""
        distinct = dict.fromkeys(values)
        out: dict[Any, str | None] = dict(zip(distinct, map(self.known.get, distinct), strict=True))
        for value, canonical in out.items():
            if canonical is not None or value is None or value == "":
                continue
            out[value] = (
                self.learn(value) if isinstance(value, str) else _fold_one(self.fold, value)
            )
        return out

    def column(self, values: list[Any]) -> list[str | None]:
        """Return ``list(map(self.folded(values).get, values))``: each row's fold, in order.

        One lookup per row in C; only a batch with a value not yet remembered (or a
        missing one) takes a pass in Python, and folds only those values.
        """
        out: list[str | None] = list(map(self.known.get, values))
        if None not in out:
            return out
        learnt: dict[Any, str] = {}
        for at, (value, canonical) in enumerate(zip(values, out, strict=True)):
            if canonical is not None or value is None or value == "":
                continue
            found = learnt.get(value)
            if found is None:
                found = learnt[value] = (
                    self.learn(value) if isinstance(value, str) else _fold_one(self.fold, value)
                )
            out[at] = found
        return out


def _iso_day(value: Any) -> str:
    return birth_date(value).isoformat()


DAYS = Remembered(_iso_day, DAY_CACHE)
"""Birth date spellings and their ISO text: dates, not people, so they may be kept across
batches (a batch repeats few of its dates, the next batches repeat nearly all of them)."""


def names() -> Remembered:
    """Return a fresh memory of name spellings and their folded form, for one batch.

    Names are personal data: unlike dates they are never kept in the process beyond the
    batch that brought them (a batch of a million rows still repeats a few thousand).
    """
    return Remembered(canonical_name, NAME_CACHE)


def _fold_one(fold: Callable[[Any], str], value: Any) -> str:
    try:
        return fold(value)
    except InvalidInputError:
        return ""


def pseudonyms_of(
    pseudonymiser: Pseudonymiser, kind: str, keys: Iterable[str | None]
) -> dict[str, str]:
    """Return each distinct key's pseudonym of type ``kind`` ("" for "", None left out).

    Uses the pseudonymiser's ``many`` (the key ring's: one keyed context, no call per
    value) when it has one, else calls it per key; the pseudonyms are the same.
    """
    distinct: list[str] = [k for k in set(keys) if k]
    many: Callable[[str, list[str]], list[str]] | None = getattr(pseudonymiser, "many", None)
    if many is not None:
        out = dict(zip(distinct, many(kind, distinct), strict=True))
    else:
        out = {k: pseudonymiser(kind, k) for k in distinct}
    out[""] = ""
    return out
