"""Pass 2 of the extract: shuffle, suppress people, merge rare values, write files, measure risk."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from gateway.research.class_counter import ClassKey, group_keys
from gateway.research.disclosure import Lattice, NodeResult
from gateway.research.events import itemsets, smallest_support
from gateway.research.extract_input import (
    ANCHOR,
    CLASS_ID,
    NULL_MARK,
    ROW_BATCH,
    SEP_SCALAR,
    ExtractStats,
    ProgressSink,
    count_true,
)
from gateway.research.extract_plan import (
    ExtractPlan,
)
from gateway.research.heap import give_back
from gateway.research.person_links import Int64s, People, distinct
from gateway.research.release_modes import Redraw, fresh, redraw


@dataclass(frozen=True)
class RiskReport:
    """The person-level risk of the released files, measured on what was written.

    ``prosecutor_max`` is 1 / the smallest class of people over the quasi-identifiers;
    ``event_*`` the same for an attacker who also knows ``m`` of a person's events
    (category and week): the largest risk and the share of people whose risk exceeds
    1/k. ``l_diversity`` gives, per sensitive attribute, the fewest distinct values in
    any class; ``information_loss`` the share of generalisation steps taken (0: finest
    levels everywhere, 1: coarsest), at the chosen ``levels``. Utility as ARX reports
    it: ``discernibility`` (DM: each released person costs the size of their class, each
    suppressed person the number of people) and ``average_class_size`` (C_avg: released
    people per class, over k; 1 is the ideal).
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
    levels: dict[str, str] = field(default_factory=dict)
    discernibility: int = 0
    average_class_size: str = "0.000000"

    def share(self, count: int) -> str:
        """Return ``count`` as a share of the released people (decimal text)."""
        return f"{count / self.people if self.people else 0.0:.6f}"


@dataclass(frozen=True)
class Outcome:
    """What pass 2 applies: who is released, which values are merged, the shuffle."""

    people: People
    kept: Any
    rare: dict[str, tuple[pa.Array, str | None]]
    rng: np.random.Generator
    class_keys: Sequence[ClassKey]
    row_suppressed: Any = None
    """Unlinked: per finest class, whether its rows are suppressed (row-wise check)."""
    fresh: bool = False
    """Unlinked: every pseudonym cell gets a fresh random value."""
    tags: Redraw | None = None
    """Linked, after withdrawals: the re-draw tag of each affected person."""


class _Codes:
    """Small global integer codes for the values of one column, across buckets."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}

    def of(self, values: pa.Array) -> Int64s:
        """Return each value's code (null has a code of its own)."""
        encoded = pc.fill_null(values, NULL_MARK).dictionary_encode()
        mapping = [self.ids.setdefault(v, len(self.ids)) for v in encoded.dictionary.to_pylist()]
        codes = np.asarray(mapping, dtype=np.int64)
        return codes[np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)]


PART_BITS = 31
"""Bits of each part of a packed class key (codes number far below 2**31)."""


def _distinct_pairs(key: Int64s, person: npt.NDArray[np.int32]) -> tuple[Int64s, Any]:
    """Return the distinct (key, person) pairs, sorted."""
    if len(key) == 0:
        return key, person
    shift = max(int(person.max()).bit_length(), 1)
    if int(key.min()) >= 0 and int(person.min()) >= 0 and int(key.max()).bit_length() + shift < 64:
        # both fit one int64: one sort of packed pairs, several times faster than lexsort
        packed = distinct((key << shift) | person.astype(np.int64))
        return packed >> shift, (packed & ((1 << shift) - 1)).astype(np.int32)
    order = np.lexsort((person, key))
    key, person = key[order], person[order]
    first = np.empty(len(key), dtype=np.bool_)
    first[0] = True
    first[1:] = (key[1:] != key[:-1]) | (person[1:] != person[:-1])
    return key[first], person[first]


PAIR_RECORD = np.dtype([("key", "<i8"), ("person", "<i4")])
"""One spilled (class, person) pair: 12 bytes."""
PAIR_PARTITIONS = 64
"""Files the (class, person) pairs are spread over, by class: each is measured on its own."""


