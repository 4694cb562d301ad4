"""The pass of a verification over the stored entries: one stream per table, in key order.

The entries, their data-subject and partner links and their details are each read
through a server-side cursor in leaf-index order and merge-joined on the index, so
memory holds a batch of rows of each and 40 bytes per entry (its leaf hash, for the
tree, and the index its event claims), never the events. Each stored event is parsed
once; its leaf hash is recomputed with ``hashlib``; it must re-encode to exactly its
stored text (canonical JSON) and name its index, search columns, links and details.

The time column is read as text in the event's own form (RFC 3339 UTC, microseconds),
formatted by the database, and compared with the event's string; only a time that
differs there is read again as a datetime and compared the exact way, so what is
reported does not depend on the fast path. Rows of the link and detail tables whose
entry does not exist are found by the same merge.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Callable, Generator, Iterator, Sequence
from datetime import datetime
from hashlib import sha256
from typing import Any

from sqlalchemy import Connection, Result, String, func, literal, select, type_coerce
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col

from gateway.audit.events import details_commitment, format_time, subjects_digest
from gateway.audit.log import DETAILS_RETENTION
from gateway.audit.verify_tree import Finding
from gateway.models.audit import AuditDetail, AuditEntry, AuditParty, AuditSubject

_PAST_THE_END = 1 << 63  # greater than any leaf index


def entry_finding(position: int, message: str) -> Finding:
    """Return a finding about the one entry at ``position``."""
    return Finding(f"entry {position} {message}", position, position + 1)


class Scan:
    """What the pass over the entries found: leaf hashes, claimed indexes, first problems."""

    def __init__(self) -> None:
        self.leaves = bytearray()
        self.doc_indexes = array("q")
        self.row_finding: Finding | None = None
        self.misplaced: tuple[int, int] | None = None  # (position, the index its event claims)
        self.orphans: list[Finding] = []  # the first link or detail row of a missing entry
        self.details = 0

    @property
    def count(self) -> int:
        """How many entries were read."""
        return len(self.doc_indexes)

    def note(self, finding: Finding) -> None:
        """Keep ``finding`` unless an earlier entry was already found wrong."""
        if self.row_finding is None:
            self.row_finding = finding


class _Joined:
    """The rows of a per-entry table in leaf-index order, taken entry by entry."""

    __slots__ = ("_result", "_rows", "_what", "at", "orphan", "row")

    def __init__(self, result: Result[Any], what: str) -> None:
        self._result = result
        self._rows: Iterator[Any] = iter(result)
        self._what = what
        self.orphan: Finding | None = None
        self.at, self.row = _PAST_THE_END, None
        self._advance()

    def _advance(self) -> None:
        row = next(self._rows, None)
        self.at, self.row = (_PAST_THE_END, None) if row is None else (row[0], row)

    def take(self, index: int) -> list[Any]:
        """Return the rows of entry ``index``; rows of lower indexes have no entry."""
        found: list[Any] = []
        while self.at <= index:
            if self.at < index:
                self._orphan(self.at)
            else:
                found.append(self.row)
            self._advance()
        return found

    def finish(self) -> Finding | None:
        """Close the stream; return its first row whose entry does not exist."""
        if self.at != _PAST_THE_END:
            self._orphan(self.at)
        self.close()
        return self.orphan

    def close(self) -> None:
        """Close the stream (a server-side cursor) without reading the rest."""
        self._result.close()

    def _orphan(self, index: int) -> None:
        if self.orphan is None:
            self.orphan = entry_finding(index, f"does not exist, but {self._what}")


def _time_text(dialect: str) -> ColumnElement[Any]:
    """The entry's time as the database formats it, in the form ``format_time`` writes."""
    at = col(AuditEntry.occurred_at)
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", at), 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
    # SQLite keeps the text SQLAlchemy wrote: "YYYY-MM-DD HH:MM:SS.ffffff", in UTC.
    return func.replace(type_coerce(at, String), literal(" "), literal("T")).concat("Z")


def _entries(dialect: str) -> Any:
    return select(
        col(AuditEntry.leaf_index),
        col(AuditEntry.leaf),
        col(AuditEntry.leaf_hash),
        col(AuditEntry.event_type),
        _time_text(dialect),
        col(AuditEntry.actor_partner_id),
        col(AuditEntry.actor_principal_id),
        col(AuditEntry.case_id),
    ).order_by(col(AuditEntry.leaf_index))


_SUBJECTS = select(col(AuditSubject.leaf_index), col(AuditSubject.subject_key)).order_by(
    col(AuditSubject.leaf_index)
)
_PARTIES = select(col(AuditParty.leaf_index), col(AuditParty.partner_id)).order_by(
    col(AuditParty.leaf_index)
)
_DETAILS = select(
    col(AuditDetail.leaf_index),
    col(AuditDetail.salt),
    col(AuditDetail.body),
    col(AuditDetail.delete_after),
).order_by(col(AuditDetail.leaf_index))


