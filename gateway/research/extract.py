"""The extract pipeline: select, pseudonymise, generalise, check disclosure, write CSV and Parquet.

It streams in bounded memory with two passes, column by column with Arrow compute:

Pass 1 reads the input once, in batches. It keeps only the rows the agreement and the
consents allow; keeps only the agreed columns (so direct identifiers, free text and
consent metadata never go further); replaces identifiers with keyed pseudonyms (once
per distinct value in a batch: Python normalises and calls the pseudonymiser, Arrow
maps the results back); computes every allowed level of each quasi-identifier; counts
the equivalence classes (rows and distinct subjects); and spills the transformed batch
to an Arrow IPC file in the private work folder.

Pass 1 also links the rows into people: rows sharing any pseudonym value are one person
(``PersonLinks``). A row without any subject key is not released (``no-subject-key``).
A questionnaire respondent who withdrew is removed as a person: every row linked to
them, whichever provider sent it. The spill is split at random into buckets.

Between the passes the disclosure check picks the generalisation (or applies the
project's fixed one), counting people, and refuses the release if too many people or
rows would be suppressed. Kept values held by fewer than k released people become
``other`` (or empty, when even ``other`` holds fewer than k people).

Pass 2 reads the buckets one by one, shuffles each (a per-release random seed: rows
leave in no order of submission, provider or person), drops every row of a suppressed
or withdrawn person, and writes ``data.csv`` and ``data.parquet``; it also measures the
l-diversity of the sensitive attributes and the re-identification risk of an attacker
who knows the quasi-identifiers and m of a person's events (``RiskReport``).

Memory holds one batch (or one bucket) plus the class counts (three integers per
distinct class and anchor pair: roughly one per person), never the whole input.

Rows the gateway stored on intake arrive already pseudonymised (``pseudonymised`` in the
request): each pseudonymised column then reads its pseudonyms from the input field
``pseudonym_field(column)`` (e.g. ``bsn:bsn``, ``name+birth_date:name_birthdate``), which
intake filled with the same project key, and its raw sources are never read.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from fractions import Fraction
from itertools import islice
from pathlib import Path
from typing import Any, Protocol, TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from gateway.clock import as_utc
from gateway.errors import InvalidInputError
from gateway.identifiers import NORMALISERS, IdType, birth_date, canonical_name
from gateway.research.agreements import Agreement, Column, InstrumentKind
from gateway.research.disclosure import (
    ClassCounter,
    ClassKey,
    Int64s,
    Lattice,
    NodeResult,
    People,
    PersonLinks,
    PersonPairs,
    choose_levels,
    distinct,
)
from gateway.research.errors import GeneralisationStateError
from gateway.research.generalise import (
    DEFAULT_AGE_BANDS,
    GeneralisationState,
    generalise,
    strings,
)
from gateway.research.pseudonyms import Pseudonymiser
from gateway.research.transforms import TransformKind

ROW_BATCH = 16_384
BUCKETS = 16
"""Random buckets of the spill; pass 2 shuffles one bucket at a time (bounded memory)."""
ANCHOR = "\x00anchor"
"""The spill column holding each row's anchor (never written out)."""
CLASS_ID = "\x00class"
"""The spill column holding each row's finest class (never written out)."""
OTHER = "other"
"""What a kept value held by fewer than k released people becomes."""
SEED_BYTES = 32
MAX_CODED_LENGTH = 100
"""Kept values longer than this look like free text and are blanked (and counted)."""

CSV_NAME = "data.csv"
PARQUET_NAME = "data.parquet"
CONSENT_FIELDS = (
    "respondent_id",
    "birth_date",
    "consent_version",
    "consent_date",
    "parental_consent",
    "consent_withdrawn",
)
_SEP = "\x1f"  # joins key parts; never part of a provider, category or generalised value
_NULL_MARK = "\x00"
_NULL_STRING = pa.scalar(None, pa.string())

ColumnBatch: TypeAlias = Mapping[str, Any] | pa.RecordBatch
"""A batch of input rows as columns: field -> Arrow array or Python sequence (equal lengths)."""


class ProgressSink(Protocol):
    """Receives progress of a long extract (the CLI shows it as a Rich progress bar)."""

    def start(self, phase: str, total: int | None) -> None:
        """A new phase begins; ``total`` rows if known."""
        ...

    def advance(self, rows: int) -> None:
        """``rows`` more rows of the current phase are done."""
        ...


class _NoProgress:
    def start(self, phase: str, total: int | None) -> None:
        pass

    def advance(self, rows: int) -> None:
        pass


class Exclusion(StrEnum):
    """Why an input row is not released (counted in the manifest)."""

    PROVIDER_NOT_IN_AGREEMENT = "provider-not-in-agreement"
    CATEGORY_NOT_IN_AGREEMENT = "category-not-in-agreement"
    NO_PROVIDER_CONSENT = "no-provider-consent"
    NO_RESPONDENT_CONSENT = "no-respondent-consent"
    NO_PARENTAL_CONSENT = "no-parental-consent"
    RESPONDENT_WITHDRAWN = "respondent-withdrawn"
    NO_SUBJECT_KEY = "no-subject-key"


@dataclass(frozen=True, slots=True)
class ExtractRequest:
    """One release under an agreement, with the consents as they stand at release time.

    ``consenting_providers`` are the partners whose privacy officers consented;
    ``withdrawn_respondents`` the questionnaire respondent ids whose consent was
    withdrawn; ``state`` the project's generalisation state (``None`` for the first
    release, which fixes it). ``pseudonymised`` says the input carries pseudonyms
    computed on intake (see ``pseudonym_field``) instead of raw identifiers;
    ``excluded_upstream`` counts rows the caller left out before the pipeline, by
    exclusion reason, so that the manifest still accounts for them. ``shuffle_seed``
    orders the released rows (None: 32 bytes from ``os.urandom``; tests pass one).
    """

    agreement: Agreement
    release_id: str
    at: datetime
    policy_version: str
    consenting_providers: frozenset[str]
    withdrawn_respondents: frozenset[str] = frozenset()
    state: GeneralisationState | None = None
    pseudonymised: bool = False
    excluded_upstream: Mapping[str, int] = field(default_factory=dict)
    shuffle_seed: bytes | None = None


