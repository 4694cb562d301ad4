"""GA4GH Data Use Ontology (DUO) terms that research agreements may use as conditions.

Ids, shorthands and labels are copied from the DUO release table (EBISPOT/DUO,
``duo.csv``); only terms that fit RIEC research agreements are listed. An agreement
naming any other id is refused, so no id is ever made up.

A term is a *permission* (what the data may be used for: exactly one per agreement) or
a *modifier* (a further condition). ``ENFORCED`` names the modifiers the gateway checks
itself on every release and download (``gateway.research.duo_checks``); every other term
is written into the manifest as "attested, not enforced": the researchers promise it,
software cannot see it kept (a publication moratorium, a return of results).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class DuoKind(StrEnum):
    """Whether a term says what the data may be used for, or adds a condition."""

    PERMISSION = "permission"
    MODIFIER = "modifier"


@dataclass(frozen=True, slots=True)
class DuoTerm:
    """One DUO term: its CURIE, shorthand, label and kind."""

    id: str
    shorthand: str
    label: str
    kind: DuoKind = DuoKind.MODIFIER


NO_RESTRICTION = "DUO:0000004"
HEALTH_MEDICAL_BIOMEDICAL = "DUO:0000006"
DISEASE_SPECIFIC = "DUO:0000007"
POPULATION_ORIGINS = "DUO:0000011"
GENERAL_RESEARCH_USE = "DUO:0000042"
NOT_FOR_PROFIT_NON_COMMERCIAL = "DUO:0000018"
ETHICS_APPROVAL = "DUO:0000021"
PUBLICATION_MORATORIUM = "DUO:0000024"
TIME_LIMIT = "DUO:0000025"
USER_SPECIFIC = "DUO:0000026"
PROJECT_SPECIFIC = "DUO:0000027"
INSTITUTION_SPECIFIC = "DUO:0000028"
NOT_FOR_PROFIT_USE = "DUO:0000045"
NON_COMMERCIAL_USE = "DUO:0000046"

_P = DuoKind.PERMISSION

DUO_TERMS: dict[str, DuoTerm] = {
    term.id: term
    for term in (
        DuoTerm(NO_RESTRICTION, "NRES", "no restriction", _P),
        DuoTerm(HEALTH_MEDICAL_BIOMEDICAL, "HMB", "health or medical or biomedical research", _P),
        DuoTerm(DISEASE_SPECIFIC, "DS", "disease specific research", _P),
        DuoTerm(POPULATION_ORIGINS, "POA", "population origins or ancestry research only", _P),
        DuoTerm(GENERAL_RESEARCH_USE, "GRU", "general research use", _P),
        DuoTerm("DUO:0000012", "RS", "research specific restrictions"),
        DuoTerm(NOT_FOR_PROFIT_NON_COMMERCIAL, "NPUNCU", "not for profit, non commercial use only"),
        DuoTerm("DUO:0000019", "PUB", "publication required"),
        DuoTerm("DUO:0000020", "COL", "collaboration required"),
        DuoTerm(ETHICS_APPROVAL, "IRB", "ethics approval required"),
        DuoTerm("DUO:0000022", "GS", "geographical restriction"),
        DuoTerm(PUBLICATION_MORATORIUM, "MOR", "publication moratorium"),
        DuoTerm(TIME_LIMIT, "TS", "time limit on use"),
        DuoTerm(USER_SPECIFIC, "US", "user specific restriction"),
        DuoTerm(PROJECT_SPECIFIC, "PS", "project specific restriction"),
        DuoTerm(INSTITUTION_SPECIFIC, "IS", "institution specific restriction"),
        DuoTerm("DUO:0000029", "RTN", "return to database or resource"),
        DuoTerm(NOT_FOR_PROFIT_USE, "NPU", "not for profit organisation use only"),
        DuoTerm(NON_COMMERCIAL_USE, "NCU", "non-commercial use only"),
    )
}

PERMISSIONS = frozenset(t.id for t in DUO_TERMS.values() if t.kind is DuoKind.PERMISSION)


class DeclaredUse(StrEnum):
    """A use the requester of a release declares (for NCU, NPU and NPUNCU)."""

    NON_COMMERCIAL = "non-commercial"
    NOT_FOR_PROFIT = "not-for-profit"


DECLARATIONS_NEEDED: dict[str, frozenset[DeclaredUse]] = {
    NON_COMMERCIAL_USE: frozenset({DeclaredUse.NON_COMMERCIAL}),
    NOT_FOR_PROFIT_USE: frozenset({DeclaredUse.NOT_FOR_PROFIT}),
    NOT_FOR_PROFIT_NON_COMMERCIAL: frozenset(DeclaredUse),
}
"""The declarations a release needs for each declared-use modifier."""

ENFORCED: dict[str, str] = {
    TIME_LIMIT: "no release and no download after the time limit",
    PROJECT_SPECIFIC: "only the project's researchers (named, or holding a key in it) download",
    USER_SPECIFIC: "only the researchers the agreement names download",
    INSTITUTION_SPECIFIC: "only researchers of the agreement's science partners download",
    ETHICS_APPROVAL: "no release without the approval reference in the agreement",
    NON_COMMERCIAL_USE: "no release unless its requester declares non-commercial use",
    NOT_FOR_PROFIT_USE: "no release unless its requester declares not-for-profit use",
    NOT_FOR_PROFIT_NON_COMMERCIAL: (
        "no release unless its requester declares non-commercial, not-for-profit use"
    ),
}
"""How the gateway enforces each term it can check; the others are attested only."""

ATTESTED = "attested, not enforced"
