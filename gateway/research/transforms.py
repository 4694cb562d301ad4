"""The column transformations an agreement may name, parsed from their text form.

``keep``, ``drop``, ``pseudonymise:<id_type>`` and ``generalise:<what>:<level>[|<level>...]``.
A generalisation may list several levels, finest first (``generalise:postcode:pc4|municipality``):
the first release of a project picks the finest level that passes the disclosure check,
and every later release of that project reuses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from gateway.identifiers import IdType


class TransformKind(StrEnum):
    """What happens to a column."""

    KEEP = "keep"
    DROP = "drop"
    PSEUDONYMISE = "pseudonymise"
    GENERALISE = "generalise"


class Generalisable(StrEnum):
    """The kinds of value that can be generalised."""

    BIRTH_DATE = "birth_date"
    POSTCODE = "postcode"
    TIMESTAMP = "timestamp"


LEVELS: dict[Generalisable, tuple[str, ...]] = {
    Generalisable.BIRTH_DATE: ("year", "age_band"),
    Generalisable.POSTCODE: ("pc4", "municipality", "province"),
    Generalisable.TIMESTAMP: ("week", "month", "quarter", "year"),
}
"""The levels of each kind, finest first."""


@dataclass(frozen=True, slots=True)
class Transform:
    """A parsed transformation; ``str()`` gives back its canonical text."""

    kind: TransformKind
    id_type: IdType | None = None
    what: Generalisable | None = None
    levels: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Transform:
        """Return the transformation written as ``text``; raise ValueError saying what is wrong."""
        if not isinstance(text, str) or not text:
            raise ValueError("a transformation is text such as keep, drop, pseudonymise:bsn")
        head, _, rest = text.partition(":")
        if head in {"keep", "drop"}:
            if rest:
                raise ValueError(f"{head} takes no argument")
            return cls(TransformKind(head))
        if head == "pseudonymise":
            try:
                return cls(TransformKind.PSEUDONYMISE, id_type=IdType(rest))
            except ValueError:
                known = ", ".join(t.value for t in IdType)
                raise ValueError(f"unknown identifier type in {text!r}; known: {known}") from None
        if head == "generalise":
            what_text, _, level_text = rest.partition(":")
            try:
                what = Generalisable(what_text)
            except ValueError:
                known = ", ".join(g.value for g in Generalisable)
                raise ValueError(f"cannot generalise {what_text!r}; known: {known}") from None
            allowed = LEVELS[what]
            levels = tuple(level_text.split("|")) if level_text else ()
            if not levels or any(level not in allowed for level in levels):
                raise ValueError(
                    f"levels of generalise:{what.value} are {', '.join(allowed)} "
                    f"(finest first, separated by |), not {level_text!r}"
                )
            if list(levels) != sorted(set(levels), key=allowed.index):
                raise ValueError(
                    f"list the levels of generalise:{what.value} once each, finest first "
                    f"({' | '.join(allowed)})"
                )
            return cls(TransformKind.GENERALISE, what=what, levels=levels)
        raise ValueError(
            f"unknown transformation {text!r}; use keep, drop, pseudonymise:<id_type> "
            "or generalise:<birth_date|postcode|timestamp>:<level>"
        )

    def __str__(self) -> str:
        if self.kind is TransformKind.PSEUDONYMISE:
            assert self.id_type is not None
            return f"pseudonymise:{self.id_type.value}"
        if self.kind is TransformKind.GENERALISE:
            assert self.what is not None
            return f"generalise:{self.what.value}:{'|'.join(self.levels)}"
        return self.kind.value