@dataclass
class ExtractStats:
    """Counts of one extract; all of them go into the manifest."""

    rows_in: int = 0
    rows_selected: int = 0
    rows_suppressed: int = 0
    rows_out: int = 0
    pseudonyms_computed: int = 0
    excluded: Counter[str] = field(default_factory=Counter)
    invalid_values: Counter[str] = field(default_factory=Counter)
    people_out: int = 0
    withdrawals_applied: int = 0
    values_merged: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class RiskReport:
    """The person-level risk of the released files, measured on what was written.

    ``prosecutor_max`` is 1 / the smallest class of people over the quasi-identifiers;
    ``event_*`` the same for an attacker who also knows ``m`` of a person's events
    (category and week): the largest risk and the share of people whose risk exceeds
    1/k. ``l_diversity`` gives, per sensitive attribute, the fewest distinct values in
    any class; ``information_loss`` the share of generalisation steps taken (0: finest
    levels everywhere, 1: coarsest).
    """

    k: int
    m: int
    people: int
    prosecutor_max: str
    prosecutor_people_above: int
    event_max: str
    event_people_above: int
    l_diversity: dict[str, int | None]
    information_loss: str

    def share(self, count: int) -> str:
        """Return ``count`` as a share of the released people (decimal text)."""
        return f"{count / self.people if self.people else 0.0:.6f}"


@dataclass(frozen=True)
class ExtractFiles:
    """What ``write_extract`` produced: plaintext files, counts, the check and the state."""

    csv: Path
    parquet: Path
    stats: ExtractStats
    disclosure: NodeResult
    state: GeneralisationState
    risk: RiskReport | None = None


AS_KEPT = "as-kept"
"""The one level of a kept column that the disclosure check runs over (an event QI)."""


def _ladder(column: Column) -> tuple[str, ...]:
    """Return the levels the check may choose for ``column``: its generalisations, or as kept."""
    return column.transform.levels or (AS_KEPT,)


def pseudonym_field(column: Column) -> str:
    """Return the input field that carries ``column``'s pseudonyms when computed on intake.

    Named by the sources and the identifier type (``bsn:bsn``,
    ``name+birth_date:name_birthdate``), so intake and release agree on it. Raises
    ValueError for a column that is not pseudonymised.
    """
    if column.transform.id_type is None:
        raise ValueError(f"column {column.name} is not pseudonymised")
    return f"{'+'.join(column.source)}:{column.transform.id_type.value}"


def _source_fields(agreement: Agreement, pseudonymised: bool) -> set[str]:
    fields: set[str] = set()
    for col in agreement.released_columns:
        if pseudonymised and col.transform.kind is TransformKind.PSEUDONYMISE:
            fields.add(pseudonym_field(col))
        else:
            fields.update(col.source)
    return fields


def input_fields(agreement: Agreement, *, pseudonymised: bool = False) -> list[str]:
    """Return every input field the pipeline reads for ``agreement``.

    With ``pseudonymised`` the identifier sources are replaced by their pseudonym fields.
    """
    sources = _source_fields(agreement, pseudonymised)
    return sorted({*sources, *CONSENT_FIELDS, "provider", "category"})


def batches_from_rows(
    rows: Iterable[Mapping[str, Any]], fields: Iterable[str], size: int = ROW_BATCH
) -> Iterator[dict[str, list[Any]]]:
    """Yield column batches of ``fields`` from an iterator of row mappings."""
    names = tuple(fields)
    iterator = iter(rows)
    while chunk := list(islice(iterator, size)):
        yield {name: [row.get(name) for row in chunk] for name in names}


def _age_on(born: date, day: date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def _as_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip()[:10])
        except ValueError:
            return None
    return None


MEMO_LIMIT = 1 << 16


class _NameBirthdateKeys:
    """Canonical ``name|birth date`` keys, memoising both parts for the run.

    Names and birth dates recur far more often than their combinations; folding each
    distinct name once is most of the cost. The memo is bounded and dies with the run.
    """

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.days: dict[str, str] = {}

    def __call__(self, value: str) -> str:
        person, _, born = value.rpartition(_SEP)
        name = self.names.get(person)
        if name is None:
            name = canonical_name(person)
            if len(self.names) >= MEMO_LIMIT:
                self.names.clear()
            self.names[person] = name
        day = self.days.get(born)
        if day is None:
            day = birth_date(born).isoformat()
            if len(self.days) >= MEMO_LIMIT:
                self.days.clear()
            self.days[born] = day
        return f"{name}|{day}"


def _count(mask: pa.Array) -> int:
    return int(pc.sum(pc.cast(mask, pa.int64())).as_py() or 0)


class _Batch:
    """One input batch: its columns as Arrow string arrays, converted once on demand."""

    def __init__(self, batch: ColumnBatch) -> None:
        self.columns: Mapping[str, Any] = (
            {name: batch.column(name) for name in batch.schema.names}
            if isinstance(batch, pa.RecordBatch)
            else batch
        )
        if "provider" not in self.columns:
            raise InvalidInputError("input rows need a provider")
        self._strings: dict[str, pa.Array] = {}
        self.size = len(self.columns["provider"])

    def text(self, name: str) -> pa.Array:
        """Return field ``name`` as a string array (all null if the batch lacks it)."""
        found = self._strings.get(name)
        if found is None:
            raw = self.columns.get(name)
            found = pa.nulls(self.size, pa.string()) if raw is None else strings(raw)
            if len(found) != self.size:
                raise InvalidInputError("input columns differ in length")
            self._strings[name] = found
        return found

    def python(self, name: str, indices: list[int]) -> list[Any]:
        """Return the original Python values of field ``name`` at ``indices``."""
        raw = self.columns.get(name)
        if raw is None:
            return [None] * len(indices)
        if isinstance(raw, pa.Array | pa.ChunkedArray):
            return list(raw.take(pa.array(indices, pa.int64())).to_pylist())
        return [raw[i] for i in indices]


