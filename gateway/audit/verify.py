"""Verify the stored audit log from scratch and name the first thing that is wrong.

Nothing stored is trusted except the signatures on checkpoints. Every entry's canonical
event is re-hashed and checked against its index, its leaf hash, its search columns and
its subject, party and details rows; the tree is rebuilt level by level and compared
with every stored node; the tree head is compared with the rebuilt root and frontier;
and every stored checkpoint's signature and root are checked against the rebuilt tree.
Checkpoints the log's witnesses cosigned (passed in: fetched from the witnesses, since
whoever can write the database can delete the stored ones) are checked the same way,
and a log smaller than a witnessed checkpoint is reported as rolled back.

Each problem found covers a range of entries (exactly one for a changed row, a subtree
for a stored hash that no longer matches, the entries since the last good checkpoint
for a signed root that no longer matches). The report names the problem whose range
ends first, preferring the narrowest, so it points at the earliest entry that is
provably wrong.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from hashlib import sha256
from typing import Any

from sqlalchemy import bindparam, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from gateway.audit.events import details_commitment, format_time, subjects_digest
from gateway.audit.log import DETAILS_RETENTION, read_head
from gateway.audit.merkle import perfect_cover
from gateway.audit.note import Checkpoint, NoteError, NoteVerifier, open_note, parse_checkpoint
from gateway.audit.verify_tree import (
    Finding,
    build_levels,
    check_nodes,
    node_at,
    root_of,
)
from gateway.db import Database
from gateway.errors import IntegrityCheckFailed
from gateway.models.audit import (
    AuditCheckpoint,
    AuditDetail,
    AuditEntry,
    AuditParty,
    AuditSubject,
)

Progress = Callable[[int, int], None]
"""Called with (entries done, entries in total) while the entries are scanned."""


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The outcome of a full verification: what was checked, and the first problem if any."""

    entries: int
    root: bytes
    checkpoints: int
    details: int
    problem: Finding | None

    @property
    def ok(self) -> bool:
        """True when nothing was wrong."""
        return self.problem is None


def _entry(position: int, message: str) -> Finding:
    return Finding(f"entry {position} {message}", position, position + 1)


class _Scan:
    """State of the pass over the entries in index order."""

    def __init__(self) -> None:
        self.leaves = bytearray()
        self.doc_indexes = array("q")
        self.row_finding: Finding | None = None
        self.misplaced: tuple[int, int] | None = None  # (position, the index its event claims)
        self.details = 0

    @property
    def count(self) -> int:
        return len(self.doc_indexes)

    def note(self, finding: Finding) -> None:
        if self.row_finding is None:
            self.row_finding = finding


def verify_log(
    db: Database,
    verifiers: Sequence[NoteVerifier],
    origin: str,
    now: datetime,
    *,
    batch: int = 2000,
    progress: Progress | None = None,
    witnessed: Sequence[Checkpoint] = (),
) -> VerifyReport:
    """Recompute the whole log from its stored events and check everything stored against it.

    ``verifiers`` are the log's public keys (current and earlier); ``now`` decides which
    details may already have been deleted; ``witnessed`` are checkpoints the witnesses
    cosigned (their signatures already checked). Everything is read from one snapshot, so
    appends made meanwhile are not mistaken for tampering. Returns a report; never
    raises for tampering.
    """
    with db.read() as session:
        if not db.is_sqlite:
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        # On SQLite the session's one read transaction already sees one WAL snapshot.
        return _verify(session, verifiers, origin, now, batch, progress, witnessed)


def _verify(
    session: Session,
    verifiers: Sequence[NoteVerifier],
    origin: str,
    now: datetime,
    batch: int,
    progress: Progress | None,
    witnessed: Sequence[Checkpoint] = (),
) -> VerifyReport:
    head = read_head(session)
    total = session.exec(select(func.count()).select_from(AuditEntry)).one()
    scan = _Scan()
    # One pass in key order over a server-side cursor (PostgreSQL streams it; SQLite
    # steps its cursor), as plain rows: no ORM objects per entry.
    stream = session.connection().execution_options(stream_results=True, yield_per=batch)
    for rows in stream.execute(_ENTRIES).partitions(batch):
        lo, hi = rows[0].leaf_index, rows[-1].leaf_index
        subjects = _links(session, AuditSubject, AuditSubject.subject_key, lo, hi)
        parties = _links(session, AuditParty, AuditParty.partner_id, lo, hi)
        details = {d.leaf_index: d for d in session.execute(_DETAILS, {"lo": lo, "hi": hi}).all()}
        for row in rows:
            _check_row(
                scan,
                row,
                subjects.get(row.leaf_index, set()),
                parties.get(row.leaf_index, set()),
                details.pop(row.leaf_index, None),
                now,
            )
        for orphan in sorted(details):
            scan.note(_entry(orphan, "does not exist, but details were inserted for it"))
        if progress is not None:
            progress(scan.count, total)

    # On a tie the first listed wins: a structural explanation (moved, removed, inserted
    # entries) before the changes it causes in the rows, the head and the stored nodes.
    findings: list[Finding] = []
    if scan.misplaced is not None:
        findings.append(_classify_misplaced(scan.doc_indexes, *scan.misplaced))
    if scan.row_finding is not None:
        findings.append(scan.row_finding)
    levels = build_levels(bytes(scan.leaves))
    root = root_of(levels, scan.count)
    findings.extend(_check_head(head.size, head.root, head.frontier, levels, scan.count, root))
    findings.extend(check_nodes(session, levels, scan.count))
    findings.extend(_orphan_links(session))
    checkpoint_findings, checked = _check_checkpoints(
        session, verifiers, origin, levels, scan.count
    )
    findings.extend(checkpoint_findings)
    findings.extend(_check_witnessed(witnessed, levels, scan.count))
    problem = min(findings, key=Finding.sort_key) if findings else None
    return VerifyReport(scan.count, root, checked, scan.details, problem)


