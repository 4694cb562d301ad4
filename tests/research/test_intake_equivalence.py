"""Pseudonymisation on intake equals its plain per-row definition, on random messy batches.

``reference`` below is the straightforward per-row loop ``pseudonymise_rows`` replaced
(one row after another: normalise each identifier, HMAC it, put it in the payload);
the faster column-wise version must give the same payloads (same keys, in the same
order), the same respondent keys and the same counts of failing identifiers.
"""

from __future__ import annotations

import random
import re
import types
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from gateway.errors import InvalidInputError
from gateway.identifiers import NORMALISERS, IdType, birth_date, canonical_name
from gateway.policy.vocabulary import load_vocabulary
from gateway.research import intake, intake_columns
from gateway.research.agreements import Agreement
from gateway.research.errors import RowsRefusedError
from gateway.research.intake import (
    RESPONDENT_FIELD,
    IntakePlan,
    Prepared,
    check_rows,
    pseudonymise_rows,
    respondent_key,
)
from gateway.research.pseudonyms import Pseudonymiser
from tests.conftest import POLICIES
from tests.research.test_intake import TODAY, plan_for
from tests.research.test_intake_columns import remembered_day

INSTRUMENTS = (
    "gemeenten-jeugdregistraties",
    "bank-money-mule-signalen",
    "telecom-simswap-meldingen",
    "vragenlijst-jongeren",
)


@pytest.fixture(scope="module")
def schemas() -> dict[str, Any]:
    """The category schemas of the shipped vocabulary."""
    vocabulary = load_vocabulary(POLICIES)
    return {name: vocabulary.schema(name) for name in vocabulary.schemas}


class _Plain:
    """A pseudonymiser that returns the normalised value itself (to find unlinked rows)."""

    key_id = "plain"

    def __call__(self, id_type: str, value: str) -> str:
        return value


def _canonical(value: str, id_type: IdType) -> str | None:
    try:
        return NORMALISERS[id_type](value)
    except InvalidInputError:
        return None


def reference(
    plan: IntakePlan, rows: Sequence[Mapping[str, Any]], pseudonymiser: Pseudonymiser
) -> Prepared:
    """Pseudonymise row by row, identifier by identifier (no caches, no columns)."""
    invalid: Counter[str] = Counter()
    payloads = [{n: row[n] for n in plan.stored if row.get(n) is not None} for row in rows]
    for spec in plan.pseudonyms:
        for row, payload in zip(rows, payloads, strict=True):
            values: list[Any] = [row.get(source) for source in spec.sources]
            if any(v is None or v == "" for v in values):
                continue
            if spec.id_type is IdType.NAME_BIRTHDATE:
                try:
                    canonical: str | None = (
                        f"{canonical_name(values[0])}|{birth_date(values[1]).isoformat()}"
                    )
                except InvalidInputError:
                    canonical = None
            else:
                canonical = _canonical(values[0], spec.id_type)
            if canonical is None:
                invalid[spec.sources[0]] += 1
            else:
                payload[spec.field] = pseudonymiser(spec.id_type.value, canonical)
    targets = {spec.field for spec in plan.pseudonyms}
    if targets and any(not targets & payload.keys() for payload in payloads):
        raise RowsRefusedError(["nameless"])
    respondents = [
        respondent_key(pseudonymiser, row[RESPONDENT_FIELD]) if plan.questionnaire else None
        for row in rows
    ]
    return Prepared(payloads, respondents, invalid)


def _messy(rng: random.Random, row: dict[str, Any], pool: list[dict[str, Any]]) -> dict[str, Any]:
    """Return ``row`` with identifiers borrowed, blanked, emptied or broken at random."""
    out = dict(row)
    for name in ("bsn", "iban", "phone", "name", "birth_date"):
        if name not in out:
            continue
        draw = rng.random()
        if draw < 0.15:
            out[name] = rng.choice(pool).get(name, out[name])  # shared with another row
        elif draw < 0.2:
            out[name] = ""
        elif draw < 0.25:
            del out[name]
        elif draw < 0.3 and name != "birth_date":
            out[name] = out[name][:-1] + rng.choice("0123456789")  # often a failing check
        elif draw < 0.33 and name == "name":
            out[name] = rng.choice(["José Ñúñez", "  ", "O'Brien-de  Vries", "ß"])
    return out


