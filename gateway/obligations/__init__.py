"""Obligations: typed values (``types``) and pure functions that apply them (``apply``)."""

from gateway.obligations.apply import apply, apply_many
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
    build,
    from_json,
    to_json_list,
)

__all__ = [
    "AggregateOnly",
    "DropFields",
    "GeneraliseBirthDate",
    "GeneralisePostcode",
    "GeneraliseTimestamp",
    "Obligation",
    "ObligationError",
    "Pseudonymise",
    "RemoveFreeText",
    "SummaryOnly",
    "apply",
    "apply_many",
    "build",
    "from_json",
    "to_json_list",
]
