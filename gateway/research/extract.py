"""The extract pipeline: select, pseudonymise, generalise, check disclosure, write CSV and Parquet.

It streams in bounded memory with two passes, column by column with Arrow compute:

Pass 1 reads the input once, in batches. It keeps only the rows the agreement and the
consents allow; keeps only the agreed columns (so direct identifiers, free text and
consent metadata never go further); replaces identifiers with keyed pseudonyms (once
per distinct value in a batch: Python normalises and calls the pseudonymiser, Arrow
maps the results back); computes every allowed level of each quasi-identifier; numbers
the finest equivalence classes and writes each row's (class, subject) to the work folder
(``ClassPairSpill``); and spills the transformed batch to an Arrow IPC file in the
private work folder.

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

Memory holds one batch (or one bucket) plus the links between pseudonyms in pass 1, and
the people and their distinct (class, person) pairs between the passes, never the whole
input.

Rows the gateway stored on intake arrive already pseudonymised (``pseudonymised`` in the
request): each pseudonymised column then reads its pseudonyms from the input field
``pseudonym_field(column)`` (e.g. ``bsn:bsn``, ``name+birth_date:name_birthdate``), which
intake filled with the same project key, and its raw sources are never read.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gateway.research.class_counter import ClassCounter, ClassKey
from gateway.research.disclosure import NodeResult, PersonPairs
from gateway.research.extract_input import (
    BUCKETS,
    CSV_NAME,
    OTHER,
    PARQUET_NAME,
    SEED_BYTES,
    ColumnBatch,
    Exclusion,
    ExtractRequest,
    ExtractStats,
    NoProgress,
    ProgressSink,
    batches_from_rows,
    count_true,
    input_fields,
    pseudonym_field,
)
from gateway.research.extract_output import (
    Outcome,
    RiskReport,
    scatter,
    second_pass,
    spill_writer,
)
from gateway.research.extract_plan import (
    ExtractPlan,
)
from gateway.research.generalise import (
    GeneralisationState,
)
from gateway.research.heap import give_back
from gateway.research.level_choice import choose_levels
from gateway.research.pair_spill import ClassPairSpill
from gateway.research.person_links import Flags, Int64s, People, PersonLinks, distinct
from gateway.research.pseudonyms import Pseudonymiser
from gateway.research.release_modes import (
    Redraw,
    node_classes,
    redraw_tags,
    rowwise,
    stable_numbers,
)

__all__ = [
    "ColumnBatch",
    "Exclusion",
    "ExtractFiles",
    "ExtractRequest",
    "ExtractStats",
    "ProgressSink",
    "RiskReport",
    "batches_from_rows",
    "input_fields",
    "pseudonym_field",
    "write_extract",
]


GIVE_BACK_EVERY = 4
"""Input batches between two calls of ``give_back``: freed memory is returned as it goes."""

REDRAWN_PER_CLASS = 2
"""After a withdrawal, 2k more people of the withdrawn person's class are re-drawn."""


def _touched(people: People, touched: list[Int64s]) -> Flags:
    """Return, per person, whether they withdrew (entirely, or their questionnaire rows)."""
    flags = np.zeros(people.count, dtype=np.bool_)
    if people.withdrawn is not None:
        flags |= people.withdrawn
    if touched:
        flags[people.of(np.concatenate(touched))] = True
    return flags


def _modes(
    plan: ExtractPlan,
    result: NodeResult,
    class_keys: Sequence[ClassKey],
    everyone: PersonPairs | None,
    touched: Flags,
    people: People,
) -> tuple[Flags | None, bool, Redraw | None]:
    """Return what pass 2 applies for the linkage and withdrawal terms.

    Unlinked: the finest classes whose rows are suppressed (row-wise check) and fresh
    pseudonyms. Linked, after a withdrawal: the re-draw tags of the withdrawn and of
    ``REDRAWN_PER_CLASS`` x k more people of each of their quasi-identifier classes.
    """
    if plan.unlinked:
        full_of, full_keys = node_classes(class_keys, plan.lattice, result.node)
        small = np.array([key in result.small_classes for key in full_keys], dtype=np.bool_)
        return small[full_of], True, None
    if everyone is None:
        return None, False, None
    qi_of, qi_keys = node_classes(class_keys, plan.lattice, result.node, plan.plain)
    stable = stable_numbers(people)
    others = REDRAWN_PER_CLASS * plan.agreement.disclosure.k
    return None, False, redraw_tags(everyone, qi_of, qi_keys, touched, stable, others)


