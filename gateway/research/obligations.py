"""Does an agreement honour the obligations the policy attaches to a release?

The policy's ``research:extract:release`` rule names the least the gateway must do
(pseudonymise, generalise birth dates to at least the year, ...); the agreement says
exactly what each column gets. A release goes ahead only if every column is at least as
coarse as the obligations require. Pure: agreement and obligations in, problems out.
"""

from __future__ import annotations

from collections.abc import Iterable

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
from gateway.research.agreements import Agreement
from gateway.research.fields import FieldKind, field_kind
from gateway.research.transforms import LEVELS, Generalisable, TransformKind

# obligation targets are written with dashes, agreement levels with underscores
_LEVEL_NAME = {"age-band": "age_band"}


def _at_least(agreement: Agreement, what: Generalisable, target: str) -> list[str]:
    order = LEVELS[what]
    least = order.index(_LEVEL_NAME.get(target, target))
    problems = []
    for column in agreement.released_columns:
        t = column.transform
        if t.kind is TransformKind.GENERALISE and t.what is what:
            finer = [level for level in t.levels if order.index(level) < least]
            if finer:
                problems.append(
                    f"column {column.name} may be released at {', '.join(finer)}, but the "
                    f"policy requires {what.value} generalised to at least {target}"
                )
    return problems


def unmet_obligations(agreement: Agreement, obligations: Iterable[Obligation]) -> list[str]:
    """Return how ``agreement``'s columns fall short of ``obligations`` (empty when they don't)."""
    problems: list[str] = []
    for ob in obligations:
        if isinstance(ob, GeneraliseBirthDate):
            problems += _at_least(agreement, Generalisable.BIRTH_DATE, ob.to)
        elif isinstance(ob, GeneralisePostcode):
            problems += _at_least(agreement, Generalisable.POSTCODE, ob.to)
        elif isinstance(ob, GeneraliseTimestamp):
            problems += _at_least(agreement, Generalisable.TIMESTAMP, ob.to)
        elif isinstance(ob, Pseudonymise | RemoveFreeText):
            for column in agreement.released_columns:
                kinds = {field_kind(s) for s in column.source}
                pseudonymised = column.transform.kind is TransformKind.PSEUDONYMISE
                if FieldKind.FREE_TEXT in kinds or (
                    FieldKind.DIRECT_IDENTIFIER in kinds and not pseudonymised
                ):
                    problems.append(f"column {column.name} would release {ob.kind} material")
        elif isinstance(ob, DropFields):
            for column in agreement.released_columns:
                dropped = sorted(set(column.source) & set(ob.fields))
                if dropped:
                    problems.append(
                        f"column {column.name} releases {', '.join(dropped)}, "
                        "which the policy drops"
                    )
        elif isinstance(ob, SummaryOnly | AggregateOnly):
            problems.append(f"an extract cannot satisfy the obligation {ob.kind}")
    return problems
