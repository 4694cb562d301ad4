"""The DUO conditions of an agreement that the gateway checks, as pure functions.

A release is checked against the time limit (TS), the ethics approval (IRB: its reference
must be in the agreement) and the declared use (NCU, NPU, NPUNCU: the requester declares
it); a download against the time limit and the restrictions on who receives the data
(PS: a researcher of the project, named by its agreements or holding a confirmed key in
it; US: a researcher the agreement names; IS: a researcher of one of its science
partners). Each returns the first unmet
condition, or None; ``gateway.research.service.duo`` audits and raises it. Terms no
software can check are listed in the manifest as "attested, not enforced".
"""

from __future__ import annotations

import calendar
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from gateway.research.agreement_parts import DuoCondition
from gateway.research.agreements import Agreement
from gateway.research.duo import (
    ATTESTED,
    DECLARATIONS_NEEDED,
    DUO_TERMS,
    ENFORCED,
    ETHICS_APPROVAL,
    INSTITUTION_SPECIFIC,
    PROJECT_SPECIFIC,
    TIME_LIMIT,
    USER_SPECIFIC,
    DeclaredUse,
)


@dataclass(frozen=True, slots=True)
class Unmet:
    """A DUO condition that is not met; ``restricts`` when it excludes the caller (403)."""

    term: str
    message: str
    restricts: bool = False

    @property
    def shorthand(self) -> str:
        """The term's DUO shorthand, e.g. ``TS``."""
        return DUO_TERMS[self.term].shorthand


def add_months(start: date, months: int) -> date:
    """Return ``start`` moved ``months`` calendar months on (the day clamped to the month)."""
    total = start.month - 1 + months
    year, month = start.year + total // 12, total % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def use_ends(agreement: Agreement) -> date | None:
    """Return the last day of use under the agreement's time limit (TS), or None without one.

    ``until`` is that day; ``months`` count from the first day of the agreement's period
    (24 months from 2026-01-01 end on 2027-12-31).
    """
    cond = _condition(agreement, TIME_LIMIT)
    if cond is None:
        return None
    if cond.until is not None:
        return cond.until
    assert cond.months is not None  # the agreement checks require months or until
    return add_months(agreement.period.start, cond.months) - timedelta(days=1)


def release_unmet(
    agreement: Agreement, day: date, declared: Collection[DeclaredUse]
) -> Unmet | None:
    """Return the first DUO condition a release on ``day`` does not meet, or None."""
    expired = _time_limit_passed(agreement, day)
    if expired is not None:
        return expired
    irb = _condition(agreement, ETHICS_APPROVAL)
    if irb is not None and irb.reference is None:
        return Unmet(
            ETHICS_APPROVAL,
            f"agreement {agreement.id} requires ethics approval ({ETHICS_APPROVAL}, IRB), "
            "but names no approval reference; nothing is released until a version of the "
            "agreement records it",
        )
    for cond in agreement.conditions:
        needed = DECLARATIONS_NEEDED.get(cond.term)
        if needed is None:
            continue
        missing = sorted(needed - set(declared))
        if missing:
            return Unmet(
                cond.term,
                f"agreement {agreement.id} allows {cond.label} ({cond.term}, "
                f"{cond.shorthand}) only: the release request must declare "
                f"{' and '.join(missing)} use (declared_use)",
            )
    return None


def download_unmet(
    agreement: Agreement,
    day: date,
    principal_id: str,
    partner_id: str | None,
    project_researchers: Collection[str],
) -> Unmet | None:
    """Return the first DUO condition a download by ``principal_id`` on ``day`` breaks.

    ``project_researchers`` are the project's researchers: those its agreements name
    (``researchers_are: named``) and those holding a confirmed key in it.
    """
    expired = _time_limit_passed(agreement, day)
    if expired is not None:
        return expired
    terms = {c.term for c in agreement.conditions}
    science = {p.partner for p in agreement.science_partners}
    if INSTITUTION_SPECIFIC in terms and partner_id not in science:
        return Unmet(
            INSTITUTION_SPECIFIC,
            f"agreement {agreement.id} restricts use to its science partners "
            f"({INSTITUTION_SPECIFIC}, IS)",
            restricts=True,
        )
    if USER_SPECIFIC in terms and not any(
        r.principal == principal_id and r.partner == partner_id for r in agreement.researchers
    ):
        return Unmet(
            USER_SPECIFIC,
            f"agreement {agreement.id} restricts use to the researchers it names "
            f"({USER_SPECIFIC}, US)",
            restricts=True,
        )
    if PROJECT_SPECIFIC in terms and principal_id not in project_researchers:
        return Unmet(
            PROJECT_SPECIFIC,
            f"agreement {agreement.id} restricts use to project {agreement.project} "
            f"({PROJECT_SPECIFIC}, PS): only the project's researchers (named, or holding "
            "a confirmed key in it) receive it",
            restricts=True,
        )
    return None


def manifest_conditions(agreement: Agreement) -> list[dict[str, Any]]:
    """Return the manifest's conditions: each term, its parameters and how it is kept."""
    out: list[dict[str, Any]] = []
    for cond in agreement.conditions:
        entry: dict[str, Any] = {
            "duo": cond.term,
            "shorthand": cond.shorthand,
            "label": cond.label,
            "kind": DUO_TERMS[cond.term].kind.value,
        }
        for name in ("detail", "months", "reference", "project"):
            value = getattr(cond, name)
            if value is not None:
                entry[name] = value
        if cond.until is not None:
            entry["until"] = cond.until.isoformat()
        if cond.term == TIME_LIMIT:
            entry["use_ends"] = str(use_ends(agreement))
        how = ENFORCED.get(cond.term)
        entry["enforcement"] = "enforced" if how else ATTESTED
        if how:
            entry["enforced_by_gateway"] = how
        out.append(entry)
    return out


def _condition(agreement: Agreement, term: str) -> DuoCondition | None:
    return next((c for c in agreement.conditions if c.term == term), None)


def _time_limit_passed(agreement: Agreement, day: date) -> Unmet | None:
    ends = use_ends(agreement)
    if ends is None or day <= ends:
        return None
    return Unmet(
        TIME_LIMIT,
        f"agreement {agreement.id} limits use to {ends.isoformat()} ({TIME_LIMIT}, TS); "
        f"nothing is released or handed out on {day.isoformat()}",
    )