@dataclass(frozen=True)
class ExtractFiles:
    """What ``write_extract`` produced: plaintext files, counts, the check and the state."""

    csv: Path
    parquet: Path
    stats: ExtractStats
    disclosure: NodeResult
    state: GeneralisationState
    risk: RiskReport | None = None


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
    sink = progress or NoProgress()
    plan = ExtractPlan(request, pseudonymiser)
    stats = ExtractStats()
    for reason, count in request.excluded_upstream.items():
        if count:
            stats.excluded[reason] += count
            stats.rows_in += count
    disclosure = request.agreement.disclosure
    seed = request.shuffle_seed if request.shuffle_seed is not None else os.urandom(SEED_BYTES)
    rng = np.random.default_rng(int.from_bytes(seed, "big"))
    counter = ClassCounter(count_subjects=True)  # numbers the classes; pairs go to ``spill``
    values = _ValueCounter({c.name: plan.spill_column(c.name) for c in plan.coded})
    links = PersonLinks()
    gone_rows = 0
    touched: list[Int64s] = []  # anchors of respondents whose questionnaire rows left
    buckets = [workdir / f"pass1-{i:02d}.arrow" for i in range(BUCKETS)]
    sink.start("pseudonymise, generalise, link people, count classes", None)
    with ExitStack() as stack:
        writers = [spill_writer(stack, path, plan.file_schema) for path in buckets]
        class_pairs = ClassPairSpill(workdir, stack)
        for number, batch in enumerate(batches, start=1):
            if number % GIVE_BACK_EVERY == 0:
                give_back()
            done = plan.transform(batch, stats)
            anchors = links.add(done.links)
            spill = done.spill
            withdrawn = count_true(done.gone)
            if withdrawn and plan.withdraw_person:
                links.withdraw(anchors.filter(done.gone))
                gone_rows += withdrawn
            elif withdrawn:
                # only the questionnaire rows leave; the person stays (still linked)
                touched.append(
                    np.asarray(anchors.filter(done.gone).to_numpy(zero_copy_only=False), np.int64)
                )
                stay = pc.invert(done.gone)
                spill, anchors = spill.filter(stay), anchors.filter(stay)
                stats.excluded[Exclusion.RESPONDENT_WITHDRAWN] += withdrawn
            class_ids = counter.class_ids([spill.column(n) for n in plan.key_names])
            class_pairs.add(class_ids, anchors)
            values.add(spill, anchors)
            spilled = pa.RecordBatch.from_arrays(
                [*spill.columns, class_ids], schema=plan.file_schema
            )
            scatter(spilled, rng, writers)
            sink.advance(
                len(batch["provider"]) if not isinstance(batch, pa.RecordBatch) else batch.num_rows
            )
    give_back()
    counter.keys.seal()
    people = links.resolve()
    del links
    values.link(people)
    # every pair with its person; for the check the withdrawn are marked (-2) in place,
    # and only their pairs' people are kept aside to unmark them after: not a copy of
    # every pair's person
    pairs = class_pairs.person_pairs(people, counter.keys)
    marked: tuple[Int64s, Int64s] | None = None
    if people.withdrawn is not None:
        person = pairs.person
        at = np.flatnonzero((person >= 0) & people.withdrawn[np.maximum(person, 0)])
        marked = (at, person[at])
        person[at] = -2
        del person, at
    class_keys = counter.keys
    flags = _touched(people, touched)
    keep_everyone = bool(flags.any()) and not plan.unlinked
    del counter
    withdrawn_rows = pairs.withdrawn_rows()
    if withdrawn_rows:
        stats.excluded[Exclusion.RESPONDENT_WITHDRAWN] += withdrawn_rows
        stats.rows_selected -= withdrawn_rows - gone_rows
    stats.withdrawals_applied = int(flags.sum())
    result = choose_levels(
        rowwise(pairs) if plan.unlinked else pairs,
        plan.lattice,
        disclosure.k,
        disclosure.max_suppressed_share,
        plan.fixed,
        plan.judge,
    )
    everyone: PersonPairs | None = None
    if keep_everyone:
        if marked is not None:
            pairs.person[marked[0]] = marked[1]
        # a new object: nothing the check worked out from the marked people comes along
        everyone = replace(pairs, person=pairs.person)
    del pairs, marked
    state = GeneralisationState(
        agreement=plan.state.agreement,
        project=plan.state.project,
        levels=result.levels,
        reference_date=plan.state.reference_date,
        age_bands=plan.state.age_bands,
    )
    modes = _modes(plan, result, class_keys, everyone, flags, people)
    stats.people_redrawn = 0 if modes[2] is None else modes[2].people
    del everyone
    if plan.unlinked:
        # rows are checked one by one: every person stays but the withdrawn
        kept_people = np.ones(people.count, dtype=np.bool_)
        if people.withdrawn is not None:
            kept_people &= ~people.withdrawn
        result = replace(result, kept_people=kept_people)
    kept = result.kept_people
    assert kept is not None  # people are always counted
    rare = values.rare(people, kept, disclosure.k)
    del values
    give_back()
    csv_path, parquet_path = workdir / CSV_NAME, workdir / PARQUET_NAME
    risk = second_pass(
        plan,
        result,
        Outcome(people, kept, rare, rng, class_keys, *modes),
        buckets,
        csv_path,
        parquet_path,
        stats,
        sink,
    )
    return ExtractFiles(csv_path, parquet_path, stats, result, state, risk)