class _PersonClasses:
    """Distinct (class, person) pairs of the written rows, to measure each person's classes.

    A class is one part (the quasi-identifier class) or two (and the event), packed into
    one int64 key. Each batch's distinct pairs are spilled to one of ``PAIR_PARTITIONS``
    files in ``folder`` chosen by the class, so every class lies in one file: ``risk``
    then reads one file at a time and memory holds one file's pairs and a number per
    person, whatever the number of rows (the m-event attacker's itemsets, m above 1,
    read them all).
    """

    def __init__(self, folder: Path, name: str, stack: ExitStack) -> None:
        self.paths = [folder / f"{name}-{i:02d}.pairs" for i in range(PAIR_PARTITIONS)]
        self._files = [stack.enter_context(open(path, "wb")) for path in self.paths]  # noqa: SIM115
        self.parts = 0
        self.width = 0
        """One more than the highest person number seen."""
        self.count = 0
        """The classes holding anybody (known once ``risk`` ran)."""

    def add(self, parts: list[Int64s], people: Int64s) -> None:
        """Add one part's rows: the parts of each row's class (global codes) and person."""
        if not 1 <= len(parts) <= 2:
            raise ValueError("a class has one or two parts")
        self.parts = len(parts)
        key = parts[0].astype(np.int64)
        if len(parts) == 2:
            key = (key << PART_BITS) | parts[1].astype(np.int64)
        key, person = _distinct_pairs(key, people.astype(np.int32))
        if len(key) == 0:
            return
        self.width = max(self.width, int(person.max()) + 1)
        partition = key % PAIR_PARTITIONS
        order = np.argsort(partition.astype(np.uint8), kind="stable")
        records = np.empty(len(key), dtype=PAIR_RECORD)
        records["key"], records["person"] = key[order], person[order]
        counts = np.bincount(partition, minlength=PAIR_PARTITIONS).tolist()
        offset = 0
        for file, count in zip(self._files, counts, strict=True):
            if count:
                # into the file's buffer: ndarray.tofile flushes and writes at once, one
                # system call per part and batch (8192 per 200k-row release)
                file.write(records[offset : offset + count].tobytes())
                offset += count

    def _read(self, path: Path) -> tuple[Int64s, npt.NDArray[np.int32]]:
        """Return the distinct pairs of one file (sorted by class, then person); remove it."""
        records = np.fromfile(path, dtype=PAIR_RECORD)
        path.unlink()
        key, person = _distinct_pairs(
            np.ascontiguousarray(records["key"]), np.ascontiguousarray(records["person"])
        )
        return key, person

    def risk(self, k: int, m: int = 1) -> tuple[int, int, Fraction, int]:
        """Return (people, people whose smallest class holds fewer than k, max risk, DM).

        With ``m`` above 1 the first part is the quasi-identifier class and the others
        one event: a person's classes are then their itemsets of 1..m events (the
        m-event attacker). DM is the discernibility of the classes: the sum of the
        squared class sizes in people.
        """
        for file in self._files:
            file.close()
        if self.width == 0:
            return 0, 0, Fraction(0), 0
        if m > 1 and self.parts == 2:
            pairs = [self._read(path) for path in self.paths]
            key = np.concatenate([p[0] for p in pairs])
            people = np.concatenate([p[1] for p in pairs]).astype(np.int64)
            del pairs
            sets, holders = itemsets(key >> PART_BITS, key & ((1 << PART_BITS) - 1), people, m)
            smallest = smallest_support(sets, holders, self.width)
            discernibility = 0
        else:
            # every class lies in one file: its size there is its size
            smallest = np.full(self.width, np.iinfo(np.int64).max, dtype=np.int64)
            discernibility = 0
            for path in self.paths:
                key, person = self._read(path)
                if len(key) == 0:
                    continue
                starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
                sizes = np.diff(np.r_[starts, len(key)])
                discernibility += int((sizes.astype(np.int64) ** 2).sum())
                self.count += len(sizes)
                np.minimum.at(smallest, person, np.repeat(sizes, sizes))
        smallest = smallest[smallest < np.iinfo(np.int64).max]
        least = int(smallest.min())
        return len(smallest), int((smallest < k).sum()), Fraction(1, least), discernibility


def _node_of_class(
    keys: Sequence[ClassKey], lattice: Lattice, node: tuple[int, ...], count: int | None = None
) -> Int64s:
    """Return, per finest class, its class at ``node`` (dense ids) over the first ``count`` QIs."""
    return group_keys(keys, lattice.positions(node)[:count])[0]


def _risk(
    plan: ExtractPlan,
    result: NodeResult,
    classes: _PersonClasses,
    events: _PersonClasses,
    diversity: dict[str, list[Int64s]],
) -> RiskReport:
    k = plan.agreement.disclosure.k
    m = 1 if plan.unlinked else plan.agreement.disclosure.known_events
    people, prosecutor_above, prosecutor_max, discernibility = classes.risk(k)
    _, event_above, event_max, _ = events.risk(k, m)
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
        m=m,
        people=people,
        prosecutor_max=_decimal(prosecutor_max),
        prosecutor_people_above=prosecutor_above,
        event_max=_decimal(event_max),
        event_people_above=event_above,
        l_diversity=l_values,
        information_loss=_decimal(loss),
        levels=dict(result.levels),
        discernibility=discernibility + result.suppressed_people * result.people,
        average_class_size=_decimal(
            Fraction(people, classes.count * k) if classes.count and k else Fraction(0)
        ),
    )