class _Plan:
    """Everything about an agreement the per-batch work needs, computed once."""

    def __init__(self, request: ExtractRequest, pseudonymiser: Pseudonymiser) -> None:
        a = request.agreement
        self.request, self.agreement, self.pseudonymiser = request, a, pseudonymiser
        keys, owners = [], []
        for index, inst in enumerate(a.instruments):
            for provider in inst.providers:
                keys.append(f"{provider}{_SEP}{inst.category}")
                owners.append(index)
        self.lookup_keys = pa.array(keys, pa.string())
        self.lookup_owner = pa.array(owners, pa.int32())
        self.provider_set = pa.array(sorted(a.provider_ids), pa.string())
        self.consenting_set = pa.array(
            sorted(request.consenting_providers & a.provider_ids), pa.string()
        )
        self.questionnaires = pa.array(
            [
                i
                for i, inst in enumerate(a.instruments)
                if inst.kind is InstrumentKind.QUESTIONNAIRE
            ],
            pa.int32(),
        )
        self.withdrawn = request.withdrawn_respondents
        every = frozenset(range(len(a.instruments)))
        self.field_gate: dict[str, pa.Array | None] = {"provider": None, "category": None}
        for inst in a.instruments:
            for name in inst.fields:
                owners_of = frozenset(i for i, x in enumerate(a.instruments) if name in x.fields)
                self.field_gate[name] = (
                    None if owners_of == every else pa.array(sorted(owners_of), pa.int32())
                )
        self.pass_through = request.pseudonymised
        self.sources = sorted(_source_fields(a, request.pseudonymised))
        if request.pseudonymised:
            for col in a.released_columns:
                if col.transform.kind is TransformKind.PSEUDONYMISE:
                    # filled on intake only where the row's instrument delivered the sources
                    self.field_gate[pseudonym_field(col)] = None
        self.released = a.released_columns
        # the QIs, and the event QIs when the m-event attacker is held to k
        self.qi = a.disclosure.checked_attributes
        self.lattice = Lattice(self.qi, tuple(_ladder(a.column(q)) for q in self.qi))
        self.state = self._initial_state(request)
        self.fixed = self._fixed_node(request.state)
        self.key_names = self.lattice.key_names
        self.spill_names: list[str] = []
        for col in self.released:
            if col.name in self.qi:
                self.spill_names.extend(f"{col.name}@{level}" for level in _ladder(col))
            else:
                self.spill_names.append(col.name)
        self.spill_schema = pa.schema(
            [(name, pa.string()) for name in self.spill_names] + [(ANCHOR, pa.int64())]
        )
        self.file_schema = self.spill_schema.append(pa.field(CLASS_ID, pa.int32()))
        self.output_schema = pa.schema([(c.name, pa.string()) for c in self.released])
        self.name_keys = _NameBirthdateKeys()
        self.link_columns = [
            c.name for c in self.released if c.transform.kind is TransformKind.PSEUDONYMISE
        ]
        self.coded = [c for c in self.released if c.transform.kind is TransformKind.KEEP]
        self.allowed_values = {
            c.name: pa.array(allowed, pa.string())
            for c in self.coded
            if (allowed := a.allowed_values(c)) is not None
        }
        self.sensitive = a.disclosure.sensitive
        self.event_columns = a.disclosure.event_quasi_identifiers
        self.ranges = {c.name: c.value_range for c in self.coded if c.value_range is not None}
        self._rows_seen = 0

    def spill_column(self, name: str) -> str:
        """Return the spill column of a kept column (``<name>@as-kept`` when it is checked)."""
        return f"{name}@{AS_KEPT}" if name in self.qi else name

    def _initial_state(self, request: ExtractRequest) -> GeneralisationState:
        a, given = request.agreement, request.state
        if given is None:
            return GeneralisationState(
                agreement=a.id,
                project=a.project,
                levels={},
                reference_date=as_utc(request.at).date(),
                age_bands=DEFAULT_AGE_BANDS,
            )
        if given.project != a.project or given.agreement != a.id:
            raise GeneralisationStateError(
                f"the generalisation state belongs to {given.agreement}/{given.project}, "
                f"not to {a.id}/{a.project}"
            )
        return given

    def _fixed_node(self, state: GeneralisationState | None) -> tuple[int, ...] | None:
        if state is None:
            return None
        if set(state.levels) != set(self.qi):
            raise GeneralisationStateError(
                "the generalisation state fixes "
                f"{', '.join(sorted(state.levels)) or 'nothing'}, but the agreement's "
                f"quasi-identifiers are {', '.join(self.qi)}; a changed agreement needs a "
                "new project"
            )
        try:
            return self.lattice.node_of(dict(state.levels))
        except ValueError:
            raise GeneralisationStateError(
                "the generalisation state uses a level the agreement no longer allows"
            ) from None

    def select(self, batch: _Batch, stats: ExtractStats) -> tuple[pa.Array, pa.Array, pa.Array]:
        """Return the keep-mask, the withdrawn-mask and each row's instrument index (or null).

        Withdrawn rows are not released but still linked, so that the withdrawn person
        leaves the release in every provider's rows.
        """
        provider, category = batch.text("provider"), batch.text("category")
        if provider.null_count or category.null_count:
            raise InvalidInputError(
                "input rows need a provider and a category (their provenance); "
                f"{max(provider.null_count, category.null_count)} rows of a batch have none"
            )
        instrument = pc.take(
            self.lookup_owner,
            pc.index_in(pc.binary_join_element_wise(provider, category, _SEP), self.lookup_keys),
        )
        known = pc.is_valid(instrument)
        in_agreement = pc.is_in(provider, value_set=self.provider_set)
        consented = pc.is_in(provider, value_set=self.consenting_set)
        excluded = stats.excluded
        unknown = pc.invert(known)
        outside = _count(pc.and_(unknown, pc.invert(in_agreement)))
        excluded[Exclusion.PROVIDER_NOT_IN_AGREEMENT] += outside
        excluded[Exclusion.CATEGORY_NOT_IN_AGREEMENT] += _count(unknown) - outside
        excluded[Exclusion.NO_PROVIDER_CONSENT] += _count(pc.and_(known, pc.invert(consented)))
        keep = pc.and_(known, consented)
        gone = pa.nulls(batch.size, pa.bool_()).fill_null(False)
        asked = pc.and_(keep, pc.is_in(instrument, value_set=self.questionnaires))
        if _count(asked):
            keep, gone = self._respondents(batch, keep, asked, instrument, stats)
        stats.rows_in += batch.size
        stats.rows_selected += _count(keep)
        for key in [k for k, v in excluded.items() if v == 0]:
            del excluded[key]
        return keep, gone, instrument

    def _respondents(
        self,
        batch: _Batch,
        keep: pa.Array,
        asked: pa.Array,
        instrument: pa.Array,
        stats: ExtractStats,
    ) -> tuple[pa.Array, pa.Array]:
        """Drop questionnaire rows without valid respondent consent; return keep and withdrawn.

        Withdrawn rows are counted later, with every other row of their person.
        """
        rows = pc.indices_nonzero(asked).to_pylist()
        values = {name: batch.python(name, rows) for name in CONSENT_FIELDS}
        owners = instrument.take(pa.array(rows, pa.int64())).to_pylist()
        mask = keep.to_pylist()
        gone = [False] * len(mask)
        for j, row in enumerate(rows):
            problem = self._respondent_problem({n: v[j] for n, v in values.items()}, owners[j])
            if problem is Exclusion.RESPONDENT_WITHDRAWN:
                gone[row] = True
            elif problem is not None:
                stats.excluded[problem] += 1
            mask[row] = mask[row] and problem is None
        return pa.array(mask, pa.bool_()), pa.array(gone, pa.bool_())

    def _respondent_problem(self, row: dict[str, Any], owner: int) -> Exclusion | None:
        respondent = row["respondent_id"]
        if row["consent_withdrawn"] in (True, "true", "True") or (
            respondent is not None and str(respondent) in self.withdrawn
        ):
            return Exclusion.RESPONDENT_WITHDRAWN
        instrument = self.agreement.instruments[owner]
        given_on = _as_date(row["consent_date"])
        if row["consent_version"] != instrument.consent_text_version or given_on is None:
            return Exclusion.NO_RESPONDENT_CONSENT
        born = _as_date(row["birth_date"])
        minor = born is None or _age_on(born, given_on) < instrument.parental_consent_below
        if minor and row["parental_consent"] not in (True, "true", "True"):
            return Exclusion.NO_PARENTAL_CONSENT
        return None

    def field(self, batch: _Batch, keep: pa.Array, instrument: pa.Array, name: str) -> pa.Array:
        """Return field ``name`` of the kept rows; null where their instrument lacks it."""
        values = batch.text(name).filter(keep)
        gate = self.field_gate.get(name, pa.array([], pa.int32()))
        if gate is None:
            return values
        delivers = pc.is_in(instrument.filter(keep), value_set=gate)
        return pc.if_else(delivers, values, _NULL_STRING)

    def transform(self, batch: ColumnBatch, stats: ExtractStats) -> _Transformed:
        """Return the batch transformed: spill columns, class keys, anchors, withdrawn rows.

        Rows without any subject key are left out here and counted (``no-subject-key``).
        """
        data = _Batch(batch)
        keep, gone, instrument = self.select(data, stats)
        process = pc.or_(keep, gone)
        fields = {name: self.field(data, process, instrument, name) for name in self.sources}
        columns: dict[str, pa.Array] = {}
        hashes: dict[str, pa.Array] = {}
        for col in self.released:
            self._column(col, fields, columns, hashes, stats)
        rows = _count(process)
        gone = gone.filter(process)
        if self.link_columns:
            links = [hashes[name] for name in self.link_columns]
            # only a subject key makes a person: a respondent id alone links nothing else
            keyed = pc.is_valid(pc.coalesce(*links) if len(links) > 1 else links[0])
            respondent = self.field(data, process, instrument, RESPONDENT)
            links.append(_hashes(respondent, RESPONDENT))
            anchors = pc.coalesce(*links)
        else:
            # no pseudonyms: nobody can link rows, so each row is a person of its own
            anchors = pa.array(np.arange(self._rows_seen, self._rows_seen + rows), pa.int64())
            links = [anchors]
            keyed = pc.is_valid(anchors)
            self._rows_seen += rows
        unkeyed = pc.invert(keyed)
        nameless = _count(pc.and_(unkeyed, pc.invert(gone)))
        if nameless:
            stats.excluded[Exclusion.NO_SUBJECT_KEY] += nameless
            stats.rows_selected -= nameless
        nameless_gone = _count(pc.and_(unkeyed, gone))
        if nameless_gone:
            stats.excluded[Exclusion.RESPONDENT_WITHDRAWN] += nameless_gone
        spill = pa.RecordBatch.from_arrays(
            [columns[name] for name in self.spill_names] + [anchors], schema=self.spill_schema
        )
        if nameless or not pc.all(keyed).as_py():
            spill = spill.filter(keyed)
            links = [link.filter(keyed) for link in links]
            gone = gone.filter(keyed)
        return _Transformed(spill, links, gone)

    def _column(
        self,
        col: Column,
        fields: dict[str, pa.Array],
        columns: dict[str, pa.Array],
        hashes: dict[str, pa.Array],
        stats: ExtractStats,
    ) -> None:
        t = col.transform
        if t.kind is TransformKind.PSEUDONYMISE and self.pass_through:
            pseudonyms = fields[pseudonym_field(col)]
            columns[col.name] = pseudonyms
            hashes[col.name] = _hashes(pseudonyms, col.name)
            return
        values = fields[col.source[0]]
        if t.kind is TransformKind.KEEP:
            too_long = pc.greater(pc.utf8_length(values), MAX_CODED_LENGTH)
            kept = pc.if_else(too_long, _NULL_STRING, values)
            allowed = self.allowed_values.get(col.name)
            if allowed is not None:
                # free text and values outside the agreed code list never leave
                kept = pc.if_else(pc.is_in(kept, value_set=allowed), kept, _NULL_STRING)
            bounds = self.ranges.get(col.name)
            if bounds is not None:
                whole = pc.match_substring_regex(kept, r"^-?[0-9]{1,18}$")
                number = pc.cast(pc.if_else(whole, kept, _NULL_STRING), pa.int64())
                inside = pc.and_(
                    pc.greater_equal(number, bounds.min), pc.less_equal(number, bounds.max)
                )
                kept = pc.if_else(pc.fill_null(inside, False), kept, _NULL_STRING)
            self._invalid(stats, col.name, values, kept)
            columns[self.spill_column(col.name)] = kept
        elif t.kind is TransformKind.PSEUDONYMISE:
            assert t.id_type is not None
            if t.id_type is IdType.NAME_BIRTHDATE:
                values = pc.binary_join_element_wise(values, fields[col.source[1]], _SEP)
            columns[col.name], hashes[col.name] = self._pseudonymise(
                t.id_type, values, col.name, stats
            )
        elif t.kind is TransformKind.GENERALISE:
            assert t.what is not None
            outs = generalise(t.what, t.levels, values, self.state)
            for level, out in zip(t.levels, outs, strict=True):
                columns[f"{col.name}@{level}" if col.name in self.qi else col.name] = out
            self._invalid(stats, col.name, values, outs[0])

    @staticmethod
    def _invalid(stats: ExtractStats, name: str, before: pa.Array, after: pa.Array) -> None:
        bad = after.null_count - before.null_count
        if bad:
            stats.invalid_values[name] += bad

    def _pseudonymise(
        self, id_type: IdType, values: pa.Array, name: str, stats: ExtractStats
    ) -> tuple[pa.Array, pa.Array]:
        """Pseudonymise each distinct value once; invalid identifiers become null.

        Also returns a 64-bit hash of each pseudonym, to link rows into people
        (Python's hash: stable within the run, never stored).
        """
        encoded = values.dictionary_encode()
        normalise = self.name_keys if id_type is IdType.NAME_BIRTHDATE else NORMALISERS[id_type]
        ps, kind = self.pseudonymiser, id_type.value
        # spellings that normalise alike ("1234.56.782", "123456782") share one pseudonym
        pseudonyms: dict[str, str] = {}
        mapped: list[str | None] = []
        for value in encoded.dictionary.to_pylist():
            try:
                normalised = normalise(value)
            except InvalidInputError:
                mapped.append(None)  # invalid identifiers stay null (and are counted)
                continue
            pseudonym = pseudonyms.get(normalised)
            if pseudonym is None:
                pseudonym = pseudonyms[normalised] = ps(kind, normalised)
            mapped.append(pseudonym)
        stats.pseudonyms_computed += len(pseudonyms)
        out = pc.take(pa.array(mapped, pa.string()), encoded.indices)
        self._invalid(stats, name, values, out)
        return out, _hashes(out, name)