def _no_floats(value: str) -> Any:
    raise ValueError(f"a float ({value}) has no canonical form")


_DECODER = json.JSONDecoder(parse_float=_no_floats)
# The C scanner behind decode(), without its whitespace skipping (canonical text has none).
_SCAN_ONCE: Callable[[str, int], tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]
# events.canonical_json's encoding; a parsed document has no cycles and no floats to reject.
_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, check_circular=False
)


def _refuse(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} has no JSON form")


def _c_encoder() -> Callable[[Any], str]:
    """The C encoder ``_ENCODER.encode`` builds on every call, built once (or ``encode``)."""
    make = getattr(json.encoder, "c_make_encoder", None)
    try:  # CPython's arguments: markers, default, string encoder, indent, separators, flags
        chunks = make(
            None, _refuse, json.encoder.encode_basestring, None, ":", ",", True, False, True
        )  # type: ignore[misc]
    except TypeError:  # no C encoder here, or other arguments
        return _ENCODER.encode

    def encode(doc: Any) -> str:
        return "".join(chunks(doc, 0))

    probe = {"b": [1, None, True, 'é\n"'], "a": {"z": 0, "y": "x"}}
    return encode if encode(probe) == _ENCODER.encode(probe) else _ENCODER.encode


_ENCODE = _c_encoder()


def _parse(leaf: str) -> Any:
    """Return the stored event parsed as ``json.loads`` would, or None if it is not JSON."""
    try:
        return _DECODER.decode(leaf)
    except ValueError:
        return None


