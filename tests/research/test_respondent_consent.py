"""Questionnaire consent is checked column by column, with the same verdicts as row by row."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa
import pytest

from gateway.research import extract_plan
from gateway.research.agreements import Agreement
from gateway.research.extract_input import ExtractRequest, ExtractStats, InputBatch
from gateway.research.pseudonyms import EphemeralPseudonymiser

VERSION = "jnn-toestemming-2026-v1"
# (respondent, consent version, consent date, birth date, parental consent, withdrawn)
CASES: list[tuple[Any, ...]] = [
    ("r-1", VERSION, "2026-03-01", "2000-05-05", None, False),  # an adult: kept
    ("r-2", VERSION, "2026-03-01", "2010-03-01", None, False),  # 16 that very day: kept
    ("r-3", VERSION, "2026-03-01", "2010-03-02", None, False),  # 15: no parent's consent
    ("r-4", VERSION, "2026-03-01", "2010-03-02", True, False),  # 15 with a parent's consent
    ("r-5", VERSION, "2026-03-01", "2010-03-02", "True", False),
    ("r-6", VERSION, "2026-03-01", "2010-03-02", "yes", False),  # not a yes the check reads
    ("r-7", VERSION, "2026-03-01", None, None, False),  # no birth date: taken for a minor
    ("r-8", VERSION, "2026-02-30", "2000-05-05", None, False),  # no such day
    ("r-9", VERSION, " 2026-01-05 ", "2000-05-05", None, False),  # spaces around
    ("r-10", VERSION, "2026-01-05T10:00", "2000-05-05", None, False),  # with a time
    ("r-11", VERSION, "20260105", "2000-05-05", None, False),  # basic ISO form
    ("r-12", VERSION, "0000-01-01", "2000-05-05", None, False),  # year zero
    ("r-13", "another-version", "2026-03-01", "2000-05-05", None, False),
    ("r-14", None, "2026-03-01", "2000-05-05", None, False),
    ("r-15", VERSION, None, "2000-05-05", None, False),
    ("r-16", VERSION, "2026-03-01", "2000-05-05", None, "true"),  # withdrew on the row
    ("r-17", VERSION, "2026-03-01", "2000-05-05", None, True),
    ("gone", VERSION, "2026-03-01", "2000-05-05", None, False),  # withdrawn at the gateway
    ("gone", VERSION, "2026-02-30", "2010-03-02", None, False),  # withdrawal comes first
    (None, VERSION, "2026-03-01", "2008-02-29", None, False),  # born on a leap day: 18
    ("r-18", VERSION, "2024-02-28", "2008-02-29", None, False),  # 15 the day before
    ("r-19", VERSION, "2026-03-01", "2000-13-01", None, False),  # no such month
]
FIELDS = (
    "respondent_id",
    "consent_version",
    "consent_date",
    "birth_date",
    "parental_consent",
    "consent_withdrawn",
)


def _batch(cases: list[tuple[Any, ...]]) -> dict[str, list[Any]]:
    columns: dict[str, list[Any]] = {name: [] for name in FIELDS}
    for case in cases:
        for name, value in zip(FIELDS, case, strict=True):
            columns[name].append(value)
    size = len(cases) + 1
    # one row of another instrument, which the consent check leaves alone
    for name in FIELDS:
        columns[name].append(None)
    columns["provider"] = ["riec-noord-nederland"] * (size - 1) + ["politie-noord-nederland"]
    columns["category"] = ["questionnaire"] * (size - 1) + ["fraud-report"]
    return columns


def _select(agreement: Agreement, batch: Any) -> tuple[list[Any], list[Any], dict[str, int]]:
    request = ExtractRequest(
        agreement,
        "consent",
        datetime(2026, 11, 23, 9, 0, tzinfo=UTC),
        "test",
        consenting_providers=agreement.provider_ids,
        withdrawn_respondents=frozenset({"gone"}),
    )
    plan = extract_plan.ExtractPlan(request, EphemeralPseudonymiser(agreement.project))
    stats = ExtractStats()
    keep, gone, _ = plan.select(InputBatch(batch), stats)
    return keep.to_pylist(), gone.to_pylist(), dict(stats.excluded)


@pytest.mark.parametrize("as_arrow", [False, True])
def test_consent_checked_by_column_gives_every_row_the_row_by_row_verdict(
    agreement: Agreement, monkeypatch: pytest.MonkeyPatch, as_arrow: bool
) -> None:
    batch: Any = _batch(CASES)
    if as_arrow:
        batch = pa.RecordBatch.from_pydict(
            {
                name: pa.array([None if v is None else str(v) for v in values], pa.string())
                if name in ("parental_consent", "consent_withdrawn")
                else pa.array(values, pa.string())
                for name, values in batch.items()
            }
        )
    by_column = _select(agreement, batch)
    monkeypatch.setattr(extract_plan, "consent_verdicts", lambda *args: None)
    assert _select(agreement, batch) == by_column
    keep, gone, excluded = by_column
    kept = [case[0] for case, flag in zip(CASES, keep, strict=False) if flag]
    assert kept == ["r-1", "r-2", "r-4", "r-5", "r-9", "r-10", "r-11", None]
    assert [case[0] for case, flag in zip(CASES, gone, strict=False) if flag] == [
        "r-16",
        "r-17",
        "gone",
        "gone",
    ]
    assert excluded["no-parental-consent"] == 5  # r-3, r-6, r-7, r-18, r-19 (no birth date)
    assert excluded["no-respondent-consent"] == 5  # r-8, r-12, r-13, r-14, r-15


def test_consent_in_other_types_is_checked_row_by_row(agreement: Agreement) -> None:
    batch = _batch(CASES[:3])
    batch["consent_date"] = [date(2026, 3, 1), datetime(2026, 3, 1, 9, 0), "2026-03-01", None]
    keep, gone, excluded = _select(agreement, batch)
    assert keep == [True, True, False, False] and not any(gone)
    assert excluded["no-parental-consent"] == 1 and "no-respondent-consent" not in excluded