RESPONDENT = "respondent_id"


@dataclass(frozen=True)
class _Transformed:
    """One batch after pass 1's work: the spill rows, their pseudonym hashes, who withdrew."""

    spill: pa.RecordBatch
    links: list[pa.Array]
    gone: pa.Array


_HEX_DIGITS = 16
_NIBBLE = np.zeros(256, dtype=np.uint8)
_NIBBLE[np.frombuffer(b"0123456789", np.uint8)] = np.arange(10, dtype=np.uint8)
_NIBBLE[np.frombuffer(b"abcdef", np.uint8)] = np.arange(10, 16, dtype=np.uint8)


def _hex_hashes(pseudonyms: pa.Array, kind: str) -> pa.Array | None:
    """Return the first 64 bits of each hex pseudonym, salted by ``kind``; None if not all hex.

    A pseudonym is an HMAC: its first 64 bits are as good a hash as any, and reading
    them with numpy costs nothing next to a Python call per value.
    """
    head = pc.utf8_slice_codeunits(pseudonyms, 0, _HEX_DIGITS)
    valid = pc.is_valid(pseudonyms)
    if not pc.all(pc.match_substring_regex(head, f"^[0-9a-f]{{{_HEX_DIGITS}}}$")).as_py():
        return None
    filled = pc.fill_null(head, "0" * _HEX_DIGITS).cast(pa.binary())
    offsets = np.frombuffer(filled.buffers()[1], np.int32)[filled.offset :][: len(filled) + 1]
    start = int(offsets[0])
    data = np.frombuffer(filled.buffers()[2], np.uint8)[start : start + _HEX_DIGITS * len(filled)]
    nibbles = _NIBBLE[data.reshape(len(filled), _HEX_DIGITS)]
    octets = np.ascontiguousarray((nibbles[:, 0::2] << 4) | nibbles[:, 1::2])
    salt = np.int64(hash(kind) & 0x7FFF_FFFF_FFFF_FFFF)
    values = octets.view(">u8").reshape(-1).astype(np.uint64).view(np.int64) ^ salt
    mask = np.asarray(pc.invert(valid).to_numpy(zero_copy_only=False), dtype=np.bool_)
    return pa.array(values, pa.int64(), mask=mask)


