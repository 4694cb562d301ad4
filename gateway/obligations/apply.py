"""Applying obligations: pure functions, records in, records out.

``apply`` transforms one record for release under an allow decision; ``apply_many``
does the same for a set, which is where ``aggregate-only`` (counts per group, small
groups suppressed) can apply. Pseudonyms come from a callable passed in (keyed HMAC in
the key ring); this module never hashes identifiers itself.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from gateway.obligations.errors import ObligationError
from gateway.obligations.types import (
    AggregateOnly,
    DropFields,
    GeneraliseBirthDate,
    GeneralisePostcode,
    GeneraliseTimestamp,
    Obligation,
    Pseudonymise,
    RemoveFreeText,
    SummaryOnly,
)
from gateway.policy.schema import CategorySchema

Pseudonymiser = Callable[[str, str], str]
"""``pseudonymise(id_type, value) -> pseudonym``; keyed, never a plain hash."""

MunicipalityLookup = Callable[[str], str | None]
"""Return the municipality of a PC4 area, or None when unknown."""

SUMMARY_FIELD = "summary"
COUNT_FIELD = "count"


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value).date()
        except ValueError as exc:
            raise ObligationError("a date field does not hold an ISO date") from exc
    raise ObligationError("a date field does not hold a date")


def generalise_birth_date(value: Any, rule: GeneraliseBirthDate, now: datetime) -> str:
    """Return the birth year (``"2008"``) or an age band at ``now`` (``"15-19"``)."""
    born = _as_date(value)
    if rule.to == "year":
        return f"{born.year:04d}"
    today = now.date()
    age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    low = (max(age, 0) // rule.band) * rule.band
    return f"{low}-{low + rule.band - 1}"


def generalise_postcode(
    value: Any, rule: GeneralisePostcode, municipality_of: MunicipalityLookup | None
) -> str:
    """Return the PC4 area (``"9203"``) or the municipality of the postcode."""
    text = str(value).replace(" ", "")
    pc4 = text[:4]
    if len(pc4) != 4 or not pc4.isdigit():
        raise ObligationError("a postcode field does not hold a Dutch postcode")
    if rule.to == "pc4":
        return pc4
    if municipality_of is None:
        raise ObligationError("generalising to municipality needs a PC4 lookup")
    return municipality_of(pc4) or "onbekend"


def generalise_timestamp(value: Any) -> str:
    """Return the ISO week of a timestamp or date, e.g. ``2026-W48``."""
    year, week, _ = _as_date(value).isocalendar()
    return f"{year:04d}-W{week:02d}"


def apply(
    obligations: Sequence[Obligation],
    record: Mapping[str, Any],
    schema: CategorySchema,
    pseudonymise: Pseudonymiser,
    now: datetime,
    *,
    summary: str | None = None,
    municipality_of: MunicipalityLookup | None = None,
) -> dict[str, Any]:
    """Return ``record`` transformed by every obligation (a new dict; the input is untouched).

    Raises ObligationError when an obligation cannot be met (summary-only without a
    summary, aggregate-only on a single record, a field not in the schema).
    """
    unknown = [name for name in record if name not in schema.fields]
    if unknown:
        raise ObligationError(
            f"the record has {len(unknown)} field(s) outside category {schema.category}"
        )
    kinds = {type(o) for o in obligations}
    if AggregateOnly in kinds:
        raise ObligationError("aggregate-only applies to a set of records, not to one")
    if SummaryOnly in kinds:
        if summary is None:
            raise ObligationError("summary-only needs the provider's summary, and there is none")
        return {SUMMARY_FIELD: summary}

    out = dict(record)
    for ob in obligations:
        if isinstance(ob, DropFields):
            for name in ob.fields:
                out.pop(name, None)
        elif isinstance(ob, RemoveFreeText):
            for name in schema.fields_of("free-text"):
                out.pop(name, None)
    for ob in obligations:
        if isinstance(ob, Pseudonymise):
            wanted = set(ob.identifiers)
            for name, id_type in schema.identifier_fields().items():
                if name in out and out[name] is not None and (not wanted or id_type in wanted):
                    out[name] = pseudonymise(id_type, str(out[name]))
        elif isinstance(ob, GeneraliseBirthDate):
            for name in schema.fields_of("birth_date"):
                if out.get(name) is not None:
                    out[name] = generalise_birth_date(out[name], ob, now)
        elif isinstance(ob, GeneralisePostcode):
            for name in schema.fields_of("postcode"):
                if out.get(name) is not None:
                    out[name] = generalise_postcode(out[name], ob, municipality_of)
        elif isinstance(ob, GeneraliseTimestamp):
            for name in (*schema.fields_of("timestamp"), *schema.fields_of("date")):
                if out.get(name) is not None:
                    out[name] = generalise_timestamp(out[name])
    return out


def apply_many(
    obligations: Sequence[Obligation],
    records: Iterable[Mapping[str, Any]],
    schema: CategorySchema,
    pseudonymise: Pseudonymiser,
    now: datetime,
    *,
    group_by: Sequence[str] = (),
    municipality_of: MunicipalityLookup | None = None,
) -> list[dict[str, Any]]:
    """Return the released rows for a set of records.

    Without ``aggregate-only`` this is ``apply`` per record. With it, the transformed
    records are counted per ``group_by`` fields (identifier and free-text fields are
    refused as groups) and groups smaller than k are left out.
    """
    aggregate = [o for o in obligations if isinstance(o, AggregateOnly)]
    rest = [o for o in obligations if not isinstance(o, AggregateOnly)]
    rows = [
        apply(rest, r, schema, pseudonymise, now, municipality_of=municipality_of) for r in records
    ]
    if not aggregate:
        return rows
    k = max(o.k for o in aggregate)
    for name in group_by:
        ftype = schema.fields.get(name)
        if ftype is None:
            raise ObligationError(f"cannot group by {name!r}: not a field of {schema.category}")
        if ftype.is_identifier or ftype.base == "free-text":
            raise ObligationError(f"cannot group by {name!r}: identifiers and free text never")
    counts = Counter(tuple(row.get(name) for name in group_by) for row in rows)
    return [
        {**dict(zip(group_by, key, strict=True)), COUNT_FIELD: n}
        for key, n in sorted(counts.items(), key=lambda kv: [str(v) for v in kv[0]])
        if n >= k
    ]
