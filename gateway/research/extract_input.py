"""The extract's input: the request, its counts, input batches, pseudonym fields and hashes."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from itertools import islice
from typing import Any, Protocol, TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gateway.errors import InvalidInputError
from gateway.identifiers import birth_date, canonical_name
from gateway.research.agreements import Agreement, Column
from gateway.research.generalise import (
    GeneralisationState,
    strings,
)
from gateway.research.transforms import TransformKind

ROW_BATCH = 16_384
BUCKETS = 64
"""Random buckets of the spill; pass 2 shuffles one bucket at a time (bounded memory:
about 5 MB a bucket per million rows; a larger bucket than ``extract_output.BUCKET_BYTES``
is scattered again first)."""
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
SEP = "\x1f"  # joins key parts; never part of a provider, category or generalised value
NULL_MARK = "\x00"
NULL_STRING = pa.scalar(None, pa.string())
SEP_SCALAR = pa.scalar(SEP, pa.string())
"""``SEP`` as a typed Arrow scalar: a bare Python value makes pyarrow infer its type, which
tries to import ``dateutil`` on every call (about 0.15 ms when it is not installed)."""

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


class NoProgress:
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
    people_redrawn: int = 0
    values_merged: Counter[str] = field(default_factory=Counter)


def pseudonym_field(column: Column) -> str:
    """Return the input field that carries ``column``'s pseudonyms when computed on intake.

    Named by the sources and the identifier type (``bsn:bsn``,
    ``name+birth_date:name_birthdate``), so intake and release agree on it. Raises
    ValueError for a column that is not pseudonymised.
    """
    if column.transform.id_type is None:
        raise ValueError(f"column {column.name} is not pseudonymised")
    return f"{'+'.join(column.source)}:{column.transform.id_type.value}"


def source_fields(agreement: Agreement, pseudonymised: bool) -> set[str]:
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
    sources = source_fields(agreement, pseudonymised)
    return sorted({*sources, *CONSENT_FIELDS, "provider", "category"})


def batches_from_rows(
    rows: Iterable[Mapping[str, Any]], fields: Iterable[str], size: int = ROW_BATCH
) -> Iterator[dict[str, list[Any]]]:
    """Yield column batches of ``fields`` from an iterator of row mappings."""
    names = tuple(fields)
    iterator = iter(rows)
    while chunk := list(islice(iterator, size)):
        yield {name: [row.get(name) for row in chunk] for name in names}


def age_on(born: date, day: date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def as_date(value: Any) -> date | None:
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


class NameBirthdateKeys:
    """Canonical ``name|birth date`` keys, memoising both parts for the run.

    Names and birth dates recur far more often than their combinations; folding each
    distinct name once is most of the cost. The memo is bounded and dies with the run.
    """

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.days: dict[str, str] = {}

    def __call__(self, value: str) -> str:
        person, _, born = value.rpartition(SEP)
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


def count_true(mask: pa.Array) -> int:
    return int(pc.sum(pc.cast(mask, pa.int64())).as_py() or 0)


class InputBatch:
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

    def pick(self, name: str, rows: pa.Array) -> Any:
        """Return field ``name`` at ``rows`` as given: an Arrow array or a Python list."""
        raw = self.columns.get(name)
        if raw is None:
            return [None] * len(rows)
        if isinstance(raw, pa.Array | pa.ChunkedArray):
            return raw.take(rows)
        return [raw[i] for i in rows.to_pylist()]

    def python(self, name: str, indices: list[int]) -> list[Any]:
        """Return the original Python values of field ``name`` at ``indices``."""
        raw = self.columns.get(name)
        if raw is None:
            return [None] * len(indices)
        if isinstance(raw, pa.Array | pa.ChunkedArray):
            return list(raw.take(pa.array(indices, pa.int64())).to_pylist())
        return [raw[i] for i in indices]


RESPONDENT = "respondent_id"


_HEX_DIGITS = 16
_NOT_HEX = 0xFF
_NIBBLE = np.full(256, _NOT_HEX, dtype=np.uint8)
_NIBBLE[np.frombuffer(b"0123456789", np.uint8)] = np.arange(10, dtype=np.uint8)
_NIBBLE[np.frombuffer(b"abcdef", np.uint8)] = np.arange(10, 16, dtype=np.uint8)
_DIGIT_AT = np.arange(_HEX_DIGITS, dtype=np.int64)


def _hex_hashes(pseudonyms: pa.Array, kind: str) -> pa.Array | None:
    """Return the first 64 bits of each hex pseudonym, salted by ``kind``; None if not all hex.

    A pseudonym is an HMAC: its first 64 bits are as good a hash as any, and reading
    them with numpy costs nothing next to a Python call per value. Each value's first
    16 bytes are read in place (no copy of the heads, no regular expression); a value
    shorter than that or with anything but 0-9 and a-f among them gives None.
    """
    if pseudonyms.type != pa.string():
        pseudonyms = pseudonyms.cast(pa.string())
    count = len(pseudonyms)
    valid = np.asarray(pc.is_valid(pseudonyms).to_numpy(zero_copy_only=False), np.bool_)
    offsets = np.frombuffer(pseudonyms.buffers()[1], np.int32)[
        pseudonyms.offset : pseudonyms.offset + count + 1
    ]
    starts = offsets[:-1][valid].astype(np.int64)
    if int(np.diff(offsets)[valid].min()) < _HEX_DIGITS:
        return None
    data = np.frombuffer(pseudonyms.buffers()[2], np.uint8)
    nibbles = np.zeros((count, _HEX_DIGITS), np.uint8)  # a null counts as "000..."
    nibbles[valid] = _NIBBLE[data[starts[:, None] + _DIGIT_AT]]
    if int(nibbles.max()) == _NOT_HEX:
        return None
    octets = np.ascontiguousarray((nibbles[:, 0::2] << 4) | nibbles[:, 1::2])
    # a salt that is the same in every run: a person's anchor is then stable across
    # releases (the re-draw after a withdrawal picks people by it)
    salt = np.int64(
        int.from_bytes(hashlib.blake2b(kind.encode(), digest_size=8).digest(), "big")
        & 0x7FFF_FFFF_FFFF_FFFF
    )
    values = octets.view(">u8").reshape(-1).astype(np.uint64).view(np.int64) ^ salt
    return pa.array(values, pa.int64(), mask=~valid)


def pseudonym_hashes(pseudonyms: pa.Array, kind: str) -> pa.Array:
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
