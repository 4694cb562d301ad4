"""The extract pipeline: select, pseudonymise, generalise, check disclosure, write CSV and Parquet.

It streams in bounded memory with two passes, column by column with Arrow compute:

Pass 1 reads the input once, in batches. It keeps only the rows the agreement and the
consents allow; keeps only the agreed columns (so direct identifiers, free text and
consent metadata never go further); replaces identifiers with keyed pseudonyms (once
per distinct value in a batch: Python normalises and calls the pseudonymiser, Arrow
maps the results back); computes every allowed level of each quasi-identifier; counts
the equivalence classes (rows and distinct subjects); and spills the transformed batch
to an Arrow IPC file in the private work folder.

Between the passes the disclosure check picks the generalisation (or applies the
project's fixed one) and refuses the release if too many rows would be suppressed.

Pass 2 reads the spill, drops the rows of classes smaller than k, and writes
``data.csv`` and ``data.parquet``.

Memory holds one batch plus the class counts (three integers per distinct class and
subject pair: roughly one per person), never the whole input.

Rows the gateway stored on intake arrive already pseudonymised (``pseudonymised`` in the
request): each pseudonymised column then reads its pseudonyms from the input field
``pseudonym_field(column)`` (e.g. ``bsn:bsn``, ``name+birth_date:name_birthdate``), which
intake filled with the same project key, and its raw sources are never read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from itertools import islice
from pathlib import Path
from typing import Any, Protocol, TypeAlias

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
    Lattice,
    NodeResult,
    choose_levels,
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


@dataclass(frozen=True, slots=True)
class ExtractRequest:
    """One release under an agreement, with the consents as they stand at release time.

    ``consenting_providers`` are the partners whose privacy officers consented;
    ``withdrawn_respondents`` the questionnaire respondent ids whose consent was
    withdrawn; ``state`` the project's generalisation state (``None`` for the first
    release, which fixes it). ``pseudonymised`` says the input carries pseudonyms
    computed on intake (see ``pseudonym_field``) instead of raw identifiers;
    ``excluded_upstream`` counts rows the caller left out before the pipeline, by
    exclusion reason, so that the manifest still accounts for them.
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


