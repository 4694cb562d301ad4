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
from functools import partial

from sqlalchemy import func
from sqlmodel import Session, col, select

from gateway.audit.log import read_head
from gateway.audit.merkle import perfect_cover
from gateway.audit.note import Checkpoint, NoteError, NoteVerifier, open_note, parse_checkpoint
from gateway.audit.verify_rows import Scan, entry_finding, scan_entries
from gateway.audit.verify_tree import (
    Finding,
    build_levels,
    check_nodes,
    node_at,
    root_of,
)
from gateway.db import Database
from gateway.errors import IntegrityCheckFailed
from gateway.models.audit import AuditCheckpoint, AuditEntry

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
    scan = Scan()
    conn = session.connection()
    report: Callable[[int], None] | None = None
    if progress is not None:
        total = session.exec(select(func.count()).select_from(AuditEntry)).one()
        report = partial(_report, progress, total)
    scan_entries(conn, scan, now, batch, report)

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
    findings.extend(check_nodes(conn, levels, scan.count, batch))
    findings.extend(scan.orphans)
    checkpoint_findings, checked = _check_checkpoints(
        session, verifiers, origin, levels, scan.count
    )
    findings.extend(checkpoint_findings)
    findings.extend(_check_witnessed(witnessed, levels, scan.count))
    problem = min(findings, key=Finding.sort_key) if findings else None
    return VerifyReport(scan.count, root, checked, scan.details, problem)


def _report(progress: Progress, total: int, done: int) -> None:
    progress(done, total)


def _classify_misplaced(doc_indexes: array[int], position: int, claimed: int) -> Finding:
    """Name what happened when the event at ``position`` says it was logged as ``claimed``."""
    if claimed > position:
        try:
            moved_to = doc_indexes.index(position, position + 1)
        except ValueError:
            return entry_finding(
                position,
                f"was removed: entry {claimed} and later ones were moved up to close the gap",
            )
        return entry_finding(
            position,
            f"was reordered: it is stored at position {moved_to} and entry {claimed} in its place",
        )
    if claimed == position - 1:
        return entry_finding(
            claimed,
            f"was inserted: the entries logged as {claimed} and later are stored one place later",
        )
    return entry_finding(position, f"was inserted: it repeats entry {claimed}")


def _check_head(
    size: int, root: bytes, frontier: str, levels: list[bytes], count: int, rebuilt: bytes
) -> Iterable[Finding]:
    if size > count:
        yield entry_finding(
            count, f"was removed: the tree head counts {size} entries, {count} are stored"
        )
        return
    if size < count:
        yield entry_finding(size, f"was inserted: the tree head counts only {size} entries")
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
                entry_finding(
                    count, f"was removed: {label} was signed over {checkpoint.size} entries"
                )
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