def _hashes(pseudonyms: pa.Array, kind: str) -> pa.Array:
    """Return a 64-bit hash of each (kind, pseudonym) (null stays null), once per distinct value."""
    if isinstance(pseudonyms, pa.ChunkedArray):
        pseudonyms = pseudonyms.combine_chunks()
    if len(pseudonyms) == 0 or pseudonyms.null_count == len(pseudonyms):
        return pa.nulls(len(pseudonyms), pa.int64())
    fast = _hex_hashes(pseudonyms, kind)
    if fast is not None:
        return fast
    encoded = pseudonyms.dictionary_encode()
    hashes = [hash((kind, p)) for p in encoded.dictionary.to_pylist()]
    return pc.take(pa.array(hashes, pa.int64()), encoded.indices)


VALUE_SAMPLE = 512
"""Cells kept per kept value: enough to see k people, or to call the value rare."""


class _ValueCounter:
    """(kept value, anchor) cells across batches, to find values held by few people.

    Only the first ``VALUE_SAMPLE`` cells of each value are kept: a common value shows
    k people among them; one that does not is treated as rare (merged into ``other``),
    which is never less safe. So memory is bounded by the code lists, not the rows.
    """

    def __init__(self, columns: Mapping[str, str]) -> None:
        self.columns = list(columns)
        self.spilled = dict(columns)
        self.values: list[Any] = []
        self.anchors: list[Int64s] = []
        self.pairs: Int64s = np.empty(0, np.int64)
        self.width = 1
        self.ids: dict[tuple[str, str], int] = {}
        self.owner: list[tuple[str, str]] = []
        self.kept = np.zeros(0, dtype=np.int64)

    def add(self, spill: pa.RecordBatch, anchors: pa.Array) -> None:
        """Count the kept values of one spilled batch, each with its row's anchor."""
        ids, subjects = [], []
        for name in self.columns:
            values = spill.column(self.spilled[name])
            if values.null_count == len(values):
                continue
            encoded = values.dictionary_encode()
            mapping = []
            for value in encoded.dictionary.to_pylist():
                found = self.ids.get((name, value))
                if found is None:
                    found = self.ids[(name, value)] = len(self.owner)
                    self.owner.append((name, value))
                mapping.append(found)
            column_ids = pc.take(pa.array(mapping, pa.int32()), encoded.indices)
            present = pc.is_valid(column_ids)
            ids.append(column_ids.filter(present))
            subjects.append(anchors.filter(present))
        if ids:
            value = np.asarray(pa.concat_arrays(ids).to_numpy(), dtype=np.int32)
            anchor = np.asarray(pa.concat_arrays(subjects).to_numpy(), dtype=np.int64)
            if len(self.kept) < len(self.owner):
                self.kept = np.concatenate(
                    [self.kept, np.zeros(len(self.owner) - len(self.kept), np.int64)]
                )
            wanted = self.kept[value] < VALUE_SAMPLE
            if not wanted.all():
                value, anchor = value[wanted], anchor[wanted]
            self.kept += np.bincount(value, minlength=len(self.kept))
            self.values.append(value)
            self.anchors.append(anchor)

    def link(self, people: People) -> None:
        """Replace the counted cells by distinct (value, person) pairs, once people are known."""
        empty = np.empty(0, np.int64)
        self.width = max(people.count, 1)
        for i, (value, anchors) in enumerate(zip(self.values, self.anchors, strict=True)):
            self.values[i] = distinct(value.astype(np.int64) * self.width + people.of(anchors))
            self.anchors[i] = empty
        self.pairs = distinct(np.concatenate([empty, *self.values]))
        self.values, self.anchors = [], []

    def rare(self, people: People, kept: Any, k: int) -> dict[str, tuple[pa.Array, str | None]]:
        """Return, per column, its values held by fewer than k released people and their stand-in.

        The stand-in is ``other``, or None (empty) when all of a column's rare values
        together are still held by fewer than k people. Call ``link`` first.
        """
        value, person = self.pairs // self.width, self.pairs % self.width
        live = kept[person]
        if people.withdrawn is not None:
            live &= ~people.withdrawn[person]
        value, person = value[live], person[live]
        held = np.bincount(value, minlength=len(self.owner))
        out: dict[str, tuple[pa.Array, str | None]] = {}
        for name in self.columns:
            rare = [
                i for i, (column, _) in enumerate(self.owner) if column == name and 0 < held[i] < k
            ]
            if not rare:
                continue
            together = len(distinct(person[np.isin(value, rare)]))
            stand_in = OTHER if together >= k else None
            out[name] = (pa.array([self.owner[i][1] for i in rare], pa.string()), stand_in)
        return out


