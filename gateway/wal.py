"""SQLite write-ahead log checkpoints, off the request path.

SQLite's automatic checkpoint runs inside the ``COMMIT`` that makes the log pass 1,000
pages: that writer copies the log into the database file and syncs both while it still
holds the write lock, so every writer queued behind it waits (10-85 ms here, once every
few dozen requests). Here commits only note the log's size; a thread of the process runs
a passive checkpoint, which writers do not wait for, once it has grown
``CHECKPOINT_PAGES``. The connections keep an automatic checkpoint at ``BACKSTOP_PAGES``
for a process whose checkpointer cannot keep up.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from pathlib import Path

CHECKPOINT_PAGES = 1000
"""The log's size, in pages, at which the checkpointer copies it into the database."""

BACKSTOP_PAGES = 10 * CHECKPOINT_PAGES
"""SQLite's own automatic checkpoint, inside a commit: only if the checkpointer falls behind."""

SIZE_LIMIT_BYTES = 1 << 20
"""``journal_size_limit``: the log file is cut back to this size (or to the frames in use)
when SQLite restarts it after a checkpoint, so its size tells how much is in it."""

MIN_INTERVAL_SECONDS = 0.2
"""At most one checkpoint this often. Under steady writes a passive checkpoint rarely
finds the log still when it ends, so SQLite cannot restart the log and its size stays
over the mark; the automatic checkpoint at ``BACKSTOP_PAGES`` then finds almost nothing
left to copy, and lets SQLite restart the log."""

_FRAME_HEADER = 24
_log = logging.getLogger(__name__)


class Checkpointer:
    """Runs passive checkpoints of one SQLite database file in a thread of its own.

    ``after_commit`` costs one ``stat`` of the log; the thread starts at the first
    checkpoint due and stops with ``close``.
    """

    def __init__(self, database: Path, *, pages: int | None = None, page_size: int = 4096):
        self._database = database
        self._wal = Path(f"{database}-wal")
        self._due_bytes = (pages or CHECKPOINT_PAGES) * (page_size + _FRAME_HEADER)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.runs = 0
        """Checkpoints run so far (for tests and metrics)."""

    def after_commit(self) -> None:
        """Wake the checkpointer if the log has grown past the threshold since it last ran."""
        try:
            size = os.stat(self._wal).st_size
        except OSError:
            return
        if size < self._due_bytes or self._stop.is_set():
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="sqlite-checkpointer", daemon=True
                )
                self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        conn = sqlite3.connect(self._database, timeout=0, check_same_thread=False)
        try:
            while True:
                self._wake.wait()
                if self._stop.is_set():
                    return
                self._wake.clear()
                self.checkpoint(conn)
                # commits during the checkpoint saw the log before SQLite could restart it
                self._wake.clear()
                if self._stop.wait(MIN_INTERVAL_SECONDS):
                    return
        finally:
            conn.close()

    def checkpoint(self, conn: sqlite3.Connection) -> None:
        """Run one passive checkpoint on ``conn``; another process's checkpoint is no error."""
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.OperationalError as exc:  # another connection is checkpointing
            _log.debug("checkpoint skipped: %s", exc)
            return
        self.runs += 1

    def close(self) -> None:
        """Stop the thread (after the checkpoint it may be running)."""
        self._stop.set()
        self._wake.set()
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()
