"""Which persons research rows are about, by the gateway's keyed subject index.

A person may ask (AVG art. 15) whether their data went to a science partner. Rows are
stored pseudonymised with the project's own keys, which no case lookup can match; so at
intake each row's identifiers are also indexed with the gateway-wide keyed index
(``KeyRing.blind_index``, the one cases and the audit subject index use) and kept in
``research_row_subjects``: never the identifier, only its keyed index. The intake,
withdrawal and release audit entries name these persons, so the processing log finds
them. Identifier types map onto the case types (a name and birth date is indexed by its
name, as a case lookup by name is); postcodes name places, not persons, and are skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import and_, exists, false, func, insert, literal, or_, select
from sqlmodel import Session, col

from gateway.audit.events import SubjectRef, subjects_digest
from gateway.errors import InvalidInputError
from gateway.identifiers import NORMALISERS, IdType, canonical_name
from gateway.models.audit import AuditSubject
from gateway.models.research import ResearchRow, ResearchRowSubject, ResearchWithdrawal
from gateway.research.intake import IntakePlan

__all__ = [
    "link_release",
    "release_digest",
    "respondent_persons",
    "row_persons",
    "row_subject_values",
]

BlindIndex = Callable[[str, str], str]
# research identifier type -> (case identifier type, how its first source is made canonical)
_CASE_TYPES: dict[IdType, tuple[str, Callable[[str], str]]] = {
    IdType.BSN: ("bsn", NORMALISERS[IdType.BSN]),
    IdType.KVK: ("kvk", NORMALISERS[IdType.KVK]),
    IdType.IBAN: ("iban", NORMALISERS[IdType.IBAN]),
    IdType.PHONE: ("phone", NORMALISERS[IdType.PHONE]),
    IdType.NAME_BIRTHDATE: ("name", canonical_name),
}


def row_persons(
    plan: IntakePlan, rows: Sequence[Mapping[str, Any]], blind_index: BlindIndex
) -> list[list[SubjectRef]]:
    """Return, per row, the (case identifier type, keyed index) of its valid identifiers.

    Each distinct identifier is indexed once per batch. Invalid or missing identifiers
    are left out (intake counts them already).
    """
    specs = [
        (spec.sources[0], *_CASE_TYPES[spec.id_type])
        for spec in plan.pseudonyms
        if spec.id_type in _CASE_TYPES
    ]
    known: dict[tuple[str, Any], str | None] = {}
    persons: list[list[SubjectRef]] = []
    for row in rows:
        found: list[SubjectRef] = []
        for source, id_type, normalise in specs:
            value = row.get(source)
            if value is None or value == "":
                continue
            key = known.get((id_type, value), "")
            if key == "":
                try:
                    key = blind_index(id_type, normalise(str(value)))
                except InvalidInputError:
                    key = None
                known[(id_type, value)] = key
            if key is not None and (id_type, key) not in found:
                found.append((id_type, key))
        persons.append(found)
    return persons


def row_subject_values(
    batch_id: str, persons: Sequence[Sequence[SubjectRef]]
) -> list[dict[str, Any]]:
    """Return the ``research_row_subjects`` rows of a batch (``persons[seq]`` per row)."""
    values: list[dict[str, Any]] = []
    for seq, person in enumerate(persons):
        anchor = min(person)[1] if person else ""
        values.extend(
            {"batch_id": batch_id, "seq": seq, "subject_key": key, "id_type": t, "person": anchor}
            for t, key in person
        )
    return values


def _released(agreement_id: str, allowed: Iterable[tuple[str, str]], *columns: Any) -> Any:
    """Select ``columns`` of the subject index rows a release takes: allowed, not withdrawn."""
    withdrawn = exists().where(
        col(ResearchWithdrawal.agreement_id) == agreement_id,
        col(ResearchWithdrawal.respondent_key) == col(ResearchRow.respondent_key),
    )
    pairs = [
        and_(col(ResearchRow.provider_id) == p, col(ResearchRow.instrument_id) == i)
        for p, i in sorted(allowed)
    ]
    return (
        select(*columns)
        .join(
            ResearchRow,
            and_(
                col(ResearchRow.batch_id) == col(ResearchRowSubject.batch_id),
                col(ResearchRow.seq) == col(ResearchRowSubject.seq),
            ),
        )
        .where(col(ResearchRow.agreement_id) == agreement_id, or_(false(), *pairs), ~withdrawn)
    )


def release_digest(
    session: Session, agreement_id: str, allowed: Iterable[tuple[str, str]]
) -> tuple[int, str]:
    """Return how many keys a release names and their ``events.subjects_digest``.

    Streams the keys in order, in bounded memory.
    """
    key = col(ResearchRowSubject.subject_key)
    query = _released(agreement_id, allowed, key).distinct().order_by(key)
    found = session.execute(query.execution_options(yield_per=4096)).scalars()
    counted = _Counted(found)
    return counted.count, subjects_digest(counted)


class _Counted:
    """An iterable that counts what it yields."""

    def __init__(self, items: Iterable[str]) -> None:
        self.items = items
        self.count = 0

    def __iter__(self) -> Iterator[str]:
        for item in self.items:
            self.count += 1
            yield item


def link_release(
    session: Session, leaf_index: int, agreement_id: str, allowed: Iterable[tuple[str, str]]
) -> None:
    """Link the release's audit entry to every person whose rows it took, inside the database.

    One ``INSERT ... SELECT``: a release of a million rows never holds their keys in memory.
    """
    key = col(ResearchRowSubject.subject_key)
    grouped = _released(
        agreement_id,
        allowed,
        literal(leaf_index),
        key,
        func.min(col(ResearchRowSubject.person)),
        func.min(col(ResearchRowSubject.id_type)),
    ).group_by(key)
    session.execute(
        insert(AuditSubject).from_select(
            ["leaf_index", "subject_key", "person", "id_type"], grouped
        )
    )


def respondent_persons(
    session: Session, agreement_id: str, respondent: str
) -> list[list[SubjectRef]]:
    """Return the persons (per row) of a questionnaire respondent's rows under an agreement."""
    found = session.execute(
        select(
            col(ResearchRowSubject.batch_id),
            col(ResearchRowSubject.seq),
            col(ResearchRowSubject.id_type),
            col(ResearchRowSubject.subject_key),
        )
        .join(
            ResearchRow,
            and_(
                col(ResearchRow.batch_id) == col(ResearchRowSubject.batch_id),
                col(ResearchRow.seq) == col(ResearchRowSubject.seq),
            ),
        )
        .where(
            col(ResearchRow.agreement_id) == agreement_id,
            col(ResearchRow.respondent_key) == respondent,
        )
    ).all()
    rows: dict[tuple[str, int], list[SubjectRef]] = {}
    for batch, seq, id_type, key in found:
        rows.setdefault((batch, seq), []).append((id_type, key))
    return list(rows.values())
