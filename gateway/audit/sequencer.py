"""Integrating pending audit entries into the Merkle tree, one integrator at a time.

Sequencing follows Tessera's split: a request only inserts its events as pending rows
in its own transaction (``log.append``); integration, here, gives committed pending
entries the next leaf indexes in id order, builds their leaves, and updates the tree in
one batch per transaction: one frontier update, one insert per table, one delete.
Batches are serialised by the tree-head row lock (``SELECT ... FOR UPDATE``; on SQLite
the write transaction's lock), so indexes have no gaps and the tree cannot fork, even
if two processes integrate at once. The integrator builds a batch before it takes that
lock (``prepare_batch``: on SQLite appends wait for the one write lock meanwhile) and
stores it only on the head it was built on (``store_batch``), else rebuilds it inside.

Who integrates: in ``inline`` mode (the default, and every CLI command) the process
that committed pending entries integrates right after its commit; anything left by a
crash is drained at start-up. In ``background`` mode (``GATEWAY_AUDIT_INTEGRATION``)
requests only wake the integrator: one ``Integrator`` thread per database leads
(PostgreSQL: a session advisory lock, released by the server when its process dies, so
another replica takes over within one poll interval), integrates and signs checkpoints.
Reads that need indexes (proofs, listings, the processing log, ``audit verify``) call
``catch_up`` first, so they never see a committed change without its entry.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, exists, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col

from gateway.audit import log
from gateway.audit.batches import Batch, build_batch, write_batch
from gateway.audit.errors import AuditLogCorruptError
from gateway.audit.events import AuditEvent
from gateway.db import Database, table_of
from gateway.models.audit import AuditEntry, AuditPending, AuditTreeHead

_log = logging.getLogger(__name__)

BATCH = 2000
"""Most pending entries integrated in one transaction."""
LEADER_LOCK = 0x6761_7564_6974  # "gaudit": the PostgreSQL advisory lock key of the integrator
LINGER_SECONDS = 0.05
"""How long the background integrator lets entries gather after a batch: under load it
integrates one batch per this interval instead of one per commit (a batch's fixed cost,
the head lock, the frontier update and a commit, is most of its cost: at 200 appends/s,
0.05 s instead of 0.02 s halves the integrator's CPU). A commit after a quiet spell is
integrated at once; under load an entry waits at most about this long, well within the
``RETRY_AFTER_MS`` a client polling for it is told, and reads that need indexes
integrate what is pending themselves (``catch_up``)."""
LEADER_CHECK_SECONDS = 1.0
"""How often the leading integrator checks that its advisory-lock session is alive."""
RETRY_AFTER_MS = 200
"""What a client asking for a pending entry's proof is told to wait."""

_PENDING_TABLE = table_of(AuditPending)
_PENDING = select(_PENDING_TABLE).order_by(_PENDING_TABLE.c.entry_id).limit(bindparam("limit"))
_ANY_PENDING = select(exists().where(col(AuditPending.entry_id).is_not(None)))
_HEAD_TABLE = table_of(AuditTreeHead)
_HEAD = select(_HEAD_TABLE.c.size, _HEAD_TABLE.c.frontier).where(_HEAD_TABLE.c.id == log.HEAD_ID)
_LOCK_HEAD = _HEAD.with_for_update()


def _locked_head(session: Session) -> Any:
    head = session.connection().execute(_LOCK_HEAD).one_or_none()
    if head is None:
        raise AuditLogCorruptError("audit tree head missing; run migrations")
    return head


def integrate_batch(session: Session, limit: int = BATCH) -> int:
    """Integrate up to ``limit`` committed pending entries in the session's transaction.

    Returns how many. Locks the tree head first, so batches never interleave. Raises
    AuditLogCorruptError if the tree head row is missing.
    """
    # Core statements on the head, not the ORM's object: loading and flushing it cost
    # more than the rest of a small batch. What the caller's transaction changed through
    # the ORM is flushed first, as the ORM query did, so the Logboek lines see it.
    session.flush()
    head = _locked_head(session)
    conn = session.connection()
    pending = conn.execute(_PENDING, {"limit": limit}).all()
    if not pending:
        return 0
    write_batch(session, build_batch(conn.dialect, head.size, head.frontier, pending))
    return len(pending)


def integrate_prepared(db: Database, limit: int = BATCH) -> int:
    """Integrate up to ``limit`` pending entries, built outside the write lock; return how many.

    ``prepare_batch`` then ``store_batch``. Raises AuditLogCorruptError if the tree
    head row is missing.
    """
    batch = prepare_batch(db, limit)
    return 0 if batch is None else store_batch(db, batch, limit)


def prepare_batch(db: Database, limit: int = BATCH) -> Batch | None:
    """Build the batch of up to ``limit`` pending entries without the write lock.

    Reads, in one read transaction, the tree head first and then the pending rows.
    Returns None if none is pending; raises AuditLogCorruptError if the head is missing.
    The order matters where each statement sees its own snapshot (PostgreSQL's read
    committed): rows read after the head were still pending when it was read, so a
    batch found by ``store_batch`` on an unchanged head holds no integrated entry.
    """
    with db.engine.connect() as conn, conn.begin():
        head = conn.execute(_HEAD).one_or_none()
        pending = conn.execute(_PENDING, {"limit": limit}).all()
    if head is None:
        raise AuditLogCorruptError("audit tree head missing; run migrations")
    if not pending:
        return None
    return build_batch(db.engine.dialect, head.size, head.frontier, pending)


def store_batch(db: Database, batch: Batch, limit: int = BATCH) -> int:
    """Store ``batch`` in a write transaction if the head is still the one it was built on.

    Every batch moves the head, and deletes its pending rows in the transaction that
    moves it, so an unchanged head means nothing integrated the batch's entries since
    it read them. Otherwise (another integrator was first) up to ``limit`` entries are
    integrated under the lock instead, as ``integrate_batch``. Returns how many.
    """
    with db.write() as session:
        head = _locked_head(session)
        if (head.size, head.frontier) != (batch.size, batch.frontier):
            return integrate_batch(session, limit)
        write_batch(session, batch)
    return len(batch.ids)


def append_sequenced(
    session: Session, event: AuditEvent, *, retention: timedelta = log.DETAILS_RETENTION
) -> int:
    """Append ``event`` and give it its leaf index in the session's transaction; return it.

    For the rare caller that must name the index before it commits (a receipt that
    carries it). This is the old serialised path: it takes the tree-head lock for the
    rest of the transaction and integrates what is pending before the event, so use
    ``log.append`` (and ``index_of`` later) everywhere else.
    """
    return sequence(session, log.append(session, event, retention=retention))


def sequence(session: Session, entry_id: int) -> int:
    """Integrate up to pending entry ``entry_id`` in the session's transaction; return its index.

    As ``append_sequenced``, for an entry already appended in this transaction.
    """
    while True:
        integrate_batch(session)
        index = index_of(session, entry_id)
        if index is not None:
            return index


def integrate_pending(db: Database, *, limit: int = BATCH) -> int:
    """Integrate every pending entry committed so far, in batches; return how many.

    Safe to call from any process at any time: batches are serialised by the head lock.
    """
    total = 0
    while True:
        done = integrate_prepared(db, limit)
        total += done
        if done < limit:
            return total


def has_pending(session: Session | Connection) -> bool:
    """Whether any committed entry still waits for its leaf index."""
    return bool(session.execute(_ANY_PENDING).scalar_one())


def catch_up(db: Database) -> None:
    """Integrate what is pending, if anything, before a read that needs leaf indexes."""
    with db.engine.connect() as conn:  # a bare connection: a session costs more than the query
        pending = has_pending(conn)
    if pending:
        integrate_pending(db)


def index_of(session: Session, entry_id: int) -> int | None:
    """Return the leaf index of entry ``entry_id``, or None while it is pending (or unknown)."""
    found = session.execute(
        select(col(AuditEntry.leaf_index)).where(col(AuditEntry.entry_id) == entry_id)
    ).scalar_one_or_none()
    return None if found is None else int(found)


def is_pending(session: Session, entry_id: int) -> bool:
    """Whether entry ``entry_id`` is committed but not yet integrated."""
    return session.get(AuditPending, entry_id) is not None


def after_commit(db: Database) -> None:
    """Integrate inline, or wake this process's integrator (``background`` mode).

    Inline, concurrent commits of one process share batches: a thread that finds another
    integrating leaves its entries to it (the other goes round once more) instead of
    queueing for the tree head behind it.
    """
    integrator = _integrators.get(id(db))
    if integrator is not None and integrator.db is db:
        integrator.wake()
    else:
        _inline_for(db).integrate(db)


class _Inline:
    """One process's inline integration of one database: one batch at a time, coalesced."""

    def __init__(self) -> None:
        self._busy = threading.Lock()
        self._due = threading.Event()

    def integrate(self, db: Database) -> None:
        """Integrate what is pending now, or leave it to the thread already integrating."""
        self._due.set()
        while self._due.is_set():
            if not self._busy.acquire(blocking=False):
                return  # the thread integrating sees ``_due`` and takes these entries too
            try:
                while self._due.is_set():
                    self._due.clear()
                    integrate_pending(db)
            finally:
                self._busy.release()


_inline: weakref.WeakKeyDictionary[Database, _Inline] = weakref.WeakKeyDictionary()
_inline_guard = threading.Lock()


def _inline_for(db: Database) -> _Inline:
    with _inline_guard:
        found = _inline.get(db)
        if found is None:
            found = _inline[db] = _Inline()
        return found


_integrators: dict[int, Integrator] = {}


class Integrator:
    """The background integrator of one process: elects itself, integrates, signs.

    On PostgreSQL at most one process leads (a session advisory lock on a dedicated
    connection); the others poll for the lock every ``poll`` seconds. On SQLite every
    process may integrate; the write lock orders their batches.
    """

    def __init__(
        self,
        db: Database,
        *,
        poll: float = 0.05,
        linger: float = LINGER_SECONDS,
        on_batch: Callable[[], None] | None = None,
    ) -> None:
        self.db = db
        self.poll = poll
        self.linger = linger
        self.on_batch = on_batch
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._leader: Connection | None = None
        self._checked = 0.0
        self.integrated = 0

    @property
    def is_leader(self) -> bool:
        """Whether this process is the database's integrator right now."""
        return self.db.is_sqlite or self._leader is not None

    def attach(self) -> None:
        """Route this database's commits to this integrator (they only wake it)."""
        _integrators[id(self.db)] = self

    def start(self) -> None:
        """Start the thread and route this database's commits to it."""
        self.attach()
        self._thread = threading.Thread(target=self._run, name="audit-integrator", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread (after its current batch) and give up leadership."""
        if _integrators.get(id(self.db)) is self:
            del _integrators[id(self.db)]
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._resign()

    def wake(self) -> None:
        """Ask for a batch now (called after a commit with pending entries)."""
        self._wake.set()

    def _elect(self) -> bool:
        if self.db.is_sqlite or self._leader is not None:
            return True
        conn = self.db.engine.connect()
        try:
            conn.execute(
                text("SELECT set_config('application_name', :name, false)"),
                {"name": f"gateway-integrator-{os.getpid()}"},
            )
            won = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LEADER_LOCK})
            if won.scalar_one():
                conn.commit()
                self._leader = conn
                self._checked = time.monotonic()
                _log.info("audit integrator: this process leads")
                return True
            conn.rollback()
        except BaseException:
            conn.close()
            raise
        conn.close()
        return False

    def _resign(self) -> None:
        if self._leader is not None:
            try:
                self._leader.invalidate()  # closing the session frees the advisory lock
            finally:
                self._leader = None

    def _step(self) -> None:
        """One round: lead if we can, then integrate what is pending.

        Woken or polling alike, a batch is built from a read first (``prepare_batch``),
        so an idle integrator takes no write lock.
        """
        if not self._elect():
            return
        now = time.monotonic()
        if self._leader is not None and now - self._checked >= LEADER_CHECK_SECONDS:
            # still holding the lock? Batches are ordered by the head row lock whoever
            # leads, so a lost lead found a second late only means two integrators meanwhile.
            self._leader.execute(text("SELECT 1")).scalar_one()
            self._leader.commit()
            self._checked = now
        done = integrate_pending(self.db)
        self.integrated += done
        if done and self.on_batch is not None:
            self.on_batch()

    def _run(self) -> None:
        while not self._stop.is_set():
            before = self.integrated
            try:
                self._step()
            except SQLAlchemyError:
                _log.exception("audit integrator: batch failed; retrying")
                self._resign()
            except Exception:
                _log.exception("audit integrator: unexpected error; retrying")
            if self.integrated > before:
                self._stop.wait(self.linger)
            self._wake.wait(self.poll)
            self._wake.clear()
