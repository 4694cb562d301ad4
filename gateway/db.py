"""Database engine, sessions and the migration entry points.

Reads use :meth:`Database.read`; every state change runs in :meth:`Database.write`,
one transaction that also holds its audit entries (pending: see
``gateway.audit.sequencer``, which integrates them after the commit). On SQLite a write
transaction starts with ``BEGIN IMMEDIATE`` so concurrent writers queue instead of
failing half-way, and the writers of one process queue on a lock of their own first
(``Database.write``) and the writers of all processes on a file lock beside the
database, so they wait their turn, woken as soon as it is theirs, instead of polling in
SQLite's busy handler, whose back-off sleeps up to 100 ms at a time.
"""

from __future__ import annotations

import fcntl
import functools
import os
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from importlib import resources
from pathlib import Path
from threading import Lock, local
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, Insert, Table, event, insert
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, SQLModel, create_engine

from gateway import wal
from gateway.errors import SchemaNotCurrentError

_BEGIN_OPTION = "gateway_sqlite_begin"
_BEGIN = {"DEFERRED": "BEGIN DEFERRED", "IMMEDIATE": "BEGIN IMMEDIATE"}
SQLITE_POOL = 40
"""Pooled SQLite connections kept, as many as the threads serving requests (AnyIO's 40)."""
SQLITE_OVERFLOW = 40
"""Extra SQLite connections: a request may hold a read and a write session at once."""
AUDIT_PENDING = "gateway_audit_pending"
"""``session.info`` key set by ``audit.log.append``: integrate after this commit."""


def table_of(model: type[SQLModel]) -> Table:
    """Return the Core table of a SQLModel table class.

    Hot paths insert and read through it on ``session.connection()``: a Core statement
    skips the ORM's per-statement work (entity loading, bulk-insert bookkeeping),
    several times the cost of running the statement on SQLite.
    """
    table: Table = getattr(model, "__table__")  # noqa: B009  (not in SQLModel's stubs)
    return table


@functools.cache
def _returning(table: Table, key: str) -> tuple[Insert, Insert]:
    """The insert of ``table`` returning ``key``: unordered, and in the rows' order."""
    column = table.c[key]
    return (
        insert(table).returning(column),
        insert(table).returning(column, sort_by_parameter_order=True),
    )


def insert_ids(conn: Connection, table: Table, key: str, rows: list[dict[str, Any]]) -> list[int]:
    """Insert ``rows`` into ``table`` in one statement; return their ``key`` ids in order.

    ``key`` is an integer primary key the database assigns. SQLAlchemy cannot order the
    RETURNING of one multi-row statement on SQLite and would insert row by row; SQLite
    inserts a VALUES list in order, each row taking a rowid above every earlier one, so
    there the ids sorted are the rows' order. Elsewhere SQLAlchemy orders them.
    """
    if not rows:
        return []
    unordered, ordered = _returning(table, key)
    if len(rows) > 1 and conn.dialect.name == "sqlite":
        return sorted(int(i) for i in conn.execute(unordered, rows).scalars())
    return [int(i) for i in conn.execute(ordered, rows).scalars()]


def _is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def make_engine(url: str) -> Engine:
    """Return an engine for ``url`` with the connection settings the gateway relies on.

    SQLite gets WAL journaling, foreign keys, a busy timeout and explicit BEGIN handling;
    PostgreSQL gets a pre-pinged pool. Raises ``sqlalchemy.exc.ArgumentError`` for a
    malformed URL.
    """
    return _engines(url)[0]


