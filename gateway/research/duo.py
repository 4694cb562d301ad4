"""GA4GH Data Use Ontology (DUO) terms that research agreements may use as conditions.

Ids, shorthands and labels are copied from the DUO release table (EBISPOT/DUO,
``duo.csv``); only terms that fit RIEC research agreements are listed. An agreement
naming any other id is refused, so no id is ever made up.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DuoTerm:
    """One DUO term: its CURIE, shorthand and label."""

    id: str
    shorthand: str
    label: str


DUO_TERMS: dict[str, DuoTerm] = {
    term.id: term
    for term in (
        DuoTerm("DUO:0000012", "RS", "research specific restrictions"),
        DuoTerm("DUO:0000018", "NPUNCU", "not for profit, non commercial use only"),
        DuoTerm("DUO:0000019", "PUB", "publication required"),
        DuoTerm("DUO:0000020", "COL", "collaboration required"),
        DuoTerm("DUO:0000021", "IRB", "ethics approval required"),
        DuoTerm("DUO:0000022", "GS", "geographical restriction"),
        DuoTerm("DUO:0000024", "MOR", "publication moratorium"),
        DuoTerm("DUO:0000025", "TS", "time limit on use"),
        DuoTerm("DUO:0000026", "US", "user specific restriction"),
        DuoTerm("DUO:0000027", "PS", "project specific restriction"),
        DuoTerm("DUO:0000028", "IS", "institution specific restriction"),
        DuoTerm("DUO:0000029", "RTN", "return to database or resource"),
        DuoTerm("DUO:0000042", "GRU", "general research use"),
        DuoTerm("DUO:0000045", "NPU", "not for profit organisation use only"),
        DuoTerm("DUO:0000046", "NCU", "non-commercial use only"),
    )
}

TIME_LIMIT = "DUO:0000025"
PUBLICATION_MORATORIUM = "DUO:0000024"