def _decimal(value: Fraction) -> str:
    return f"{float(value):.6f}"


SPILL_BUFFER = 1 << 16
"""Bytes buffered per open spill file: a scattered batch writes a few hundred rows to each
bucket, dozens of small buffers that would otherwise each cost a system call."""


def spill_writer(stack: ExitStack, path: Path, schema: pa.Schema) -> Any:
    """Open an Arrow IPC stream writer on ``path`` (buffered), closed with ``stack``."""
    sink = stack.enter_context(pa.output_stream(str(path), buffer_size=SPILL_BUFFER))
    return stack.enter_context(pa.ipc.new_stream(sink, schema))


BUCKET_BYTES = 6 << 20
"""A spilled bucket larger than this is scattered again before it is read whole, so pass 2
holds a bounded number of rows whatever the size of the release. Buckets hold about 5 MB
per million rows: up to some 1.2 million rows none is scattered again; above, pass 2 holds
at most 6 MB of spill (and its permuted, filtered copies) at a time, where 16 MB let a
2-million-row release hold 10 MB buckets."""


def scatter(
    spill: pa.RecordBatch | pa.Table, rng: np.random.Generator, writers: Sequence[Any]
) -> None:
    """Write the rows of ``spill`` to random buckets."""
    if spill.num_rows == 0:
        return
    bucket = rng.integers(0, len(writers), spill.num_rows)
    # the same draw as ever; a stable sort of small integers is a radix sort
    order = np.argsort(bucket.astype(np.uint8 if len(writers) <= 256 else np.int64), kind="stable")
    ordered = spill.take(pa.array(order))
    counts = np.bincount(bucket, minlength=len(writers))
    offset = 0
    for writer, count in zip(writers, counts.tolist(), strict=True):
        if count:
            writer.write(ordered.slice(offset, count))
            offset += count


SCATTER_ROWS = 16_384
"""Rows of a large bucket scattered again at a time. Its file holds a small message per
pass-1 batch (a few hundred rows each): scattered one by one, a 2-million-row release
made some 7,700 calls, half of pass 2's time."""


def _groups(reader: Any) -> Iterator[pa.Table]:
    """Yield the batches of ``reader`` joined into tables of about ``SCATTER_ROWS`` rows."""
    held: list[pa.RecordBatch] = []
    rows = 0
    for batch in reader:
        held.append(batch)
        rows += batch.num_rows
        if rows >= SCATTER_ROWS:
            yield pa.Table.from_batches(held).combine_chunks()
            held, rows = [], 0
    if held:
        yield pa.Table.from_batches(held).combine_chunks()