_ENTRIES = sa_select(
    col(AuditEntry.leaf_index),
    col(AuditEntry.leaf),
    col(AuditEntry.leaf_hash),
    col(AuditEntry.event_type),
    col(AuditEntry.occurred_at),
    col(AuditEntry.actor_partner_id),
    col(AuditEntry.actor_principal_id),
    col(AuditEntry.case_id),
).order_by(col(AuditEntry.leaf_index))
_DETAILS = sa_select(
    col(AuditDetail.leaf_index),
    col(AuditDetail.salt),
    col(AuditDetail.body),
    col(AuditDetail.delete_after),
).where(col(AuditDetail.leaf_index).between(bindparam("lo"), bindparam("hi")))


def _no_floats(value: str) -> Any:
    raise ValueError(f"a float ({value}) has no canonical form")


def _links(session: Session, table: Any, column: Any, lo: int, hi: int) -> dict[int, set[str]]:
    out: dict[int, set[str]] = {}
    for index, value in session.exec(
        select(table.leaf_index, column).where(col(table.leaf_index).between(lo, hi))
    ).all():
        out.setdefault(index, set()).add(value)
    return out


def _check_row(
    scan: _Scan,
    row: Any,
    subjects: set[str],
    parties: set[str],
    detail: Any,
    now: datetime,
) -> None:
    """Check one entry row (an ``AuditEntry``'s columns) and its links and details."""
    position = scan.count
    raw = row.leaf.encode()
    digest = sha256(b"\x00" + raw).digest()  # RFC 9162 leaf hash, inline
    scan.leaves += digest
    try:
        doc: Any = json.loads(row.leaf, parse_float=_no_floats)
        claimed = doc["index"] if isinstance(doc, dict) and type(doc.get("index")) is int else -1
    except ValueError:
        doc, claimed = None, -1
    scan.doc_indexes.append(claimed)
    if row.leaf_index != position:
        scan.note(
            _entry(
                position, f"was removed: the stored entry after {position - 1} is {row.leaf_index}"
            )
        )
        return
    if claimed not in (-1, position):
        if scan.misplaced is None:
            scan.misplaced = (position, claimed)
        return
    if digest != row.leaf_hash:
        scan.note(_entry(position, "was modified: its stored event does not match its leaf hash"))
        return
    if not isinstance(doc, dict) or claimed == -1 or _canonical(doc) != raw:
        scan.note(_entry(position, "was modified: its stored event is not a canonical event"))
        return
    problem = _mismatched_columns(row, doc, subjects, parties, now)
    if problem:
        scan.note(_entry(position, f"was modified: its {problem} do not match its logged event"))
        return
    problem = _details_problem(doc, detail, now)
    if problem:
        scan.note(_entry(position, problem))
    elif detail is not None:
        scan.details += 1