def _engines(url: str) -> tuple[Engine, Engine]:
    """Return ``make_engine``'s engine and, on the same pool, one for ``Database.lookup``.

    The look-up engine runs each statement as a transaction of its own and has no event
    listener: one listener on an engine makes SQLAlchemy dispatch every event of every
    statement run through it, which cost as much as the pool's own checkout.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() != "sqlite":
        engine = create_engine(parsed, pool_size=10, max_overflow=10)
        _ping_when_idle(engine)
        return engine, engine.execution_options(isolation_level="AUTOCOMMIT")

    database = parsed.database or ""
    in_memory = database in {"", ":memory:"} or "mode=memory" in str(parsed)
    if database and not in_memory:
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 30}}
    if in_memory:
        kwargs["poolclass"] = StaticPool
    else:
        kwargs.update(pool_size=SQLITE_POOL, max_overflow=SQLITE_OVERFLOW)
    plain = create_engine(parsed, **kwargs)

    @event.listens_for(plain, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            # Checkpoints run in the background (gateway.wal), not inside a commit.
            cursor.execute(f"PRAGMA wal_autocheckpoint={wal.BACKSTOP_PAGES}")
            cursor.execute(f"PRAGMA journal_size_limit={wal.SIZE_LIMIT_BYTES}")
        cursor.close()

    # The same pool, with explicit BEGINs for Core use of ``Database.engine`` (migrations,
    # tests). Sessions do not go through it (see ``_GatewaySession``): a listener here
    # makes SQLAlchemy dispatch every event of every statement run through the engine.
    engine = plain.execution_options()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        _begin_sqlite(conn, conn.get_execution_options().get(_BEGIN_OPTION, "DEFERRED"))

    return engine, plain


PING_AFTER_IDLE_SECONDS = 5.0
"""A pooled server connection idle this long is pinged before it is handed out again."""


def _ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection at checkout only if it sat idle ``PING_AFTER_IDLE_SECONDS``.

    ``pool_pre_ping`` pings at every checkout: a round trip per request and session,
    which cost more CPU than the statements it guarded. A connection the server dropped
    while it sat in the pool (a restart, an idle timeout) is still caught here, and
    replaced; one that breaks while in use is caught by SQLAlchemy, which then renews
    the whole pool.
    """

    @event.listens_for(engine.pool, "connect")
    def _fresh(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.pool, "checkin")
    def _returned(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.pool, "checkout")
    def _handed_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is not None and time.monotonic() - since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError("a pooled connection no longer answers") from exc


class _WriterFileLock:
    """An exclusive ``flock`` on ``<database>-writer``, the queue of every process's writers.

    Only a queue: SQLite's own lock still guards the file (a writer that skips this one
    just polls as before). Opened per process, so a forked child never shares its lock.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._pid = 0

    @contextmanager
    def held(self) -> Iterator[None]:
        """Hold the lock for the block (blocking until it is free)."""
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Close this process's handle (reopened by the next ``held``)."""
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None


def _begin_sqlite(conn: Connection, mode: str) -> None:
    """Begin SQLite's transaction on ``conn`` as ``mode`` says (DEFERRED or IMMEDIATE).

    Straight to the driver, which begins nothing on its own (``isolation_level=None``)
    and commits or rolls back whatever transaction is open when SQLAlchemy tells it to.
    """
    conn.connection.driver_connection.execute(_BEGIN[mode])  # type: ignore[union-attr]


class _GatewaySession(Session):
    """The sessions of ``Database.read``/``write``; on SQLite they begin explicitly.

    At the session's first use of a connection, ``BEGIN DEFERRED`` for reads (one
    snapshot for all the session's statements) or ``BEGIN IMMEDIATE`` for writes (the
    write lock first, so writers queue instead of failing half-way), as the engine's
    execution options say. A session event, not an engine one: only sessions pay for it.
    """


@event.listens_for(_GatewaySession, "after_begin")
def _after_begin(_session: Session, transaction: Any, conn: Connection) -> None:
    mode = conn.get_execution_options().get(_BEGIN_OPTION)
    if mode is not None and not transaction.nested:
        _begin_sqlite(conn, mode)


class TurnLock:
    """A lock its waiters get in the order they asked for it.

    ``threading.Lock`` lets whichever thread runs first take a released lock, so under
    load one writer can wait behind dozens that came after it: the long tail of request
    latencies. Here the holder hands the lock to the longest waiter. Not reentrant.
    """

    def __init__(self) -> None:
        self._guard = Lock()
        self._queue: deque[Any] = deque()  # one acquired Lock per waiter, oldest first
        self._held = False

    def __enter__(self) -> None:
        with self._guard:
            if not self._held:
                self._held = True
                return
            turn = Lock()
            turn.acquire()
            self._queue.append(turn)
        turn.acquire()  # the holder releases it when it hands over

    def __exit__(self, *_exc: object) -> None:
        with self._guard:
            if self._queue:
                self._queue.popleft().release()  # still held: now by the next waiter
            else:
                self._held = False

    def waiting(self) -> int:
        """Return how many threads wait for the lock."""
        with self._guard:
            return len(self._queue)


