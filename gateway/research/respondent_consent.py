"""Respondent consent of a batch's questionnaire rows, checked column by column with Arrow.

``consent_verdicts`` gives every row the verdict of ``ExtractPlan._respondent_problem``
(withdrawn; no consent for the instrument's text version or no consent date; a minor
without a parent's consent) without a Python call per row. It takes text and yes/no
columns only (what stored rows hold); for anything else it returns None and the caller
checks row by row. A date is read by Arrow only when it is exactly ``YYYY-MM-DD``; any
other spelling goes through the per-row reader (``as_date``), so both paths agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from gateway.research.agreements import Instrument
from gateway.research.extract_input import as_date

_TRUE_TEXTS = pa.array(["true", "True"], pa.string())
_ISO_DAY = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_EPOCH = date(1970, 1, 1)

Flags = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Verdicts:
    """Per row: withdrawn, else without consent, else a minor without a parent's consent."""

    withdrawn: Flags
    no_consent: Flags
    no_parental: Flags


def _text(values: Any) -> pa.Array | None:
    """Return ``values`` as an Arrow string array if they are text (or null), else None."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.Array):
        if pa.types.is_null(values.type):
            return pa.nulls(len(values), pa.string())
        return values if pa.types.is_string(values.type) else None
    if all(v is None or type(v) is str for v in values):
        return pa.array(values, pa.string())
    return None


def _yes(values: Any) -> Flags | None:
    """Return where a value is ``True``, ``"true"`` or ``"True"``; None for other types."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.Array) and pa.types.is_boolean(values.type):
        flags = pc.fill_null(values, False)
    elif not isinstance(values, pa.Array) and all(v is None or type(v) is bool for v in values):
        flags = pc.fill_null(pa.array(values, pa.bool_()), False)
    else:
        text = _text(values)
        if text is None:
            return None
        flags = pc.fill_null(pc.is_in(text, value_set=_TRUE_TEXTS), False)
    return np.asarray(flags.to_numpy(zero_copy_only=False), dtype=np.bool_)


def _days(text: pa.Array) -> tuple[npt.NDArray[np.int64], Flags]:
    """Return each text's day (days since 1970-01-01) and whether it has one (``as_date``)."""
    iso = pc.fill_null(pc.match_substring_regex(text, _ISO_DAY), False)
    candidates = pc.if_else(iso, text, pa.scalar(None, pa.string()))
    parsed = pc.strptime(candidates, format="%Y-%m-%d", unit="s", error_is_null=True)
    exact = pc.equal(
        pc.utf8_slice_codeunits(text, 8, 10),
        pc.utf8_lpad(pc.cast(pc.day(parsed), pa.string()), 2, "0"),
    )
    good = pc.fill_null(
        pc.and_(exact, pc.greater_equal(pc.year(parsed), pa.scalar(1, pa.int64()))), False
    )
    day = pc.cast(
        pc.if_else(good, pc.cast(parsed, pa.date32()), pa.scalar(None, pa.date32())), pa.int32()
    )
    days = np.asarray(pc.fill_null(day, 0).to_numpy(zero_copy_only=False), dtype=np.int64)
    known = np.asarray(good.to_numpy(zero_copy_only=False), dtype=np.bool_)
    unread = np.flatnonzero(~known & np.asarray(pc.is_valid(text).to_numpy(zero_copy_only=False)))
    if len(unread):
        # not plainly YYYY-MM-DD: the per-row reader decides (spaces, times, odd forms)
        for i, value in zip(unread.tolist(), text.take(pa.array(unread)).to_pylist(), strict=True):
            found = as_date(value)
            if found is not None:
                days[i], known[i] = (found - _EPOCH).days, True
    return days, known


def _ymd(days: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Return the year and (month * 100 + day) of each day number."""
    stamps = days.astype("datetime64[D]")
    years = stamps.astype("datetime64[Y]")
    months = stamps.astype("datetime64[M]")
    month_of_year = (months - years).astype(np.int64) + 1
    day_of_month = (stamps - months).astype(np.int64) + 1
    return years.astype(np.int64) + 1970, month_of_year * 100 + day_of_month


def consent_verdicts(
    columns: Mapping[str, Any],
    owners: npt.NDArray[np.int64],
    instruments: Sequence[Instrument],
    withdrawn: pa.Array,
) -> Verdicts | None:
    """Return the verdicts of the rows given as consent ``columns``, or None if not all text.

    ``owners`` holds each row's instrument index, ``withdrawn`` the withdrawn respondent
    ids (strings).
    """
    respondent = _text(columns["respondent_id"])
    version = _text(columns["consent_version"])
    given_text, born_text = _text(columns["consent_date"]), _text(columns["birth_date"])
    gave_up, parental = _yes(columns["consent_withdrawn"]), _yes(columns["parental_consent"])
    if (
        respondent is None
        or version is None
        or given_text is None
        or born_text is None
        or gave_up is None
        or parental is None
    ):
        return None
    listed = np.asarray(
        pc.fill_null(pc.is_in(respondent, value_set=withdrawn), False).to_numpy(
            zero_copy_only=False
        ),
        dtype=np.bool_,
    )
    expected = pa.array([i.consent_text_version for i in instruments], pa.string()).take(
        pa.array(owners)
    )
    same = pc.fill_null(pc.equal(version, expected), False)
    both_null = pc.and_(pc.is_null(version), pc.is_null(expected))
    version_ok = np.asarray(pc.or_(same, both_null).to_numpy(zero_copy_only=False), np.bool_)
    given, has_given = _days(given_text)
    born, has_born = _days(born_text)
    given_year, given_md = _ymd(given)
    born_year, born_md = _ymd(born)
    age = given_year - born_year - (given_md < born_md)
    below = np.asarray([i.parental_consent_below for i in instruments], np.int64)[owners]
    minor = ~has_born | (age < below)
    out = gave_up | listed
    no_consent = ~out & (~version_ok | ~has_given)
    return Verdicts(out, no_consent, ~out & ~no_consent & minor & ~parental)
