"""Counting a release's equivalence classes in distinct (class, person) pairs.

The first pass of an extract feeds each batch's finest quasi-identifier keys and each
row's subject hash into a ``ClassCounter``: classes are numbered as first seen, and one
row per distinct (class, subject) pair keeps its row count, so memory follows the people,
not the rows. ``group_keys`` and ``node_parts`` group the finest classes by the key parts
a generalisation node keeps. ``gateway.research.disclosure`` judges the classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any, cast, overload

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from gateway.research.person_links import COMPACT_EVERY, Int64s, int64s

ClassKey = tuple[str | None, ...]
CLASS = "class"
SUBJECT = "subject"
ROWS = "rows"
SEP = "\x1f"  # joins key parts; never part of a generalised value
NULL_MARK = "\x00"


@dataclass(frozen=True)
class _Pairs:
    """(class, subject) pairs with row counts, as numpy arrays (``known``: subject not null)."""

    classes: npt.NDArray[np.int32]
    subjects: npt.NDArray[np.int64]
    known: npt.NDArray[np.bool_]
    rows: npt.NDArray[np.int64]

    @classmethod
    def concat(cls, parts: list[_Pairs], clear: bool = False) -> _Pairs:
        """Return the parts joined; with ``clear``, empty ``parts`` (their arrays may go)."""
        joined = cls(
            np.concatenate([np.empty(0, np.int32), *(p.classes for p in parts)]),
            np.concatenate([np.empty(0, np.int64), *(p.subjects for p in parts)]),
            np.concatenate([np.empty(0, np.bool_), *(p.known for p in parts)]),
            np.concatenate([np.empty(0, np.int64), *(p.rows for p in parts)]),
        )
        if clear:
            parts.clear()
        return joined


def _fold(pairs: _Pairs) -> _Pairs:
    """Return the distinct pairs (sorted), each with the sum of its rows.

    By sorting, in numpy: a hash aggregation (Acero's group_by) needs several times
    the memory of its input on the merged pairs of a large release.
    """
    if len(pairs.classes) == 0:
        return pairs
    classes, subjects, known, rows = pairs.classes, pairs.subjects, pairs.known, pairs.rows
    del pairs  # each input array is freed as soon as its sorted copy exists
    # (class, known, subject) order in two sorts, not lexsort's three stable ones: the
    # subjects unstably (ties are equal pairs, summed alike), then class and known, packed
    # in one key, stably
    order = np.argsort(subjects)
    key = (classes.astype(np.int64) << 1) | known
    key = key[order]
    order = order[np.argsort(key, kind="stable")]
    del key
    classes = classes[order]
    subjects = subjects[order]
    known = known[order]
    rows = rows[order]
    del order
    first = np.empty(len(classes), dtype=np.bool_)
    first[0] = True
    first[1:] = (
        (classes[1:] != classes[:-1]) | (subjects[1:] != subjects[:-1]) | (known[1:] != known[:-1])
    )
    starts = np.flatnonzero(first)
    return _Pairs(classes[starts], subjects[starts], known[starts], np.add.reduceat(rows, starts))


_PACKED_BITS = 62
"""Class keys whose part codes fit this many bits together are looked up as one integer."""
_MERGE_AT = 1 << 15
"""New packed keys held beside the sorted ones before they are merged into them."""


Codes = npt.NDArray[np.int16] | npt.NDArray[np.int32]
"""Part codes of class keys: int16 where every code fits (half the memory), else int32."""
_NARROW = np.iinfo(np.int16).max - 1
"""The largest code held as int16 (a width, the largest code plus one, still fits)."""


def _narrowed(rows: npt.NDArray[np.int32]) -> Codes:
    """Return code ``rows`` as int16 when every code fits, else as they are."""
    if len(rows) and int(rows.max()) > _NARROW:
        return rows
    return rows.astype(np.int16)


def _row_bytes(rows: npt.NDArray[np.int32]) -> list[bytes]:
    """Return each code row as bytes (its codes' memory), in one call."""
    packed = np.ascontiguousarray(rows).view(np.dtype((np.void, 4 * rows.shape[1])))
    return cast(list[bytes], packed.ravel().tolist())


class _PackedIndex:
    """Known class keys packed into one int64 each (``bits`` per part), sorted, with their ids.

    Sixteen bytes a class in two numpy arrays, where a dict of bytes held some 150 (and
    left Python's allocator fragmented once freed). New keys wait in a small sorted
    array and are merged into the large one when it has grown by a quarter.
    """

    def __init__(self) -> None:
        self.bits: list[int] = []
        empty = np.empty(0, np.int64)
        self._keys, self._ids = empty, empty
        self._new_keys, self._new_ids = empty, empty

    def _pack(self, rows: Codes) -> Int64s:
        packed = np.zeros(len(rows), dtype=np.int64)
        shift = 0
        for part, width in enumerate(self.bits):
            term = rows[:, part].astype(np.int64)
            term <<= shift
            packed |= term
            shift += width
        return packed

    def rebuild(self, bits: list[int], rows: Codes, count: int) -> None:
        """Pack every known code row (``rows``: class ``i`` at row ``i``) with ``bits``."""
        self.bits = bits
        self._new_keys = self._new_ids = np.empty(0, np.int64)
        self._keys, self._ids = _sorted(self._pack(rows), np.arange(count, dtype=np.int64))

    def add(self, rows: npt.NDArray[np.int32], numbers: Int64s) -> None:
        """Record new code rows (none of them known) with their class ids."""
        keys = np.concatenate([self._new_keys, self._pack(rows)])
        ids = np.concatenate([self._new_ids, numbers])
        if len(keys) > max(_MERGE_AT, len(self._keys) // 4):
            keys, ids = np.concatenate([self._keys, keys]), np.concatenate([self._ids, ids])
            self._keys = self._ids = np.empty(0, np.int64)
            self._keys, self._ids = _sorted(keys, ids)
            self._new_keys = self._new_ids = np.empty(0, np.int64)
        else:
            self._new_keys, self._new_ids = _sorted(keys, ids)

    def find(self, rows: npt.NDArray[np.int32]) -> Int64s:
        """Return the class id of each code row, or -1 where it is not known."""
        keys = self._pack(rows)
        found = np.full(len(keys), -1, dtype=np.int64)
        for known, ids in ((self._keys, self._ids), (self._new_keys, self._new_ids)):
            if len(known):
                at = np.minimum(np.searchsorted(known, keys), len(known) - 1)
                hit = known[at] == keys
                found[hit] = ids[at[hit]]
        return found


def _sorted(keys: Int64s, ids: Int64s) -> tuple[Int64s, Int64s]:
    order = np.argsort(keys, kind="stable")
    return keys[order], ids[order]


class ClassKeys(Sequence[ClassKey]):
    """The finest class keys by class id, held as a (classes x parts) matrix of codes into
    each part's values (``codes()``), not as a tuple per class: a linked release checked
    against the event attacker has hundreds of thousands of finest classes (every week of
    every person's events). ``keys[i]`` builds class ``i``'s tuple when it is asked for.

    ``number`` gives each row of a batch its class id, new keys numbered in the order
    their first rows come; a packed key (the row's codes as bytes) finds a known class.
    """

    def __init__(self) -> None:
        self._chunks: list[Codes] = []
        self._values: list[pa.Array] = []  # per part: the values seen, by code
        self._decoded: list[list[str | None]] = []  # the same as Python values
        self._coded: Codes | None = None
        self._ids: dict[bytes, int] = {}
        """The known keys as bytes, once they no longer pack into one integer (else empty)."""
        self._index: _PackedIndex | None = _PackedIndex()
        """The known keys packed into one integer each (None once they no longer fit)."""
        self._count = 0
        self._sealed = False

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> ClassKey: ...

    @overload
    def __getitem__(self, index: slice) -> list[ClassKey]: ...

    def __getitem__(self, index: int | slice) -> ClassKey | list[ClassKey]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._count))]
        if not -self._count <= index < self._count:
            raise IndexError(index)
        row = self.codes()[index].tolist()
        return tuple(self._decoded[part][code] for part, code in enumerate(row))

    def _code(self, part: int, column: pa.Array) -> pa.Array:
        """Return each value's code in ``part`` (null is a value too), coding new ones."""
        values = pc.fill_null(column, NULL_MARK)
        if len(self._values) <= part:
            self._values.append(pa.array([], pa.string()))
            self._decoded.append([])
        found = pc.index_in(values, value_set=self._values[part])
        if found.null_count:
            new = pc.unique(values.filter(pc.is_null(found)))
            self._values[part] = pa.concat_arrays([self._values[part], new])
            self._decoded[part].extend(None if v == NULL_MARK else v for v in new.to_pylist())
            found = pc.index_in(values, value_set=self._values[part])
        return found

    def number(self, key_columns: Sequence[pa.Array]) -> npt.NDArray[np.int32]:
        """Return the class id of each row of a batch, given its finest key columns."""
        if self._sealed:
            raise RuntimeError("these class keys are sealed: no more batches")
        rows = len(key_columns[0])
        codes = np.empty((rows, len(key_columns)), dtype=np.int32)
        for part, column in enumerate(key_columns):
            codes[:, part] = self._code(part, column).to_numpy(zero_copy_only=False)
        if rows == 0:
            return np.zeros(0, dtype=np.int32)
        # one integer per row when the batch's mixed radix fits (a sort of int64s), else
        # whole rows; either way each distinct row once, with its first row and inverse
        widths = codes.max(axis=0).astype(np.int64) + 1
        if float(np.prod(widths.astype(np.float64))) < 2.0**62:
            radix = np.cumprod(np.concatenate([[1], widths[:-1]])).astype(np.int64)
            _, first, inverse = np.unique(codes @ radix, return_index=True, return_inverse=True)
            distinct = codes[first]
        else:
            distinct, first, inverse = np.unique(
                codes, axis=0, return_index=True, return_inverse=True
            )
        ids = self._known(distinct)
        # the new ones numbered in the order their first rows come
        fresh = np.flatnonzero(ids < 0)
        if len(fresh):
            fresh = fresh[np.argsort(first[fresh], kind="stable")]
            numbers = np.arange(self._count, self._count + len(fresh), dtype=np.int64)
            self._remember(distinct[fresh], numbers)
            ids[fresh] = numbers
            self._chunks.append(_narrowed(distinct[fresh]))
            self._count += len(fresh)
            self._coded = None
        numbered: npt.NDArray[np.int32] = ids.astype(np.int32)[np.asarray(inverse).reshape(-1)]
        return numbered

    def _bits(self) -> list[int]:
        """Bits per part that hold every code seen so far (at least one)."""
        return [max(len(values) - 1, 1).bit_length() for values in self._values]

    def _known(self, distinct: npt.NDArray[np.int32]) -> Int64s:
        """Return the class id of each distinct code row of a batch, or -1 where it is new."""
        index = self._index
        if index is not None:
            bits = self._bits()
            if sum(bits) <= _PACKED_BITS:
                if bits != index.bits:  # a part outgrew its bits: pack the known keys again
                    index.rebuild(bits, self.codes(), self._count)
                return index.find(distinct)
            # the keys no longer pack into one integer: look them up as bytes from now on
            self._index = None
            known = self.codes().astype(np.int32)  # as a batch's codes: four bytes a part
            self._ids = dict(zip(_row_bytes(known), range(len(known)), strict=True))
            del known
        # each distinct row's bytes in one call, looked up in one pass of C (``map``)
        texts = _row_bytes(distinct)
        return np.fromiter(map(self._ids.get, texts, repeat(-1)), np.int64, len(texts))

    def _remember(self, rows: npt.NDArray[np.int32], numbers: Int64s) -> None:
        """Record new code rows with their class ids."""
        if self._index is not None:
            self._index.add(rows, numbers)
        else:
            self._ids.update(zip(_row_bytes(rows), numbers.tolist(), strict=True))

    def seal(self) -> None:
        """No more batches: let the look-up of packed keys go (the codes stay)."""
        self._ids = {}
        self._index = None
        self._sealed = True

    def decode(
        self, chosen: npt.NDArray[np.integer[Any]], positions: Sequence[int], unique: bool = False
    ) -> list[ClassKey]:
        """Return the keys over ``positions`` of the classes ``chosen``, in their order
        (``unique``: each distinct key once, in no particular order)."""
        if len(chosen) == 0:
            return []
        at = list(positions)
        cut = self.codes()[chosen][:, at]
        rows = (np.unique(cut, axis=0) if unique else cut).tolist()
        return [tuple(self._decoded[p][c] for p, c in zip(at, row, strict=True)) for row in rows]

    def codes(self) -> Codes:
        """The (classes x parts) matrix of part codes (int16 while every code fits, else int32)."""
        if self._coded is None:
            parts = len(self._values)
            self._coded = np.concatenate([np.zeros((0, parts), dtype=np.int16), *self._chunks])
            self._chunks = [self._coded]
        return self._coded