class NestedWriteError(RuntimeError):
    """A thread opened a write inside its own write: on SQLite it would wait for itself."""


class Database:
    """The gateway's handle on its store: one engine, read and write sessions."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine, self._lookup_engine = _engines(url)
        self.is_sqlite = _is_sqlite(url)
        self._read_engine = self._write_engine = self.engine
        if self.is_sqlite:  # the look-up engine is the pool without listeners
            plain = self._lookup_engine
            self._read_engine = plain.execution_options(**{_BEGIN_OPTION: "DEFERRED"})
            self._write_engine = plain.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
        # SQLite has one writer at a time: this process's writers take turns here, in
        # order, instead of sleeping in the busy handler (the file lock still orders
        # writers of different processes).
        self._writer = TurnLock() if self.is_sqlite else None
        self._writing = local()
        database = make_url(url).database or ""
        on_disk = self.is_sqlite and database not in {"", ":memory:"} and "mode=memory" not in url
        self._file_lock = _WriterFileLock(Path(f"{database}-writer")) if on_disk else None
        self._checkpointer = wal.Checkpointer(Path(database)) if on_disk else None

    @property
    def root_engine(self) -> Engine:
        """The engine all of this database's engines proxy: its listeners see every statement."""
        return self._lookup_engine if self.is_sqlite else self.engine

    @contextmanager
    def read(self) -> Iterator[Session]:
        """Yield a session for reading; closing it discards anything written in it.

        Objects loaded stay usable (detached, not expired) after the block.
        """
        with _GatewaySession(self._read_engine, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def lookup(self) -> Iterator[Connection]:
        """Yield a pooled connection for look-ups, each statement a transaction of its own.

        For reads that one statement answers (a token with its principal and partner, a
        partner's kind and state): no ORM session and no BEGIN/ROLLBACK around them, the
        cheapest read there is. One statement sees one committed state; two statements
        may see two. Never write through it: every statement commits on its own.
        """
        with self._lookup_engine.connect() as conn:
            yield conn

    @contextmanager
    def write(self) -> Iterator[Session]:
        """Yield a session whose work commits as one transaction, or not at all.

        Raises NestedWriteError on SQLite for a write opened inside this thread's own
        write, which could never start (the outer one holds the only write lock).
        """
        if self._writer is None:
            with self._session() as session:
                yield session
        else:
            if getattr(self._writing, "active", False):
                raise NestedWriteError("a write transaction inside another on the same thread")
            queue = self._file_lock.held() if self._file_lock is not None else nullcontext()
            with self._writer, queue:
                self._writing.active = True
                try:
                    with self._session() as session:
                        yield session
                finally:
                    self._writing.active = False
            if self._checkpointer is not None:  # outside the lock: writers need not wait
                self._checkpointer.after_commit()
        if session.info.pop(AUDIT_PENDING, False):
            from gateway.audit.sequencer import after_commit  # here: audit imports db

            after_commit(self)

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with _GatewaySession(self._write_engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def checkpoints(self) -> int:
        """Return how many log checkpoints this process ran in the background (SQLite)."""
        return self._checkpointer.runs if self._checkpointer is not None else 0

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
        if self._checkpointer is not None:
            self._checkpointer.close()
        if self._file_lock is not None:
            self._file_lock.close()


def alembic_config(url: str) -> Config:
    """Return an Alembic config pointing at the packaged migrations and ``url``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("gateway") / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(db: Database, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` (default: the newest)."""
    cfg = alembic_config(db.url)
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def downgrade(db: Database, revision: str) -> None:
    """Revert migrations down to ``revision`` (``base`` empties the schema)."""
    cfg = alembic_config(db.url)
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def head_revision() -> str:
    """Return the newest migration revision shipped with this version of the gateway."""
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    head = script.get_current_head()
    if head is None:
        raise RuntimeError("the package ships no migrations")
    return head


def current_revision(db: Database) -> str | None:
    """Return the revision the database is at, or None for an empty database."""
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def ensure_schema_current(db: Database) -> None:
    """Raise SchemaNotCurrentError unless the database is at the newest revision."""
    current, head = current_revision(db), head_revision()
    if current != head:
        raise SchemaNotCurrentError(current=current, head=head)