@pytest.mark.parametrize("seed", range(6))
def test_pseudonymise_rows_equals_the_row_by_row_reference(
    seed: int,
    rows: list[dict[str, Any]],
    agreement: Agreement,
    schemas: dict[str, Any],
    ring: Any,
) -> None:
    rng = random.Random(seed)
    pseudonymise = ring.pseudonymiser(agreement.project)
    compared = 0
    for instrument_id in INSTRUMENTS:
        plan = plan_for(agreement, instrument_id, schemas)
        category = plan.instrument.category
        mine = [r for r in rows if r["category"] == category]
        submitted = [
            {k: v for k, v in r.items() if k in plan.accepted and v is not None}
            for r in rng.sample(mine, min(len(mine), 300))
        ]
        batch = []
        for row in (_messy(rng, r, submitted) for r in submitted):
            try:  # only rows the checks accept reach pseudonymisation
                batch.extend(check_rows(plan, [row], TODAY))
            except RowsRefusedError:
                continue
        try:
            expected: Prepared | None = reference(plan, batch, pseudonymise)
        except RowsRefusedError:
            expected = None
        if expected is None:
            with pytest.raises(RowsRefusedError):
                pseudonymise_rows(plan, batch, pseudonymise)
            keyed = [r for r in batch if _linked(plan, r)]
            expected, batch = reference(plan, keyed, pseudonymise), keyed
        got = pseudonymise_rows(plan, batch, pseudonymise)
        assert [list(p.items()) for p in got.payloads] == [
            list(p.items()) for p in expected.payloads
        ]
        assert got.respondent_keys == expected.respondent_keys
        assert got.invalid_identifiers == expected.invalid_identifiers
        compared += len(batch)
    assert compared > 600


def _linked(plan: IntakePlan, row: Mapping[str, Any]) -> bool:
    """Whether ``row`` has at least one identifier that passes its check."""
    try:
        reference(plan, [row], _Plain())
    except RowsRefusedError:
        return False
    return True


def _birth_date_text(rng: random.Random) -> str:
    """A birth date as a provider may spell it: mostly ISO, sometimes odd or wrong."""
    year, month, day = rng.randint(1890, 2030), rng.randint(1, 13), rng.randint(1, 31)
    return rng.choice(
        [
            f"{year:04d}-{month:02d}-{day:02d}",
            f" {year:04d}-{month:02d}-{day:02d}\t",
            f"{year:04d}{month:02d}{day:02d}",
            f"{year:04d}-W{rng.randint(1, 53):02d}-{rng.randint(1, 7)}",
            f"{day:02d}-{month:02d}-{year:04d}",
            f"{year:04d}-{month}-{day}",
            "",
        ]
    )


def _day_or_error(day: Any, value: str) -> str | type[Exception]:
    try:
        return str(day(value))
    except InvalidInputError as exc:
        return type(exc)


@pytest.mark.parametrize("seed", range(3))
def test_remembered_birth_dates_equal_their_definition(seed: int) -> None:
    """``_day`` (remembered across batches) gives what ``birth_date`` gives, or its error."""
    rng = random.Random(seed)
    values = [_birth_date_text(rng) for _ in range(3000)]
    for value in values + values:  # the second time from the cache
        expected = _day_or_error(lambda v: birth_date(v).isoformat(), value)
        assert _day_or_error(remembered_day, value) == expected, value


def _reachable_strings(root: object, depth: int = 4) -> set[str]:
    """Every string reachable from ``root`` through dicts, sequences and object attributes."""
    found: set[str] = set()
    seen: set[int] = set()

    def walk(obj: object, left: int) -> None:
        if isinstance(obj, str):
            found.add(obj)
            return
        if left == 0 or id(obj) in seen or isinstance(obj, type | types.ModuleType):
            return
        seen.add(id(obj))
        if isinstance(obj, dict):
            for key, value in obj.items():
                walk(key, left - 1)
                walk(value, left - 1)
        elif isinstance(obj, list | tuple | set | frozenset):
            for item in obj:
                walk(item, left - 1)
        elif hasattr(obj, "__dict__"):
            walk(vars(obj), left - 1)

    for value in vars(root).values():
        walk(value, depth)
    return found


def test_no_name_outlives_the_batch_that_brought_it(
    rows: list[dict[str, Any]], agreement: Agreement, schemas: dict[str, Any], ring: Any
) -> None:
    """Names are personal data: intake folds them per batch and keeps none in the process."""
    plan = plan_for(agreement, INSTRUMENTS[0], schemas)
    category = plan.instrument.category
    name = "Wilhelmina Xylofoon-Quist"  # in no synthetic population
    batch = [
        {k: v for k, v in r.items() if k in plan.accepted and v is not None}
        for r in rows
        if r["category"] == category and r.get("name")
    ][:20]
    for row in batch:
        row["name"] = name
    pseudonymise = ring.pseudonymiser(agreement.project)
    prepared = pseudonymise_rows(plan, check_rows(plan, batch, TODAY), pseudonymise)
    assert prepared.payloads  # the batch went through, names folded
    for module in (intake, intake_columns):
        assert not any("xylofoon" in s.lower() for s in _reachable_strings(module))
    # what is remembered across batches is dates, and only dates
    assert all(_DAY.fullmatch(v) or v == "" for v in intake_columns.DAYS.known.values())


_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