@dataclass(frozen=True)
class ExtractFiles:
    """What ``write_extract`` produced: plaintext files, counts, the check and the state."""

    csv: Path
    parquet: Path
    stats: ExtractStats
    disclosure: NodeResult
    state: GeneralisationState


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
        self.qi = a.disclosure.quasi_identifiers
        self.lattice = Lattice(self.qi, tuple(a.column(q).transform.levels for q in self.qi))
        self.state = self._initial_state(request)
        self.fixed = self._fixed_node(request.state)
        self.subject = a.disclosure.count_distinct
        self.key_names = self.lattice.key_names
        self.spill_names: list[str] = []
        for col in self.released:
            if col.name in self.qi:
                self.spill_names.extend(f"{col.name}@{level}" for level in col.transform.levels)
            else:
                self.spill_names.append(col.name)
        self.spill_schema = pa.schema([(name, pa.string()) for name in self.spill_names])
        self.output_schema = pa.schema([(c.name, pa.string()) for c in self.released])
        self.name_keys = _NameBirthdateKeys()
        self._subject_hashes: pa.Array | None = None

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

    def select(self, batch: _Batch, stats: ExtractStats) -> tuple[pa.Array, pa.Array]:
        """Return the keep-mask of the batch and each row's instrument index (or null)."""
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
        asked = pc.and_(keep, pc.is_in(instrument, value_set=self.questionnaires))
        if _count(asked):
            keep = self._respondents(batch, keep, asked, instrument, stats)
        stats.rows_in += batch.size
        stats.rows_selected += _count(keep)
        for key in [k for k, v in excluded.items() if v == 0]:
            del excluded[key]
        return keep, instrument

    def _respondents(
        self,
        batch: _Batch,
        keep: pa.Array,
        asked: pa.Array,
        instrument: pa.Array,
        stats: ExtractStats,
    ) -> pa.Array:
        """Drop questionnaire rows without valid respondent consent; return the new mask."""
        rows = pc.indices_nonzero(asked).to_pylist()
        values = {name: batch.python(name, rows) for name in CONSENT_FIELDS}
        owners = instrument.take(pa.array(rows, pa.int64())).to_pylist()
        mask = keep.to_pylist()
        for j, row in enumerate(rows):
            problem = self._respondent_problem({n: v[j] for n, v in values.items()}, owners[j])
            if problem is not None:
                stats.excluded[problem] += 1
                mask[row] = False
        return pa.array(mask, pa.bool_())

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

    def transform(
        self, batch: ColumnBatch, stats: ExtractStats
    ) -> tuple[pa.RecordBatch, dict[str, pa.Array], pa.Array | None]:
        """Return the spill batch, the finest class key columns and the subject hashes."""
        data = _Batch(batch)
        keep, instrument = self.select(data, stats)
        fields = {name: self.field(data, keep, instrument, name) for name in self.sources}
        columns: dict[str, pa.Array] = {}
        for col in self.released:
            self._column(col, fields, columns, stats)
        spill = pa.RecordBatch.from_arrays(
            [columns[name] for name in self.spill_names], schema=self.spill_schema
        )
        keys = {name: columns[name] for name in self.key_names}
        return spill, keys, self._subject_hashes

    def _column(
        self,
        col: Column,
        fields: dict[str, pa.Array],
        columns: dict[str, pa.Array],
        stats: ExtractStats,
    ) -> None:
        t = col.transform
        if t.kind is TransformKind.PSEUDONYMISE and self.pass_through:
            pseudonyms = fields[pseudonym_field(col)]
            columns[col.name] = pseudonyms
            if col.name == self.subject:
                self._subject_hashes = _hashes(pseudonyms)
            return
        values = fields[col.source[0]]
        if t.kind is TransformKind.KEEP:
            too_long = pc.greater(pc.utf8_length(values), MAX_CODED_LENGTH)
            kept = pc.if_else(too_long, _NULL_STRING, values)
            self._invalid(stats, col.name, values, kept)
            columns[col.name] = kept
        elif t.kind is TransformKind.PSEUDONYMISE:
            assert t.id_type is not None
            if t.id_type is IdType.NAME_BIRTHDATE:
                values = pc.binary_join_element_wise(values, fields[col.source[1]], _SEP)
            subject = col.name == self.subject
            columns[col.name], hashes = self._pseudonymise(
                t.id_type, values, col.name, stats, subject
            )
            if subject:
                self._subject_hashes = hashes
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
        self, id_type: IdType, values: pa.Array, name: str, stats: ExtractStats, subject: bool
    ) -> tuple[pa.Array, pa.Array | None]:
        """Pseudonymise each distinct value once; invalid identifiers become null.

        For the ``subject`` column also returns a 64-bit hash of each pseudonym, to count
        distinct subjects (Python's string hash: stable within the run, never stored).
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
        if not subject:
            return out, None
        hashes = [None if p is None else hash(p) for p in mapped]
        return out, pc.take(pa.array(hashes, pa.int64()), encoded.indices)


def _hashes(pseudonyms: pa.Array) -> pa.Array:
    """Return a 64-bit hash of each pseudonym (null stays null), once per distinct value."""
    encoded = pseudonyms.dictionary_encode()
    hashes = [hash(p) for p in encoded.dictionary.to_pylist()]
    return pc.take(pa.array(hashes, pa.int64()), encoded.indices)


def write_extract(
    request: ExtractRequest,
    batches: Iterable[ColumnBatch],
    workdir: Path,
    pseudonymiser: Pseudonymiser,
    progress: ProgressSink | None = None,
) -> ExtractFiles:
    """Run both passes over ``batches`` and write ``data.csv`` and ``data.parquet`` in ``workdir``.

    Returns the files, counts, disclosure result and generalisation state. Raises
    DisclosureCheckFailedError when suppression would exceed the agreed share,
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
    counter = ClassCounter(count_subjects=plan.subject is not None)
    spill = workdir / "pass1.arrow"
    sink.start("pseudonymise, generalise, count classes", None)
    with pa.OSFile(str(spill), "wb") as raw, pa.ipc.new_stream(raw, plan.spill_schema) as writer:
        for batch in batches:
            record_batch, keys, subjects = plan.transform(batch, stats)
            counter.add(counter.class_ids([keys[n] for n in plan.key_names]), subjects)
            writer.write_batch(record_batch)
            sink.advance(
                len(batch["provider"]) if not isinstance(batch, pa.RecordBatch) else batch.num_rows
            )
    result = choose_levels(
        counter, plan.lattice, disclosure.k, disclosure.max_suppressed_share, plan.fixed
    )
    del counter
    state = GeneralisationState(
        agreement=plan.state.agreement,
        project=plan.state.project,
        levels=result.levels,
        reference_date=plan.state.reference_date,
        age_bands=plan.state.age_bands,
    )
    csv_path, parquet_path = workdir / CSV_NAME, workdir / PARQUET_NAME
    _second_pass(plan, result, spill, csv_path, parquet_path, stats, sink)
    spill.unlink()
    return ExtractFiles(csv_path, parquet_path, stats, result, state)


def _class_key_text(key: Sequence[str | None]) -> str:
    return _SEP.join(_NULL_MARK if part is None else part for part in key)


def _second_pass(
    plan: _Plan,
    result: NodeResult,
    spill: Path,
    csv_path: Path,
    parquet_path: Path,
    stats: ExtractStats,
    sink: ProgressSink,
) -> None:
    chosen = [f"{name}@{level}" for name, level in result.levels.items()]
    source_of = {
        col.name: (f"{col.name}@{result.levels[col.name]}" if col.name in plan.qi else col.name)
        for col in plan.released
    }
    small = pa.array(sorted(_class_key_text(k) for k in result.small_classes), pa.string())
    sink.start("suppress small classes, write CSV and Parquet", stats.rows_selected)
    with (
        pa.OSFile(str(spill), "rb") as raw,
        pa.ipc.open_stream(raw) as reader,
        pa_csv.CSVWriter(str(csv_path), plan.output_schema) as csv_writer,
        pq.ParquetWriter(str(parquet_path), plan.output_schema, compression="zstd") as pq_writer,
    ):
        for record_batch in reader:
            out = pa.RecordBatch.from_arrays(
                [record_batch.column(source_of[c.name]) for c in plan.released],
                schema=plan.output_schema,
            )
            if len(small):
                parts = [pc.fill_null(record_batch.column(name), _NULL_MARK) for name in chosen]
                key = parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, _SEP)
                out = out.filter(pc.invert(pc.is_in(key, value_set=small)))
            stats.rows_out += out.num_rows
            stats.rows_suppressed += record_batch.num_rows - out.num_rows
            if out.num_rows:
                csv_writer.write_batch(out)
                pq_writer.write_batch(out)
            sink.advance(record_batch.num_rows)