def _scatter(spill: pa.RecordBatch, rng: np.random.Generator, writers: Sequence[Any]) -> None:
    """Write the rows of ``spill`` to random buckets."""
    if spill.num_rows == 0:
        return
    bucket = rng.integers(0, len(writers), spill.num_rows)
    order = np.argsort(bucket, kind="stable")
    ordered = spill.take(pa.array(order))
    counts = np.bincount(bucket, minlength=len(writers))
    offset = 0
    for writer, count in zip(writers, counts.tolist(), strict=True):
        if count:
            writer.write_batch(ordered.slice(offset, count))
            offset += count


def write_extract(
    request: ExtractRequest,
    batches: Iterable[ColumnBatch],
    workdir: Path,
    pseudonymiser: Pseudonymiser,
    progress: ProgressSink | None = None,
) -> ExtractFiles:
    """Run both passes over ``batches`` and write ``data.csv`` and ``data.parquet`` in ``workdir``.

    Returns the files, counts, disclosure result, generalisation state and risk report.
    Raises DisclosureCheckFailedError when suppression would exceed the agreed share,
    GeneralisationStateError when the given state does not fit the agreement, and
    InvalidInputError for input without providers.
    """
    sink = progress or _NoProgress()
    plan = _Plan(request, pseudonymiser)
    stats = ExtractStats()
    for reason, count in request.excluded_upstream.items():
        if count:
            stats.excluded[reason] += count
            stats.rows_in += count
    disclosure = request.agreement.disclosure
    seed = request.shuffle_seed if request.shuffle_seed is not None else os.urandom(SEED_BYTES)
    rng = np.random.default_rng(int.from_bytes(seed, "big"))
    counter = ClassCounter(count_subjects=True)
    values = _ValueCounter({c.name: plan.spill_column(c.name) for c in plan.coded})
    links = PersonLinks()
    gone_rows = 0
    buckets = [workdir / f"pass1-{i:02d}.arrow" for i in range(BUCKETS)]
    sink.start("pseudonymise, generalise, link people, count classes", None)
    with ExitStack() as stack:
        writers = [
            stack.enter_context(
                pa.ipc.new_stream(stack.enter_context(pa.OSFile(str(path), "wb")), plan.file_schema)
            )
            for path in buckets
        ]
        for batch in batches:
            done = plan.transform(batch, stats)
            anchors = links.add(done.links)
            withdrawn = _count(done.gone)
            if withdrawn:
                links.withdraw(anchors.filter(done.gone))
                gone_rows += withdrawn
            spill = done.spill
            class_ids = counter.class_ids([spill.column(n) for n in plan.key_names])
            counter.add(class_ids, anchors)
            values.add(spill, anchors)
            spilled = pa.RecordBatch.from_arrays(
                [*spill.columns, class_ids], schema=plan.file_schema
            )
            _scatter(spilled, rng, writers)
            sink.advance(
                len(batch["provider"]) if not isinstance(batch, pa.RecordBatch) else batch.num_rows
            )
    people = links.resolve()
    del links
    values.link(people)
    pairs = PersonPairs.of(counter, people)
    class_keys = counter.keys
    del counter
    withdrawn_rows = pairs.withdrawn_rows()
    if withdrawn_rows:
        stats.excluded[Exclusion.RESPONDENT_WITHDRAWN] += withdrawn_rows
        stats.rows_selected -= withdrawn_rows - gone_rows
    stats.withdrawals_applied = int(people.withdrawn.sum()) if people.withdrawn is not None else 0
    result = choose_levels(
        pairs, plan.lattice, disclosure.k, disclosure.max_suppressed_share, plan.fixed
    )
    del pairs
    state = GeneralisationState(
        agreement=plan.state.agreement,
        project=plan.state.project,
        levels=result.levels,
        reference_date=plan.state.reference_date,
        age_bands=plan.state.age_bands,
    )
    kept = result.kept_people
    assert kept is not None  # people are always counted
    rare = values.rare(people, kept, disclosure.k)
    del values
    csv_path, parquet_path = workdir / CSV_NAME, workdir / PARQUET_NAME
    risk = _second_pass(
        plan,
        result,
        _Outcome(people, kept, rare, rng, class_keys),
        buckets,
        csv_path,
        parquet_path,
        stats,
        sink,
    )
    return ExtractFiles(csv_path, parquet_path, stats, result, state, risk)