def scan_entries(
    conn: Connection,
    scan: Scan,
    now: datetime,
    batch: int,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Read every entry, link and detail in key order and check each entry against them.

    Problems are noted in ``scan``; ``progress`` is called with the entries done after
    each batch.
    """
    now_text = format_time(now)
    stream = conn.execution_options(stream_results=True, yield_per=batch)
    joined: list[_Joined] = []
    entries = None
    try:
        # The linked tables first: on SQLite their first read starts the transaction whose
        # snapshot the entries' own cursor then shares.
        joined.append(_Joined(stream.execute(_DETAILS), "details were inserted for it"))
        joined.append(_Joined(stream.execute(_SUBJECTS), "data-subject links to it were inserted"))
        joined.append(_Joined(stream.execute(_PARTIES), "partner links to it were inserted"))
        entries = _entry_batches(conn, stream, batch)
        for rows in entries:
            _scan_rows(conn, scan, rows, joined, now_text)
            if progress is not None:
                progress(scan.count)
        scan.orphans.extend(finding for j in joined if (finding := j.finish()))
    finally:
        if entries is not None:
            entries.close()
        for j in joined:
            j.close()


def _entry_batches(
    conn: Connection, stream: Connection, batch: int
) -> Generator[Sequence[Any], None, None]:
    """Yield the entries' rows in key order, ``batch`` at a time, and close the stream.

    On SQLite the rows come from the driver's own cursor on the same connection and
    transaction: its columns (integers, text, bytes) need no conversion, and building
    SQLAlchemy rows cost more than reading them. Elsewhere a server-side cursor.
    """
    if conn.dialect.name != "sqlite":
        result = stream.execute(_entries(conn.dialect.name))
        try:
            yield from result.partitions(batch)
        finally:
            result.close()
        return
    sql = str(
        _entries("sqlite").compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
    )
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql)
        while rows := cursor.fetchmany(batch):
            yield rows
    finally:
        cursor.close()


def _scan_rows(
    conn: Connection, scan: Scan, rows: Sequence[Any], joined: list[_Joined], now_text: str
) -> None:
    """Check one batch of entry rows; the loop every entry goes through, kept tight."""
    details, subjects, parties = joined
    scan_once, encode = _SCAN_ONCE, _ENCODE
    leaves, doc_indexes = scan.leaves, scan.doc_indexes
    position = scan.count
    for index, leaf, stored_hash, event_type, at_text, partner, principal, case in rows:
        # Every row takes its links, so that those left over belong to no entry.
        linked = subjects.take(index) if subjects.at <= index else ()
        partnered = parties.take(index) if parties.at <= index else ()
        detail = details.take(index) if details.at <= index else ()
        digest = sha256(b"\x00" + leaf.encode()).digest()  # RFC 9162 leaf hash
        leaves += digest
        try:
            doc, end = scan_once(leaf, 0)
            if end != len(leaf):
                doc = _parse(leaf)  # json.loads allows whitespace around the value
        except (StopIteration, ValueError):
            doc = _parse(leaf)
        is_dict = type(doc) is dict
        claimed = doc.get("index") if is_dict else -1
        if type(claimed) is not int:
            claimed = -1
        doc_indexes.append(claimed)
        at, position = position, position + 1
        if index != at:
            scan.note(entry_finding(at, f"was removed: the stored entry after {at - 1} is {index}"))
            continue
        if claimed not in (-1, at):
            if scan.misplaced is None:
                scan.misplaced = (at, claimed)
            continue
        if digest != stored_hash:
            scan.note(
                entry_finding(at, "was modified: its stored event does not match its leaf hash")
            )
            continue
        if not is_dict or claimed == -1 or encode(doc) != leaf:
            scan.note(entry_finding(at, "was modified: its stored event is not a canonical event"))
            continue
        # The common entry, about nobody and without details, is settled here; anything
        # else (or anything unexpected in the event) takes the exact checks below.
        try:
            actor, refs = doc["actor"], doc["refs"]
            if (
                event_type == doc["type"]
                and at_text == doc["at"]
                and at_text[0] != "0"  # strftime writes years before 1000 unpadded
                and partner == actor["partner"]
                and principal == actor["principal"]
                and case == doc["case"]
                and not (linked or partnered or detail or doc["subjects"] or doc["parties"])
                and not refs.get("subjects_sha256")
                and doc["details_sha256"] is None
            ):
                continue
        except (KeyError, TypeError, AttributeError, IndexError):
            pass
        columns = (event_type, at_text, partner, principal, case)
        problem = _entry_problem(conn, doc, columns, index) or _links_problem(
            doc, linked, partnered, now_text
        )
        if problem:
            scan.note(
                entry_finding(at, f"was modified: its {problem} do not match its logged event")
            )
            continue
        problem = _details_problem(doc, detail[0] if detail else None, now_text)
        if problem:
            scan.note(entry_finding(at, problem))
        elif detail:
            scan.details += 1


def _entry_problem(
    conn: Connection, doc: dict[str, Any], columns: tuple[Any, ...], index: int
) -> str | None:
    """Return "search columns (...)" if the entry's columns differ from its event, else None."""
    event_type, at_text, partner, principal, case = columns
    actor = doc.get("actor") or {}
    at = doc.get("at")
    same = (
        event_type == doc.get("type")
        and partner == actor.get("partner")
        and principal == actor.get("principal")
        and case == doc.get("case")
    )
    # Years before 1000 are written unpadded by strftime; leave those to the exact check.
    if same and not (type(at) is str and at == at_text and at[:1] not in ("", "0")):
        same = format_time(_occurred_at(conn, index)) == at
    return None if same else "search columns (type, time, actor, case)"


def _occurred_at(conn: Connection, index: int) -> datetime:
    return conn.execute(
        select(col(AuditEntry.occurred_at)).where(col(AuditEntry.leaf_index) == index)
    ).scalar_one()


def _links_problem(doc: dict[str, Any], linked: Any, partnered: Any, now_text: str) -> str | None:
    """Return which links (data-subject, partner) differ from the event's, or None."""
    named, parties = doc.get("subjects"), doc.get("parties")
    refs = doc.get("refs") or {}
    digest = refs.get("subjects_sha256")  # too many subjects to list: a digest of them
    if not (linked or partnered or named or parties or digest):
        return None
    subjects = {key for _, key in linked}
    same = subjects_digest(sorted(subjects)) == digest if digest else subjects == set(named or ())
    if not same and not (not subjects and _subjects_until(doc) <= now_text):
        return "data-subject links"
    if {partner for _, partner in partnered} != set(parties or ()):
        return "partner links"
    return None


def _subjects_until(doc: dict[str, Any]) -> str:
    """When the entry's subject index rows may be purged: its ``subjects_until``, or, for
    a leaf logged before retention per category, the default four years from its time."""
    until = doc.get("subjects_until")
    if isinstance(until, str):
        return until
    try:
        at = datetime.fromisoformat(str(doc.get("at")))
    except ValueError:
        return "9999"  # no time, no end: missing links are reported
    return format_time(at + DETAILS_RETENTION)


def _details_problem(doc: dict[str, Any], detail: Any, now_text: str) -> str | None:
    commitment, until = doc.get("details_sha256"), doc.get("details_until")
    if detail is None:
        if commitment is not None and (until is None or until > now_text):
            return "lost its details before their retention ended"
        return None
    _, salt, body, delete_after = detail
    if commitment is None:
        return "was modified: it has details it never committed to"
    if details_commitment(salt, body.encode()) != commitment:
        return "was modified: its details do not match the commitment in its event"
    if until is not None and format_time(delete_after) != until:
        return "was modified: the retention date of its details was changed"
    return None
