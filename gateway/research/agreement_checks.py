"""Cross-reference checks of a research agreement, reported as ``file:line: message``.

Shape (types, required keys) is pydantic's; these checks need the whole agreement and
the policy vocabulary: partner kinds, researchers' partners, instruments, columns,
quasi-identifiers, linkage, DUO terms.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.identifiers import IdType
from gateway.research.agreement_parts import (
    PROVENANCE_FIELDS,
    Column,
    DuoCondition,
    EventCheck,
    Instrument,
    InstrumentKind,
    Linkage,
    PartnerRef,
    Prohibition,
    ResearcherEntitlement,
)
from gateway.research.duo import (
    DUO_TERMS,
    ETHICS_APPROVAL,
    PERMISSIONS,
    PROJECT_SPECIFIC,
    PUBLICATION_MORATORIUM,
    TIME_LIMIT,
    USER_SPECIFIC,
)
from gateway.research.fields import FieldKind, field_kind
from gateway.research.transforms import Generalisable, TransformKind
from gateway.yamlsource import LineDict, LineList, SourceProblem

if TYPE_CHECKING:
    from gateway.research.agreements import Agreement, AgreementVocabulary


def line_of(doc: Any, *path: str | int) -> int:
    """Return the line of the deepest existing node along ``path`` in a yamlsource document."""
    node, line = doc, getattr(doc, "line", 1)
    for part in path:
        if isinstance(node, LineDict) and isinstance(part, str):
            line = node.line_of(part)
            if part not in node:
                break
            node = node[part]
        elif isinstance(node, LineList) and isinstance(part, int) and 0 <= part < len(node):
            line = node.item_lines[part]
            node = node[part]
        else:
            break
    return line


class Checker:
    """Cross-reference checks that need the whole agreement and the vocabulary."""

    def __init__(
        self, path: Path, doc: LineDict, agreement: Agreement, vocabulary: AgreementVocabulary
    ) -> None:
        self.path, self.doc, self.a, self.vocab = path, doc, agreement, vocabulary
        self.problems: list[SourceProblem] = []

    def add(self, message: str, *path: str | int) -> None:
        """Record a problem at the line of ``path`` in the document."""
        self.problems.append(SourceProblem(self.path, line_of(self.doc, *path), message))

    def run(self) -> list[SourceProblem]:
        """Return every cross-reference problem of the agreement (empty if none)."""
        self._partners()
        self._names()
        self._instruments()
        self._columns()
        self._disclosure()
        self._conditions()
        return self.problems

    def _partners(self) -> None:
        seen: set[str] = set()
        for section in ("science_partners", "providers"):
            refs: tuple[PartnerRef, ...] = getattr(self.a, section)
            for i, ref in enumerate(refs):
                if ref.kind not in self.vocab.partner_kinds:
                    known = ", ".join(sorted(self.vocab.partner_kinds))
                    self.add(
                        f"unknown partner kind {ref.kind!r} (known: {known})", section, i, "kind"
                    )
                elif section == "science_partners" and ref.kind != "science":
                    self.add(
                        f"science partner {ref.partner!r} must be of kind science",
                        section,
                        i,
                        "kind",
                    )
                if ref.partner in seen:
                    self.add(f"partner {ref.partner!r} is listed twice", section, i, "partner")
                seen.add(ref.partner)
        science = {p.partner for p in self.a.science_partners}
        for i, researcher in enumerate(self.a.researchers):
            if researcher.partner not in science:
                self.add(
                    f"researcher {researcher.name!r} works for {researcher.partner!r}, "
                    "which is not a science partner of this agreement",
                    "researchers",
                    i,
                    "partner",
                )
        for i, reviewer in enumerate(self.a.publication_review.reviewers):
            if reviewer not in self.a.provider_ids:
                self.add(
                    f"reviewer {reviewer!r} is not a provider of this agreement",
                    "publication_review",
                    "reviewers",
                    i,
                )
        if self.a.publication_review.required and not self.a.publication_review.reviewers:
            self.add("a required publication review needs reviewers", "publication_review")
        missing = [p.value for p in Prohibition if p not in self.a.prohibitions]
        if missing:
            self.add(f"prohibitions must include {', '.join(missing)}", "prohibitions")

    def _names(self) -> None:
        if self.a.purpose not in self.vocab.purposes:
            self.add(f"unknown purpose {self.a.purpose!r}", "purpose")
        if self.a.legal_basis not in self.vocab.legal_bases:
            self.add(f"unknown legal basis {self.a.legal_basis!r}", "legal_basis")
        for i, category in enumerate(self.a.categories):
            if category not in self.vocab.categories:
                self.add(f"unknown data category {category!r}", "categories", i)

    def _instruments(self) -> None:
        ids: set[str] = set()
        delivered: set[tuple[str, str]] = set()
        for i, inst in enumerate(self.a.instruments):
            if inst.id in ids:
                self.add(f"instrument id {inst.id!r} is used twice", "instruments", i, "id")
            ids.add(inst.id)
            for j, provider in enumerate(inst.providers):
                if provider not in self.a.provider_ids:
                    self.add(
                        f"{provider!r} is not a provider of this agreement",
                        "instruments",
                        i,
                        "providers",
                        j,
                    )
                if (provider, inst.category) in delivered:
                    self.add(
                        f"{provider!r} delivers {inst.category!r} in two instruments",
                        "instruments",
                        i,
                        "providers",
                        j,
                    )
                delivered.add((provider, inst.category))
            if inst.category not in self.a.categories:
                self.add(
                    f"category {inst.category!r} is not in the agreement's categories",
                    "instruments",
                    i,
                    "category",
                )
            if inst.legal_basis not in self.vocab.legal_bases:
                self.add(
                    f"unknown legal basis {inst.legal_basis!r}", "instruments", i, "legal_basis"
                )
            else:
                self._own_basis(i, inst)
            if inst.kind is InstrumentKind.QUESTIONNAIRE and inst.consent_text_version is None:
                self.add("a questionnaire needs consent_text_version", "instruments", i)
            if (
                inst.kind is InstrumentKind.QUERY
                and "consent_text_version" in self.doc["instruments"][i]
            ):
                self.add(
                    "only questionnaires have a consent text",
                    "instruments",
                    i,
                    "consent_text_version",
                )
            schema = self.vocab.category_fields.get(inst.category, frozenset())
            for j, name in enumerate(inst.fields):
                if name not in schema:
                    self.add(
                        f"category {inst.category!r} has no field {name!r}",
                        "instruments",
                        i,
                        "fields",
                        j,
                    )
                if name in PROVENANCE_FIELDS:
                    self.add(
                        f"{name!r} is added by the gateway, not delivered",
                        "instruments",
                        i,
                        "fields",
                        j,
                    )

    def _own_basis(self, index: int, inst: Instrument) -> None:
        """Every provider of an instrument must invoke the instrument's legal basis itself."""
        invokers = self.vocab.invoked_by.get(inst.legal_basis)
        if invokers is None:
            return  # a vocabulary built without invoked_by (tests); the policy still decides
        kinds = {p.partner: p.kind for p in self.a.providers}
        for provider in inst.providers:
            kind = kinds.get(provider)
            # unknown providers and kinds are reported by _partners and the loop above
            if kind in self.vocab.partner_kinds and kind not in invokers:
                self.add(
                    f"{provider!r} is a {kind} and cannot deliver under legal basis "
                    f"{inst.legal_basis!r}: only {', '.join(sorted(invokers))} invoke it "
                    "(invoked_by in the vocabulary)",
                    "instruments",
                    index,
                    "legal_basis",
                )

    def _columns(self) -> None:
        delivered = {f for inst in self.a.instruments for f in inst.fields}
        names: set[str] = set()
        for i, col in enumerate(self.a.columns):
            where = ("columns", i)
            if col.name in names:
                self.add(f"column {col.name!r} is defined twice", *where, "name")
            names.add(col.name)
            for j, src in enumerate(col.source):
                if src not in delivered and src not in PROVENANCE_FIELDS:
                    self.add(
                        f"column {col.name!r}: no instrument delivers field {src!r}",
                        *where,
                        "source",
                        *(() if len(col.source) == 1 else (j,)),
                    )
            self._transform(i, col)

    def _transform(self, i: int, col: Column) -> None:
        t, kinds = col.transform, [field_kind(s) for s in col.source]
        where = ("columns", i, "transform")
        if t.kind is not TransformKind.KEEP and (
            col.values is not None or col.value_range is not None
        ):
            self.add(f"column {col.name!r}: only kept columns take values or a range", *where)
        if t.kind is TransformKind.DROP:
            return
        if t.kind is TransformKind.PSEUDONYMISE:
            if t.id_type is IdType.NAME_BIRTHDATE:
                if len(col.source) != 2 or kinds[1] is not FieldKind.QUASI_IDENTIFIER:
                    self.add(
                        f"column {col.name!r}: pseudonymise:name_birthdate takes two "
                        "sources, a name and a birth date",
                        "columns",
                        i,
                        "source",
                    )
            elif len(col.source) != 1:
                self.add(f"column {col.name!r}: {t} takes one source", "columns", i, "source")
            if FieldKind.FREE_TEXT in kinds or FieldKind.PROVENANCE in kinds:
                self.add(f"column {col.name!r}: {t} needs an identifier field", *where)
            return
        if len(col.source) != 1:
            self.add(f"column {col.name!r}: {t} takes one source", "columns", i, "source")
            return
        source, kind = col.source[0], kinds[0]
        bounded = col.values is not None or col.value_range is not None
        if t.kind is TransformKind.KEEP:
            if col.values is not None and col.value_range is not None:
                self.add(f"column {col.name!r}: give values or a range, not both", "columns", i)
            elif not bounded and kind is FieldKind.CODED:
                self.add(
                    f"column {col.name!r} keeps {source!r} without a code list: give its "
                    "values (or a range), so that free text and rare values cannot leave",
                    "columns",
                    i,
                )
            elif col.values is not None and len(set(col.values)) != len(col.values):
                self.add(f"column {col.name!r}: a value is listed twice", "columns", i, "values")
            if kind is FieldKind.DIRECT_IDENTIFIER:
                self.add(
                    f"column {col.name!r} keeps the direct identifier {source!r}; "
                    "pseudonymise or drop it",
                    *where,
                )
            elif kind in (FieldKind.QUASI_IDENTIFIER, FieldKind.TIMESTAMP):
                self.add(f"column {col.name!r} keeps {source!r} in full; generalise it", *where)
            elif kind is FieldKind.FREE_TEXT:
                self.add(
                    f"column {col.name!r}: free text ({source!r}) is never released; drop it",
                    *where,
                )
            return
        expected = {
            Generalisable.BIRTH_DATE: source == "birth_date",
            Generalisable.POSTCODE: source == "postcode",
            Generalisable.TIMESTAMP: kind is FieldKind.TIMESTAMP,
        }
        assert t.what is not None
        if not expected[t.what]:
            self.add(
                f"column {col.name!r}: generalise:{t.what.value} cannot apply to {source!r}", *where
            )
        if len(t.levels) > 1 and col.name not in self.a.disclosure.checked_attributes:
            self.add(f"column {col.name!r}: only quasi-identifiers may list several levels", *where)

    def _disclosure(self) -> None:
        columns = {c.name: c for c in self.a.columns}
        seen: set[str] = set()
        for i, name in enumerate(self.a.disclosure.quasi_identifiers):
            where = ("disclosure", "quasi_identifiers", i)
            col = columns.get(name)
            if name in seen:
                self.add(f"quasi-identifier {name!r} is listed twice", *where)
            seen.add(name)
            if col is None:
                self.add(f"quasi-identifier {name!r} is not a column", *where)
            elif col.transform.kind is not TransformKind.GENERALISE:
                self.add(
                    f"quasi-identifier {name!r} is not generalised "
                    f"(its transformation is {col.transform})",
                    *where,
                )
        for section in ("sensitive", "event_quasi_identifiers"):
            names: tuple[str, ...] = getattr(self.a.disclosure, section)
            for i, name in enumerate(names):
                col = columns.get(name)
                if col is None or not col.released:
                    self.add(
                        f"{section}: {name!r} is not a released column", "disclosure", section, i
                    )
                elif col.transform.kind is TransformKind.PSEUDONYMISE:
                    self.add(f"{section}: {name!r} is a pseudonym", "disclosure", section, i)
                elif section == "sensitive" and col.transform.kind is not TransformKind.KEEP:
                    self.add(
                        f"sensitive: {name!r} must be a kept (coded) column",
                        "disclosure",
                        section,
                        i,
                    )
        if self.a.disclosure.linkage is Linkage.LINKED:
            self._linked_events()
        distinct = self.a.disclosure.count_distinct
        if distinct is not None:
            col = columns.get(distinct)
            if col is None or col.transform.kind is not TransformKind.PSEUDONYMISE:
                self.add(
                    f"count_distinct {distinct!r} must be a pseudonymised column",
                    "disclosure",
                    "count_distinct",
                )

    def _linked_events(self) -> None:
        """A linked release holds the m-event attacker to k, an event at least as released.

        One pseudonym links a person's rows, so whoever knows one event of a person (from
        a news item or the provider's own record) can pick out the person's history: the
        attributes that tell when and from whom an event came (the provenance columns and
        every generalised timestamp) must be event quasi-identifiers, and the check must
        be enforced. ``report`` stays for unlinked releases, where no history is followed.
        """
        d = self.a.disclosure
        if d.event_check is EventCheck.REPORT:
            self.add(
                "event_check: report would release linked histories that an attacker who "
                f"knows {d.known_events} event(s) of a person can single out; use enforce, "
                "or linkage: unlinked",
                "disclosure",
                "event_check",
            )
        declared = {*d.quasi_identifiers, *d.event_quasi_identifiers}
        for col in self.a.columns:
            timed = col.transform.what is Generalisable.TIMESTAMP
            if not col.released or col.name in declared:
                continue
            if timed or set(col.source) & set(PROVENANCE_FIELDS):
                self.add(
                    f"column {col.name!r} tells when or from whom an event came: a linked "
                    "release must list it in disclosure.event_quasi_identifiers",
                    "disclosure",
                    "event_quasi_identifiers",
                )

    def _conditions(self) -> None:
        seen: set[str] = set()
        permissions = [i for i, c in enumerate(self.a.conditions) if c.is_permission]
        if not permissions:
            known = ", ".join(f"{DUO_TERMS[t].shorthand} ({t})" for t in sorted(PERMISSIONS))
            self.add(
                f"conditions need one DUO permission term, what the data may be used for: {known}",
                "conditions",
            )
        for i in permissions[1:]:
            self.add(
                f"{self.a.conditions[i].term}: only one DUO permission term per agreement",
                "conditions",
                i,
                "term",
            )
        for i, cond in enumerate(self.a.conditions):
            if cond.term in seen:
                self.add(f"DUO term {cond.term} is listed twice", "conditions", i, "term")
            seen.add(cond.term)
            self._parameters(i, cond)

    def _parameters(self, i: int, cond: DuoCondition) -> None:
        """Each parameter belongs to the terms that use it, and those terms need theirs."""
        uses = {
            "months": cond.term == TIME_LIMIT,
            "until": cond.term in (TIME_LIMIT, PUBLICATION_MORATORIUM),
            "reference": cond.term == ETHICS_APPROVAL,
            "project": cond.term == PROJECT_SPECIFIC,
        }
        for name, used in uses.items():
            if not used and getattr(cond, name) is not None:
                self.add(f"{cond.term} ({cond.label}) takes no {name}", "conditions", i, name)
        if cond.term == TIME_LIMIT and (cond.months is None) == (cond.until is None):
            self.add(f"{cond.term} (time limit on use) needs months or until", "conditions", i)
        if cond.term == PUBLICATION_MORATORIUM and cond.until is None and cond.detail is None:
            self.add(f"{cond.term} (publication moratorium) needs until or detail", "conditions", i)
        if cond.term == PROJECT_SPECIFIC and cond.project not in (None, self.a.project):
            self.add(
                f"{cond.term} (project specific) names project {cond.project!r}, but this "
                f"agreement is for project {self.a.project!r}",
                "conditions",
                i,
                "project",
            )
        if cond.term == USER_SPECIFIC and self.a.researchers_are is not ResearcherEntitlement.NAMED:
            self.add(f"{cond.term} (user specific) needs researchers_are: named", "conditions", i)