@dataclass(frozen=True)
class _Outcome:
    """What pass 2 applies: who is released, which values are merged, the shuffle."""

    people: People
    kept: Any
    rare: dict[str, tuple[pa.Array, str | None]]
    rng: np.random.Generator
    class_keys: Sequence[ClassKey]


class _Codes:
    """Small global integer codes for the values of one column, across buckets."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}

    def of(self, values: pa.Array) -> Int64s:
        """Return each value's code (null has a code of its own)."""
        encoded = pc.fill_null(values, _NULL_MARK).dictionary_encode()
        mapping = [self.ids.setdefault(v, len(self.ids)) for v in encoded.dictionary.to_pylist()]
        codes = np.asarray(mapping, dtype=np.int64)
        return codes[np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)]


def _dense(first: Int64s, second: Int64s) -> Int64s:
    """Return a dense int64 id per distinct (first, second) pair, both non-negative."""
    width = int(second.max(initial=0)) + 1
    _, ids = np.unique(first * width + second, return_inverse=True)
    return np.asarray(ids, dtype=np.int64).reshape(-1)


class _PersonClasses:
    """(class, person) pairs of the written rows, to measure each person's smallest class."""

    def __init__(self) -> None:
        self.keys: list[list[Int64s]] = []
        self.people: list[Int64s] = []

    def add(self, parts: list[Int64s], people: Int64s) -> None:
        """Add one bucket's rows: the parts of each row's class (global codes) and person.

        Kept as 32-bit integers (codes and people number far below 2**31): half the memory.
        """
        self.keys.append([part.astype(np.int32) for part in parts])
        self.people.append(people.astype(np.int32))

    def risk(self, k: int) -> tuple[int, int, Fraction]:
        """Return (people, people whose smallest class holds fewer than k people, max risk)."""
        if not self.keys:
            return 0, 0, Fraction(0)
        columns = [np.concatenate(part).astype(np.int64) for part in zip(*self.keys, strict=True)]
        people = np.concatenate(self.people).astype(np.int64)
        self.keys, self.people = [], []
        dense = columns[0]
        for column in columns[1:]:
            dense = _dense(dense, column)
        width = int(people.max(initial=0)) + 1
        pairs = distinct(dense * width + people)
        cls, person = pairs // width, pairs % width
        sizes = np.bincount(cls)
        smallest = np.full(width, np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(smallest, person, sizes[cls])
        smallest = smallest[smallest < np.iinfo(np.int64).max]
        least = int(smallest.min())
        return len(smallest), int((smallest < k).sum()), Fraction(1, least)


def _node_of_class(keys: Sequence[ClassKey], lattice: Lattice, node: tuple[int, ...]) -> Int64s:
    """Return, per finest class, its class at ``node`` (dense ids)."""
    positions = lattice.positions(node)
    ids: dict[ClassKey, int] = {}
    return np.asarray(
        [ids.setdefault(tuple(key[p] for p in positions), len(ids)) for key in keys] or [0],
        dtype=np.int64,
    )


def _risk(
    plan: _Plan,
    result: NodeResult,
    classes: _PersonClasses,
    events: _PersonClasses,
    diversity: dict[str, list[Int64s]],
) -> RiskReport:
    k = plan.agreement.disclosure.k
    people, prosecutor_above, prosecutor_max = classes.risk(k)
    _, event_above, event_max = events.risk(k)
    l_values: dict[str, int | None] = {}
    for name, parts in diversity.items():
        pairs = distinct(np.concatenate(parts)) if parts else np.empty(0, np.int64)
        held = np.bincount(pairs >> 24) if len(pairs) else np.empty(0, np.int64)
        held = held[held > 0]
        l_values[name] = int(held.min()) if len(held) else None
    steps = sum(len(ladder) - 1 for ladder in plan.lattice.ladders)
    loss = Fraction(sum(result.node), steps) if steps else Fraction(0)
    return RiskReport(
        k=k,
        m=plan.agreement.disclosure.known_events,
        people=people,
        prosecutor_max=_decimal(prosecutor_max),
        prosecutor_people_above=prosecutor_above,
        event_max=_decimal(event_max),
        event_people_above=event_above,
        l_diversity=l_values,
        information_loss=_decimal(loss),
    )


def _decimal(value: Fraction) -> str:
    return f"{float(value):.6f}"


def _second_pass(
    plan: _Plan,
    result: NodeResult,
    outcome: _Outcome,
    buckets: Sequence[Path],
    csv_path: Path,
    parquet_path: Path,
    stats: ExtractStats,
    sink: ProgressSink,
) -> RiskReport:
    source_of = {
        col.name: (f"{col.name}@{result.levels[col.name]}" if col.name in plan.qi else col.name)
        for col in plan.released
    }
    people, rng = outcome.people, outcome.rng
    withdrawn = people.withdrawn
    node_of_class = _node_of_class(outcome.class_keys, plan.lattice, result.node)
    needed = list(dict.fromkeys([*source_of.values(), ANCHOR, CLASS_ID]))
    released = np.zeros(people.count, dtype=np.bool_)
    classes, events = _PersonClasses(), _PersonClasses()
    event_codes = {name: _Codes() for name in plan.event_columns}
    value_codes = {name: _Codes() for name in plan.sensitive}
    diversity: dict[str, list[Int64s]] = {name: [] for name in plan.sensitive}
    sink.start("shuffle, suppress people, write CSV and Parquet", stats.rows_selected)
    with (
        pa_csv.CSVWriter(str(csv_path), plan.output_schema) as csv_writer,
        pq.ParquetWriter(str(parquet_path), plan.output_schema, compression="zstd") as pq_writer,
    ):
        for path in buckets:
            with pa.OSFile(str(path), "rb") as raw, pa.ipc.open_stream(raw) as reader:
                table = reader.read_all()
            path.unlink()
            if table.num_rows == 0:
                continue
            # a per-release random order: nothing of the submission order survives
            # only the chosen level of each quasi-identifier travels on
            table = table.select(needed).take(pa.array(rng.permutation(table.num_rows)))
            person = people.of(np.asarray(table.column(ANCHOR).to_numpy(), dtype=np.int64))
            keep = outcome.kept[person]
            if withdrawn is not None:
                stats.rows_suppressed += int((~keep & ~withdrawn[person]).sum())
            else:
                stats.rows_suppressed += int((~keep).sum())
            table = table.filter(pa.array(keep))
            person = person[keep]
            released[person] = True
            arrays = []
            for col in plan.released:
                column = table.column(source_of[col.name]).combine_chunks()
                merged = outcome.rare.get(col.name)
                if merged is not None:
                    rare_values, stand_in = merged
                    is_rare = pc.is_in(column, value_set=rare_values)
                    column = pc.if_else(is_rare, pa.scalar(stand_in, pa.string()), column)
                    stats.values_merged[col.name] += _count(is_rare)
                arrays.append(column)
            out = pa.Table.from_arrays(arrays, schema=plan.output_schema)
            stats.rows_out += out.num_rows
            if out.num_rows:
                finest = np.asarray(table.column(CLASS_ID).to_numpy(), dtype=np.int64)
                cls = node_of_class[finest]
                classes.add([cls], person)
                if plan.event_columns:
                    codes = [
                        event_codes[name].of(out.column(name).combine_chunks())
                        for name in plan.event_columns
                    ]
                    events.add([cls, *codes], person)
                for name in plan.sensitive:
                    values = out.column(name).combine_chunks()
                    present = np.asarray(pc.is_valid(values).to_numpy(zero_copy_only=False))
                    found = value_codes[name].of(values)
                    diversity[name].append(distinct((cls[present] << 24) + found[present]))
                for part in out.to_batches(max_chunksize=ROW_BATCH):
                    csv_writer.write_batch(part)
                    pq_writer.write_batch(part)
            sink.advance(len(keep))
    stats.people_out = int(released.sum())
    return _risk(plan, result, classes, events, diversity)