def permutations(
    buckets: Sequence[Path], rng: np.random.Generator, columns: Sequence[str] | None = None
) -> Iterator[tuple[pa.Table, Int64s]]:
    """Yield the spilled ``buckets``' rows, a bounded part at a time, each with a random order.

    A bucket is read whole and yielded with a random permutation of its rows; one
    larger than ``BUCKET_BYTES`` is first scattered at random into smaller ones
    (streamed, batch by batch). Random buckets, each permuted, make a uniformly random
    order of all rows. Each file is removed once read. Only ``columns`` are yielded (all
    when None). The caller takes the rows in that order, and can leave rows out of the
    order first: one copy of what it keeps, not a permuted copy and a filtered one.
    """
    pending = list(buckets)
    while pending:
        path = pending.pop(0)
        size = path.stat().st_size
        # buffered: a file holds a message per batch pass 1 (or a scatter) wrote, and each
        # message is several small reads
        source = pa.input_stream(str(path), compression=None, buffer_size=SPILL_BUFFER)
        with source as raw, pa.ipc.open_stream(raw) as reader:
            if size > BUCKET_BYTES:
                parts = [
                    path.with_name(f"{path.stem}-{i:02d}{path.suffix}")
                    for i in range(2 * -(-size // BUCKET_BYTES))
                ]
                with ExitStack() as stack:
                    writers = [spill_writer(stack, part, reader.schema) for part in parts]
                    for group in _groups(reader):
                        scatter(group, rng, writers)
                table = None
            else:
                table = reader.read_all()
                if columns is not None:
                    table = table.select(list(columns))
        path.unlink()
        if table is None:
            pending[:0] = parts
        elif table.num_rows:
            yield table, rng.permutation(table.num_rows)


def second_pass(
    plan: ExtractPlan,
    result: NodeResult,
    outcome: Outcome,
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
    qi_of_class = _node_of_class(outcome.class_keys, plan.lattice, result.node, plan.plain)
    needed = list(dict.fromkeys([*source_of.values(), ANCHOR, CLASS_ID]))
    released = np.zeros(people.count, dtype=np.bool_)
    row_offset = 0
    event_codes = _Codes()
    value_codes = {name: _Codes() for name in plan.sensitive}
    diversity: dict[str, list[Int64s]] = {name: [] for name in plan.sensitive}
    coded = [col.name for col in plan.released if col.name not in plan.id_types]
    sink.start("shuffle, suppress people, write CSV and Parquet", stats.rows_selected)
    with (
        ExitStack() as stack,
        pa_csv.CSVWriter(str(csv_path), plan.output_schema) as csv_writer,
        pq.ParquetWriter(
            str(parquet_path),
            plan.output_schema,
            compression="zstd",
            # pseudonyms are all but unique: a dictionary of them is built only to be
            # dropped, and their min and max say nothing
            use_dictionary=coded,
            write_statistics=coded,
        ) as pq_writer,
    ):
        classes = _PersonClasses(csv_path.parent, "classes", stack)
        events = _PersonClasses(csv_path.parent, "events", stack)
        # a per-release random order: nothing of the submission order survives; only
        # the chosen level of each quasi-identifier travels on
        for bucket, order in permutations(buckets, rng, needed):
            person = people.of(np.asarray(bucket.column(ANCHOR).to_numpy(), dtype=np.int64))
            keep = outcome.kept[person]
            if outcome.row_suppressed is not None:
                finest = np.asarray(bucket.column(CLASS_ID).to_numpy(), dtype=np.int64)
                keep = keep & ~outcome.row_suppressed[finest]
            if withdrawn is not None:
                stats.rows_suppressed += int((~keep & ~withdrawn[person]).sum())
            else:
                stats.rows_suppressed += int((~keep).sum())
            if not keep.all():  # rows of suppressed or withdrawn people leave the order
                order = order[keep[order]]
            # the kept rows in the random order: one copy of the bucket, never filtered again
            table = bucket.take(pa.array(order))
            person = person[order]
            del bucket
            released[person] = True
            arrays = []
            for col in plan.released:
                column = table.column(source_of[col.name]).combine_chunks()
                merged = outcome.rare.get(col.name)
                if merged is not None:
                    rare_values, stand_in = merged
                    is_rare = pc.is_in(column, value_set=rare_values)
                    column = pc.if_else(is_rare, pa.scalar(stand_in, pa.string()), column)
                    stats.values_merged[col.name] += count_true(is_rare)
                id_type = plan.id_types.get(col.name)
                if id_type is not None and outcome.fresh:
                    column = fresh(column)
                elif id_type is not None and outcome.tags is not None:
                    column = redraw(column, person, outcome.tags, plan.pseudonymiser, id_type)
                arrays.append(column)
            out = pa.Table.from_arrays(arrays, schema=plan.output_schema)
            stats.rows_out += out.num_rows
            if out.num_rows:
                finest = np.asarray(table.column(CLASS_ID).to_numpy(), dtype=np.int64)
                qi_cls = qi_of_class[finest]
                if outcome.fresh:  # unlinked: each row is its own person to an attacker
                    person = np.arange(row_offset, row_offset + out.num_rows, dtype=np.int64)
                    row_offset += out.num_rows
                classes.add([qi_cls], person)
                if plan.event_columns:
                    # one code per event as released (its event attributes joined)
                    parts = [
                        pc.fill_null(out.column(name).combine_chunks(), NULL_MARK)
                        for name in plan.event_columns
                    ]
                    joined = (
                        parts[0]
                        if len(parts) == 1
                        else pc.binary_join_element_wise(*parts, SEP_SCALAR)
                    )
                    events.add([qi_cls, event_codes.of(joined)], person)
                for name in plan.sensitive:
                    values = out.column(name).combine_chunks()
                    present = np.asarray(pc.is_valid(values).to_numpy(zero_copy_only=False))
                    found = value_codes[name].of(values)
                    diversity[name].append(distinct((qi_cls[present] << 24) + found[present]))
                for part in out.to_batches(max_chunksize=ROW_BATCH):
                    csv_writer.write_batch(part)
                    pq_writer.write_batch(part)
            sink.advance(len(keep))
            del table, out, arrays
            give_back()
    stats.people_out = int(released.sum())
    return _risk(plan, result, classes, events, diversity)
