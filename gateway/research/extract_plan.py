"""The extract plan: what an agreement asks of each input batch (selection and transformation)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gateway.clock import as_utc
from gateway.errors import InvalidInputError
from gateway.identifiers import NORMALISERS, IdType
from gateway.research.agreements import Column, InstrumentKind, Linkage, WithdrawalScope
from gateway.research.disclosure import Lattice
from gateway.research.errors import GeneralisationStateError
from gateway.research.events import evaluate_events
from gateway.research.extract_input import (
    ANCHOR,
    CLASS_ID,
    CONSENT_FIELDS,
    MAX_CODED_LENGTH,
    NULL_STRING,
    RESPONDENT,
    SEP,
    SEP_SCALAR,
    ColumnBatch,
    Exclusion,
    ExtractRequest,
    ExtractStats,
    InputBatch,
    NameBirthdateKeys,
    age_on,
    as_date,
    count_true,
    pseudonym_field,
    pseudonym_hashes,
    source_fields,
)
from gateway.research.generalise import (
    DEFAULT_AGE_BANDS,
    GeneralisationState,
    generalise,
)
from gateway.research.level_choice import Judge
from gateway.research.pseudonyms import Pseudonymiser
from gateway.research.respondent_consent import consent_verdicts
from gateway.research.transforms import TransformKind

_NOBODY = pa.array([], pa.int32())
"""The instruments delivering a field no instrument names: none (the field is all null)."""

AS_KEPT = "as-kept"
"""The one level of a kept column that the disclosure check runs over (an event QI)."""


def ladder(column: Column) -> tuple[str, ...]:
    """Return the levels the check may choose for ``column``: its generalisations, or as kept."""
    return column.transform.levels or (AS_KEPT,)


class ExtractPlan:
    """Everything about an agreement the per-batch work needs, computed once."""

    def __init__(self, request: ExtractRequest, pseudonymiser: Pseudonymiser) -> None:
        a = request.agreement
        self.request, self.agreement, self.pseudonymiser = request, a, pseudonymiser
        keys, owners = [], []
        for index, inst in enumerate(a.instruments):
            for provider in inst.providers:
                keys.append(f"{provider}{SEP}{inst.category}")
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
        self.withdrawn_ids = pa.array(sorted(self.withdrawn), pa.string())
        every = frozenset(range(len(a.instruments)))
        self.field_gate: dict[str, pa.Array | None] = {"provider": None, "category": None}
        gates: dict[frozenset[int], pa.Array] = {}  # fields of the same instruments share one
        for inst in a.instruments:
            for name in inst.fields:
                owners_of = frozenset(i for i, x in enumerate(a.instruments) if name in x.fields)
                if owners_of != every and owners_of not in gates:
                    gates[owners_of] = pa.array(sorted(owners_of), pa.int32())
                self.field_gate[name] = None if owners_of == every else gates[owners_of]
        self.pass_through = request.pseudonymised
        self.sources = sorted(source_fields(a, request.pseudonymised))
        if request.pseudonymised:
            for col in a.released_columns:
                if col.transform.kind is TransformKind.PSEUDONYMISE:
                    # filled on intake only where the row's instrument delivered the sources
                    self.field_gate[pseudonym_field(col)] = None
        self.released = a.released_columns
        # the QIs, and the event QIs when the m-event attacker is held to k
        self.qi = a.disclosure.checked_attributes
        self.lattice = Lattice(self.qi, tuple(ladder(a.column(q)) for q in self.qi))
        self.plain = len(a.disclosure.quasi_identifiers)
        """The first ``plain`` checked attributes are the QIs; the rest are event attributes."""
        self.unlinked = a.disclosure.linkage is Linkage.UNLINKED
        """Rows checked one by one, each pseudonym cell a fresh random value."""
        self.withdraw_person = a.withdrawal.removes is WithdrawalScope.PERSON
        self.judge: Judge | None = None
        if len(self.qi) > self.plain and a.disclosure.known_events > 1 and not self.unlinked:
            self.judge = partial(evaluate_events, plain=self.plain, m=a.disclosure.known_events)
        self.state = self._initial_state(request)
        self.fixed = self._fixed_node(request.state)
        self.key_names = self.lattice.key_names
        self.spill_names: list[str] = []
        for col in self.released:
            if col.name in self.qi:
                self.spill_names.extend(f"{col.name}@{level}" for level in ladder(col))
            else:
                self.spill_names.append(col.name)
        self.spill_schema = pa.schema(
            [(name, pa.string()) for name in self.spill_names] + [(ANCHOR, pa.int64())]
        )
        self.file_schema = self.spill_schema.append(pa.field(CLASS_ID, pa.int32()))
        self.output_schema = pa.schema([(c.name, pa.string()) for c in self.released])
        self.name_keys = NameBirthdateKeys()
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
        self.id_types = {
            c.name: c.transform.id_type.value
            for c in self.released
            if c.transform.id_type is not None
        }
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

    def select(self, batch: InputBatch, stats: ExtractStats) -> tuple[pa.Array, pa.Array, pa.Array]:
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
            pc.index_in(
                pc.binary_join_element_wise(provider, category, SEP_SCALAR), self.lookup_keys
            ),
        )
        known = pc.is_valid(instrument)
        in_agreement = pc.is_in(provider, value_set=self.provider_set)
        consented = pc.is_in(provider, value_set=self.consenting_set)
        excluded = stats.excluded
        unknown = pc.invert(known)
        outside = count_true(pc.and_(unknown, pc.invert(in_agreement)))
        excluded[Exclusion.PROVIDER_NOT_IN_AGREEMENT] += outside
        excluded[Exclusion.CATEGORY_NOT_IN_AGREEMENT] += count_true(unknown) - outside
        excluded[Exclusion.NO_PROVIDER_CONSENT] += count_true(pc.and_(known, pc.invert(consented)))
        keep = pc.and_(known, consented)
        gone = pa.nulls(batch.size, pa.bool_()).fill_null(False)
        asked = pc.and_(keep, pc.is_in(instrument, value_set=self.questionnaires))
        if count_true(asked):
            keep, gone = self._respondents(batch, keep, asked, instrument, stats)
        stats.rows_in += batch.size
        stats.rows_selected += count_true(keep)
        for key in [k for k, v in excluded.items() if v == 0]:
            del excluded[key]
        return keep, gone, instrument

    def _respondents(
        self,
        batch: InputBatch,
        keep: pa.Array,
        asked: pa.Array,
        instrument: pa.Array,
        stats: ExtractStats,
    ) -> tuple[pa.Array, pa.Array]:
        """Drop questionnaire rows without valid respondent consent; return keep and withdrawn.

        Withdrawn rows are counted later, with every other row of their person. Text
        columns are checked with Arrow (``consent_verdicts``), anything else row by row.
        """
        picked = pc.indices_nonzero(asked)
        owners = np.asarray(instrument.take(picked).to_numpy(zero_copy_only=False), np.int64)
        verdicts = consent_verdicts(
            {name: batch.pick(name, picked) for name in CONSENT_FIELDS},
            owners,
            self.agreement.instruments,
            self.withdrawn_ids,
        )
        if verdicts is None:
            return self._respondents_row_by_row(batch, keep, asked, instrument, stats)
        at = np.asarray(picked.to_numpy(zero_copy_only=False), np.int64)
        mask = np.asarray(keep.to_numpy(zero_copy_only=False), np.bool_).copy()
        gone = np.zeros(len(mask), dtype=np.bool_)
        gone[at[verdicts.withdrawn]] = True
        for problem, flags in (
            (Exclusion.NO_RESPONDENT_CONSENT, verdicts.no_consent),
            (Exclusion.NO_PARENTAL_CONSENT, verdicts.no_parental),
        ):
            if flags.any():
                stats.excluded[problem] += int(flags.sum())
        mask[at[verdicts.withdrawn | verdicts.no_consent | verdicts.no_parental]] = False
        return pa.array(mask, pa.bool_()), pa.array(gone, pa.bool_())

    def _respondents_row_by_row(
        self,
        batch: InputBatch,
        keep: pa.Array,
        asked: pa.Array,
        instrument: pa.Array,
        stats: ExtractStats,
    ) -> tuple[pa.Array, pa.Array]:
        """``_respondents`` for columns that are not all text: one Python check per row."""
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
        given_on = as_date(row["consent_date"])
        if row["consent_version"] != instrument.consent_text_version or given_on is None:
            return Exclusion.NO_RESPONDENT_CONSENT
        born = as_date(row["birth_date"])
        minor = born is None or age_on(born, given_on) < instrument.parental_consent_below
        if minor and row["parental_consent"] not in (True, "true", "True"):
            return Exclusion.NO_PARENTAL_CONSENT
        return None

    def fields(
        self, batch: InputBatch, keep: pa.Array, instrument: pa.Array, names: Sequence[str]
    ) -> dict[str, pa.Array]:
        """Return fields ``names`` of the kept rows; null where their instrument lacks one.

        The kept rows' instruments, and which of them deliver a field, are worked out
        once per set of delivering instruments, not once per field; nothing is filtered
        when every row is kept.
        """
        whole = count_true(keep) == batch.size
        kept = instrument if whole else instrument.filter(keep)
        delivers: dict[int, pa.Array] = {}
        out: dict[str, pa.Array] = {}
        for name in names:
            values = batch.text(name)
            if not whole:
                values = values.filter(keep)
            gate = self.field_gate.get(name, _NOBODY)
            if gate is None:
                out[name] = values
                continue
            mask = delivers.get(id(gate))
            if mask is None:
                mask = delivers[id(gate)] = pc.is_in(kept, value_set=gate)
            out[name] = pc.if_else(mask, values, NULL_STRING)
        return out

    def transform(self, batch: ColumnBatch, stats: ExtractStats) -> Transformed:
        """Return the batch transformed: spill columns, class keys, anchors, withdrawn rows.

        Rows without any subject key are left out here and counted (``no-subject-key``).
        """
        data = InputBatch(batch)
        keep, gone, instrument = self.select(data, stats)
        process = pc.or_(keep, gone)
        names = [*self.sources, RESPONDENT] if self.link_columns else self.sources
        fields = self.fields(data, process, instrument, names)
        columns: dict[str, pa.Array] = {}
        hashes: dict[str, pa.Array] = {}
        for col in self.released:
            self._column(col, fields, columns, hashes, stats)
        rows = count_true(process)
        gone = gone.filter(process)
        if self.link_columns:
            links = [hashes[name] for name in self.link_columns]
            # only a subject key makes a person: a respondent id alone links nothing else
            keyed = pc.is_valid(pc.coalesce(*links) if len(links) > 1 else links[0])
            links.append(pseudonym_hashes(fields[RESPONDENT], RESPONDENT))
            anchors = pc.coalesce(*links)
        else:
            # no pseudonyms: nobody can link rows, so each row is a person of its own
            anchors = pa.array(np.arange(self._rows_seen, self._rows_seen + rows), pa.int64())
            links = [anchors]
            keyed = pc.is_valid(anchors)
            self._rows_seen += rows
        unkeyed = pc.invert(keyed)
        nameless = count_true(pc.and_(unkeyed, pc.invert(gone)))
        if nameless:
            stats.excluded[Exclusion.NO_SUBJECT_KEY] += nameless
            stats.rows_selected -= nameless
        nameless_gone = count_true(pc.and_(unkeyed, gone))
        if nameless_gone:
            stats.excluded[Exclusion.RESPONDENT_WITHDRAWN] += nameless_gone
        spill = pa.RecordBatch.from_arrays(
            [columns[name] for name in self.spill_names] + [anchors], schema=self.spill_schema
        )
        if nameless or not pc.all(keyed).as_py():
            spill = spill.filter(keyed)
            links = [link.filter(keyed) for link in links]
            gone = gone.filter(keyed)
        return Transformed(spill, links, gone)

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
            hashes[col.name] = pseudonym_hashes(pseudonyms, col.name)
            return
        values = fields[col.source[0]]
        if t.kind is TransformKind.KEEP:
            too_long = pc.greater(pc.utf8_length(values), pa.scalar(MAX_CODED_LENGTH, pa.int64()))
            kept = pc.if_else(too_long, NULL_STRING, values)
            allowed = self.allowed_values.get(col.name)
            if allowed is not None:
                # free text and values outside the agreed code list never leave
                kept = pc.if_else(pc.is_in(kept, value_set=allowed), kept, NULL_STRING)
            bounds = self.ranges.get(col.name)
            if bounds is not None:
                whole = pc.match_substring_regex(kept, r"^-?[0-9]{1,18}$")
                number = pc.cast(pc.if_else(whole, kept, NULL_STRING), pa.int64())
                inside = pc.and_(
                    pc.greater_equal(number, bounds.min), pc.less_equal(number, bounds.max)
                )
                kept = pc.if_else(pc.fill_null(inside, False), kept, NULL_STRING)
            self._invalid(stats, col.name, values, kept)
            columns[self.spill_column(col.name)] = kept
        elif t.kind is TransformKind.PSEUDONYMISE:
            assert t.id_type is not None
            if t.id_type is IdType.NAME_BIRTHDATE:
                values = pc.binary_join_element_wise(values, fields[col.source[1]], SEP_SCALAR)
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
        return out, pseudonym_hashes(out, name)


@dataclass(frozen=True)
class Transformed:
    """One batch after pass 1's work: the spill rows, their pseudonym hashes, who withdrew."""

    spill: pa.RecordBatch
    links: list[pa.Array]
    gone: pa.Array