class ClassCounter:
    """Distinct (class, subject) pairs with their row counts, across batches.

    Classes are numbered as they are first seen (``keys[i]`` is the finest key of class
    ``i``: every level of every quasi-identifier); subjects are 64-bit hashes of the
    subject pseudonym (null: no subject key). Three integers per pair keep the memory
    far below that of the rows.
    """

    def __init__(self, count_subjects: bool) -> None:
        self.count_subjects = count_subjects
        self.keys = ClassKeys()
        self._parts: list[_Pairs] = []
        self._pending = 0
        self._merged = 0

    def class_ids(self, key_columns: Sequence[pa.Array]) -> pa.Array:
        """Return the class id (int32) of each row, given its finest key columns (strings)."""
        return pa.array(self.keys.number(key_columns), pa.int32())

    def add(self, class_ids: pa.Array, subjects: pa.Array | None) -> None:
        """Count one batch: each row's class id and its subject hash (int64, or null)."""
        if len(class_ids) == 0:
            return
        classes = np.asarray(class_ids.to_numpy(zero_copy_only=False), dtype=np.int32)
        if self.count_subjects:
            if subjects is None:
                raise ValueError("this counter counts subjects")
            known = np.asarray(pc.is_valid(subjects).to_numpy(zero_copy_only=False), np.bool_)
            hashes = int64s(pc.fill_null(subjects, 0))
        else:
            known = np.zeros(len(classes), dtype=np.bool_)
            hashes = np.zeros(len(classes), dtype=np.int64)
        part = _fold(_Pairs(classes, hashes, known, np.ones(len(classes), dtype=np.int64)))
        self._parts.append(part)
        self._pending += len(part.classes)
        # merge when the new pairs outgrow the merged ones: amortised, and memory stays
        # within a small multiple of the distinct (class, subject) pairs
        if self._pending > max(COMPACT_EVERY, self._merged):
            self._compact()

    def _compact(self) -> None:
        if len(self._parts) > 1:
            parts, self._parts = self._parts, []
            # the parts are freed once joined, and the joined copy once sorted (``_fold``
            # holds the only reference): at most two copies of the pairs at a time
            self._parts = [_fold(_Pairs.concat(parts, clear=True))]
        self._merged = len(self._parts[0].classes) if self._parts else 0
        self._pending = 0

    def pairs(self) -> _Pairs:
        """Return all pairs as numpy arrays (distinct, sorted); unknown subjects are 0."""
        self._compact()
        return self._parts[0] if self._parts else _Pairs.concat([])

    def table(self) -> pa.Table:
        """Return all pairs: ``class``, ``subject`` (if counted) and ``rows``."""
        pairs = self.pairs()
        columns = {CLASS: pa.array(pairs.classes, pa.int32())}
        if self.count_subjects:
            columns[SUBJECT] = pa.array(pairs.subjects, pa.int64(), mask=~pairs.known)
        columns[ROWS] = pa.array(pairs.rows, pa.int64())
        return pa.table(columns)

    @property
    def total_rows(self) -> int:
        """The number of rows counted."""
        return int(pc.sum(self.table().column(ROWS)).as_py() or 0)