def _canonical(doc: dict[str, Any]) -> bytes:
    """``events.canonical_json`` for a document parsed without floats (none to reject)."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


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


def _mismatched_columns(
    row: Any, doc: dict[str, Any], subjects: set[str], parties: set[str], now: datetime
) -> str | None:
    actor = doc.get("actor") or {}
    columns = (
        row.event_type == doc.get("type"),
        format_time(row.occurred_at) == doc.get("at"),
        row.actor_partner_id == actor.get("partner"),
        row.actor_principal_id == actor.get("principal"),
        row.case_id == doc.get("case"),
    )
    if not all(columns):
        return "search columns (type, time, actor, case)"
    digest = (doc.get("refs") or {}).get("subjects_sha256")  # too many to list: a digest
    if digest:
        named = subjects_digest(sorted(subjects)) == digest
    else:
        named = subjects == set(doc.get("subjects") or ())
    purged = not subjects and _subjects_until(doc) <= format_time(now)
    if not named and not purged:
        return "data-subject links"
    if parties != set(doc.get("parties") or ()):
        return "partner links"
    return None


def _details_problem(doc: dict[str, Any], detail: Any, now: datetime) -> str | None:
    commitment, until = doc.get("details_sha256"), doc.get("details_until")
    if detail is None:
        if commitment is not None and (until is None or until > format_time(now)):
            return "lost its details before their retention ended"
        return None
    if commitment is None:
        return "was modified: it has details it never committed to"
    if details_commitment(detail.salt, detail.body.encode()) != commitment:
        return "was modified: its details do not match the commitment in its event"
    if until is not None and format_time(detail.delete_after) != until:
        return "was modified: the retention date of its details was changed"
    return None


def _classify_misplaced(doc_indexes: array[int], position: int, claimed: int) -> Finding:
    """Name what happened when the event at ``position`` says it was logged as ``claimed``."""
    if claimed > position:
        try:
            moved_to = doc_indexes.index(position, position + 1)
        except ValueError:
            return _entry(
                position,
                f"was removed: entry {claimed} and later ones were moved up to close the gap",
            )
        return _entry(
            position,
            f"was reordered: it is stored at position {moved_to} and entry {claimed} in its place",
        )
    if claimed == position - 1:
        return _entry(
            claimed,
            f"was inserted: the entries logged as {claimed} and later are stored one place later",
        )
    return _entry(position, f"was inserted: it repeats entry {claimed}")


def _orphan_links(session: Session) -> Iterable[Finding]:
    for table, what in ((AuditSubject, "data-subject"), (AuditParty, "partner")):
        orphan = session.exec(
            select(func.min(table.leaf_index)).where(
                col(table.leaf_index).not_in(select(AuditEntry.leaf_index))
            )
        ).one()
        if orphan is not None:
            yield _entry(orphan, f"does not exist, but {what} links to it were inserted")


def _check_head(
    size: int, root: bytes, frontier: str, levels: list[bytes], count: int, rebuilt: bytes
) -> Iterable[Finding]:
    if size > count:
        yield _entry(count, f"was removed: the tree head counts {size} entries, {count} are stored")
        return
    if size < count:
        yield _entry(size, f"was inserted: the tree head counts only {size} entries")
        return
    expected = [
        node_at(levels, lv, i).hex() for lv, i in (perfect_cover(0, count) if count else [])
    ]
    if root != rebuilt:
        yield Finding("the tree head's root does not match the stored entries")
    elif json.loads(frontier) != expected:
        yield Finding("the tree head's frontier does not match the stored entries")


def _check_witnessed(
    witnessed: Sequence[Checkpoint], levels: list[bytes], count: int
) -> Iterable[Finding]:
    for checkpoint in witnessed:
        label = f"the checkpoint its witnesses cosigned at size {checkpoint.size}"
        if checkpoint.size > count:
            yield Finding(
                f"the log was rolled back: it holds {count} entries, but {label} "
                "(an older backup restored, or entries removed)",
                count,
                count + 1,
            )
        elif root_of(levels, checkpoint.size) != checkpoint.root:
            yield Finding(
                f"entries 0-{checkpoint.size - 1}: one of them was changed, removed or "
                f"inserted after {label} (the stored log no longer produces its root)",
                0,
                checkpoint.size,
            )


def _check_checkpoints(
    session: Session,
    verifiers: Sequence[NoteVerifier],
    origin: str,
    levels: list[bytes],
    count: int,
) -> tuple[list[Finding], int]:
    findings: list[Finding] = []
    good_size = 0
    checked = 0
    for row in session.exec(select(AuditCheckpoint).order_by(col(AuditCheckpoint.tree_size))):
        label = f"checkpoint at size {row.tree_size}"
        try:
            checkpoint = parse_checkpoint(open_note(row.note, verifiers))
        except (IntegrityCheckFailed, NoteError):
            findings.append(Finding(f"{label}: its signature does not verify with the log's keys"))
            continue
        checked += 1
        if checkpoint.origin != origin:
            findings.append(Finding(f"{label}: it is signed for origin {checkpoint.origin}"))
        elif checkpoint.size != row.tree_size or checkpoint.root != row.root:
            findings.append(
                Finding(f"{label}: its stored size or root differs from its signed note")
            )
        elif checkpoint.size > count:
            findings.append(
                _entry(count, f"was removed: {label} was signed over {checkpoint.size} entries")
            )
        elif root_of(levels, checkpoint.size) != checkpoint.root:
            findings.append(
                Finding(
                    f"entries {good_size}-{checkpoint.size - 1}: one of them was changed, removed "
                    f"or inserted after {label} was signed (its signed root no longer matches)",
                    good_size,
                    checkpoint.size,
                )
            )
        else:
            good_size = checkpoint.size
    return findings, checked