def key_codes(keys: Sequence[ClassKey]) -> npt.NDArray[np.int64]:
    """Return a (classes x key parts) matrix: each part's value as a dense code (null too)."""
    if not keys:
        return np.zeros((0, 0), dtype=np.int64)
    columns = [
        pc.dictionary_encode(pa.array(part, pa.string()), null_encoding="encode").indices
        for part in zip(*keys, strict=True)
    ]
    return np.stack([np.asarray(c.to_numpy(), dtype=np.int64) for c in columns], axis=1)


def group_keys(
    keys: Sequence[ClassKey], positions: Sequence[int]
) -> tuple[Int64s, npt.NDArray[np.intp]]:
    """Return, per finest class, the dense id of its key over ``positions`` (numbered in
    order of first appearance), and per id the first finest class that has it.

    ``[0]`` and no ids when there are no classes (an index array that is never used).
    """
    if not keys:
        return np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.intp)
    codes = cached_codes(keys)[:, list(positions)]
    if codes.shape[1] == 0:
        return np.zeros(len(keys), dtype=np.int64), np.zeros(1, dtype=np.intp)
    # one integer per key when the mixed radix fits, else whole rows
    widths = codes.max(axis=0) + 1
    if float(np.prod(widths.astype(np.float64))) < 2.0**62:
        radix = np.cumprod(np.concatenate([[1], widths[:-1]])).astype(np.int64)
        _, first, inverse = np.unique(codes @ radix, return_index=True, return_inverse=True)
    else:
        _, first, inverse = np.unique(codes, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order), dtype=np.int64)
    return rank[np.asarray(inverse).reshape(-1)], first[order]


def node_parts(keys: Sequence[ClassKey], positions: Sequence[int]) -> tuple[Int64s, list[ClassKey]]:
    """Return, per finest class, its dense id over ``positions``, and the keys by id."""
    of, firsts = group_keys(keys, positions)
    if isinstance(keys, ClassKeys):
        return of, keys.decode(firsts, positions)
    return of, [tuple(keys[i][p] for p in positions) for i in firsts]


_CODES: dict[int, tuple[Sequence[ClassKey], int, npt.NDArray[np.int64]]] = {}


def cached_codes(keys: Sequence[ClassKey]) -> npt.NDArray[np.signedinteger[Any]]:
    """``key_codes(keys)``, kept for the last key list (every node of a release reuses
    it; class keys are only ever appended): a list that grew since is coded again."""
    if isinstance(keys, ClassKeys):
        return keys.codes()
    held = _CODES.get(id(keys))
    if held is not None and held[0] is keys and held[1] == len(keys):
        return held[2]
    codes = key_codes(keys)
    _CODES.clear()  # one list at a time: a release's, not every release's since start
    _CODES[id(keys)] = (keys, len(keys), codes)
    return codes
