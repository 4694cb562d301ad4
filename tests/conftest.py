"""Shared fixtures: every database test runs on SQLite and on the real PostgreSQL server.

PostgreSQL is reached at ``GATEWAY_TEST_PG_URL`` (default: the local server, database
``test``); each test process creates its own database there and drops it at the end.
If the server cannot be reached the run fails with the reason; it is never mocked and
never skipped.
"""

from __future__ import annotations

import functools
import gc
import json
import os
import pickle
import shutil
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.dependencies import models as fastapi_models
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from starlette.routing import BaseRoute

from gateway import db as dbmod
from gateway.app import create_app
from gateway.clock import FixedClock
from gateway.config import Settings
from gateway.db import Database
from gateway.demo_partners import create_demo_partners
from gateway.identity.people import person_key
from gateway.identity.service import CLI_ACTOR
from gateway.keys import KeyRing
from gateway.policy import engine as policy_engine
from gateway.policy.vocabulary import partner_kinds
from tests.helpers import postgres
from tests.helpers.compiled import compiler_once

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ROOT / "policies"
PG_URL = os.environ.get("GATEWAY_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
BACKENDS = ["sqlite", "postgresql"]


# Objects allocated between two collections of the youngest generation, and collections of
# one generation between two of the next (Python's default: 700, 10, 10).
GC_THRESHOLD = (20_000, 20, 20)


@pytest.fixture(scope="session", autouse=True)
def _collect_garbage_less_often() -> Iterator[None]:
    """Tune the cyclic garbage collector for a run that builds a thousand apps per process.

    With the defaults a third of a worker's CPU time went to collections walking every
    live object again and again (measured with ``gc.callbacks`` on tests/api and
    tests/authzen: 29 s of 85 s; 12 s of 72 s with these settings). What exists once the
    session starts (modules, routers, schemas) lives for the run and is frozen out of
    the walks. Nothing is kept that would not be: garbage is still collected, later.
    """
    gc.collect()
    gc.freeze()
    default = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLD)
    yield
    gc.set_threshold(*default)
    gc.unfreeze()


@pytest.fixture(scope="session", autouse=True)
def _compile_each_pack_once() -> Iterator[None]:
    """Apps built from a pack compiled earlier in this process reuse that compilation."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(policy_engine, "compile_policy", compiler_once())
        yield


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """Create a fresh PostgreSQL database for this test process and return its URL."""
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    name = f"gw_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        pytest.fail(
            f"PostgreSQL at {make_url(PG_URL).render_as_string(hide_password=True)} is not "
            f"usable ({type(exc).__name__}: {exc}); start it with "
            "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`",
            pytrace=False,
        )
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as conn:
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid()"
            ),
            {"name": name},
        )
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a migrated SQLite file that tests copy instead of migrating again."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    database = Database(f"sqlite:///{path}")
    dbmod.upgrade(database)
    database.dispose()
    return path


@pytest.fixture(scope="session")
def key_ring_template(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Path:
    """Return a key ring folder (development master key) that tests copy instead of creating."""
    root = tmp_path_factory.mktemp("keyring")
    shutil.copyfile(sqlite_template, root / "scratch.db")
    scratch = Database(f"sqlite:///{root / 'scratch.db'}")
    keys = root / "keys"
    settings = Settings(mode="development", data_dir=root, keys_dir=keys, policies_dir=POLICIES)
    with scratch.write() as session:
        KeyRing.create(settings, session, clock=FixedClock(START), actor=CLI_ACTOR)
    scratch.dispose()
    return keys


@pytest.fixture(scope="session")
def pg_migrated(pg_server_url: str) -> str:
    """Migrate the per-process PostgreSQL database once and return its URL."""
    database = Database(pg_server_url)
    dbmod.upgrade(database)
    database.dispose()
    return pg_server_url


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The database backend of this test run: ``sqlite`` or ``postgresql``."""
    return str(request.param)


def _empty_database(backend: str, folder: Path, request: pytest.FixtureRequest) -> Database:
    """Return a migrated, empty database on ``backend`` (a SQLite file in ``folder``)."""
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = folder / "gateway.db"
        shutil.copyfile(template, path)
        return Database(f"sqlite:///{path}")
    # Made before this reset: making it empties the database once more.
    snapshot: PgDemo = request.getfixturevalue("pg_demo")
    database = Database(snapshot.snapshot.url)
    postgres.reset(database, fresh_files=postgres.reads_raw_files(request.module))
    return database


@pytest.fixture
def database(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Database]:
    """A migrated, empty database on the test's backend."""
    database = _empty_database(backend, tmp_path, request)
    yield database
    database.dispose()


@pytest.fixture
def clock() -> FixedClock:
    """A clock fixed at 2026-11-23 09:00 UTC."""
    return FixedClock(START)


@pytest.fixture
def settings(tmp_path: Path, database: Database, key_ring_template: Path) -> Settings:
    """Development settings pointing at the test's database and a private key ring."""
    return _settings(tmp_path, database, key_ring_template)


def _settings(tmp_path: Path, database: Database, key_ring_template: Path) -> Settings:
    keys = tmp_path / "keys"
    shutil.copytree(key_ring_template, keys)  # keeps the 0700/0600 modes
    return Settings(
        mode="development",
        data_dir=tmp_path,
        database_url=database.url,
        keys_dir=keys,
        policies_dir=POLICIES,
        max_body_bytes=64 * 1024,
    )


@dataclass(frozen=True)
class DemoTemplate:
    """A migrated SQLite file holding the demo partners, created once per test process."""

    path: Path
    tokens: dict[str, str]
    ttl_days: int
    probe: str  # a demo person's key under the template's key ring


def _probe(keyer: Callable[[str], str]) -> str:
    return person_key("probe@demo.invalid", keyer)


@pytest.fixture(scope="session")
def demo_template(
    tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path, key_ring_template: Path
) -> DemoTemplate:
    """Return the demo partners on SQLite, at START, that ``gateway`` copies when it can."""
    root = tmp_path_factory.mktemp("demo")
    path = root / "demo.db"
    shutil.copyfile(sqlite_template, path)
    database = Database(f"sqlite:///{path}")
    tokens, ttl_days, probe = _create_demo_partners(root, database, key_ring_template)
    database.dispose()  # checkpoints the WAL into the file
    return DemoTemplate(path, tokens, ttl_days, probe)


def _create_demo_partners(
    root: Path, database: Database, key_ring_template: Path
) -> tuple[dict[str, str], int, str]:
    """Create the demo partners at START with a copy of the key ring under ``root``.

    Returns their tokens, the token lifetime in days and the key ring's probe.
    """
    keys = root / "keys"
    shutil.copytree(key_ring_template, keys)
    settings = Settings(mode="development", data_dir=root, keys_dir=keys, policies_dir=POLICIES)
    clock = FixedClock(START)
    keyer = KeyRing.open(settings, clock=clock).person_key
    issued = create_demo_partners(
        database,
        clock,
        partner_kinds(POLICIES),
        timedelta(days=settings.token_ttl_days),
        keyer=keyer,
    )
    return dict(issued), settings.token_ttl_days, _probe(keyer)


@dataclass(frozen=True)
class PgDemo:
    """The demo partners on this process's PostgreSQL database, at START, as a snapshot."""

    snapshot: postgres.Snapshot
    tokens: dict[str, str]
    ttl_days: int
    probe: str


@pytest.fixture(scope="session")
def pg_demo(
    tmp_path_factory: pytest.TempPathFactory, pg_migrated: str, key_ring_template: Path
) -> PgDemo:
    """Return the demo partners' rows on PostgreSQL, copied aside, that ``gateway`` restores.

    The rows are made once per process by ``create_demo_partners`` (as the SQLite
    ``demo_template``); the database is left empty.
    """
    database = Database(pg_migrated)
    postgres.reset(database, fresh_files=True)
    tokens, ttl_days, probe = _create_demo_partners(
        tmp_path_factory.mktemp("pgdemo"), database, key_ring_template
    )
    snapshot = postgres.take_snapshot(database)
    postgres.reset(database, fresh_files=True)
    database.dispose()
    return PgDemo(snapshot, tokens, ttl_days, probe)


def _empty(database: Database) -> bool:
    with database.engine.connect() as conn:
        return bool(conn.execute(text("SELECT count(*) FROM partners")).scalar_one() == 0)


@dataclass
class Gateway:
    """A running test gateway: its HTTP client, database, clock and demo tokens."""

    client: TestClient
    database: Database
    clock: FixedClock
    settings: Settings
    tokens: dict[str, str]

    def auth(self, principal: str) -> dict[str, str]:
        """Return the Authorization header of a demo principal, e.g. ``nla.partner-system``."""
        return {"Authorization": f"Bearer {self.tokens[principal]}"}


# Per process: the OpenAPI document of each set of routes the ``gateway`` fixture serves.
_OPENAPI: dict[str, bytes] = {}


def _routes(routes: Sequence[BaseRoute]) -> list[Any]:
    """Return each route's path, methods, name and endpoint, included routers walked into.

    Reads the routers as they are declared (FastAPI's own walk builds every effective
    route: half a second per app); an included router adds how it was included.
    """
    listed: list[Any] = []
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            how = route.include_context  # type: ignore[attr-defined]
            listed.append(
                (
                    how.prefix,
                    repr(how.tags),
                    repr(how.responses),
                    len(how.dependencies),
                    how.deprecated,
                    how.include_in_schema,
                    _routes(included.routes),
                )
            )
            continue
        endpoint = getattr(route, "endpoint", None)
        listed.append(
            (
                type(route).__name__,
                getattr(route, "path", ""),
                sorted(getattr(route, "methods", None) or ()),
                getattr(route, "name", ""),
                getattr(route, "include_in_schema", True),
                getattr(endpoint, "__module__", ""),
                getattr(endpoint, "__qualname__", ""),
            )
        )
    return listed


def _route_key(app: FastAPI) -> str:
    """Return what an app's OpenAPI document is made of: its routes, endpoints, title, version.

    The routers are module-level objects and the document reads nothing from the settings
    (``tests/test_fixtures.py`` compares documents of apps with other settings), so two
    apps with the same routes and endpoints in one process have the same document.
    """
    return json.dumps([_routes(app.routes), app.title, app.version], default=str)


def _reuse_openapi(app: FastAPI) -> None:
    """Give ``app`` a copy of the OpenAPI document an app with the same routes made earlier.

    The first validation error of every app builds the whole document to learn the
    declared names (``problems._known_names``): 0.3-3 s per test. A pickled copy is kept:
    unpickling makes a private, equal document about four times faster than ``copy.deepcopy``.
    """
    key = _route_key(app)
    made = _OPENAPI.get(key)
    if made is None:
        _OPENAPI[key] = pickle.dumps(app.openapi(), protocol=pickle.HIGHEST_PROTOCOL)
    else:
        app.openapi_schema = pickle.loads(made)  # noqa: S301  (our own bytes, this process)


def forget_endpoints() -> None:
    """Empty FastAPI's caches of how to call each endpoint (``fastapi.dependencies.models``).

    They hold up to 4096 endpoints each, and an app's own endpoints (the docs pages are
    closures over it) keep the whole app alive: policy engines, key rings, databases.
    A run kept ~1000 apps, 2 GB and millions of objects that every full garbage
    collection walks (a quarter of the CPU time). The entries are made again on use.
    """
    for cached in vars(fastapi_models).values():
        if isinstance(cached, functools._lru_cache_wrapper):
            cached.cache_clear()


@functools.cache
def _shipped_kinds() -> frozenset[str]:
    return frozenset(partner_kinds(POLICIES))


def demo_partners(
    request: pytest.FixtureRequest,
    settings: Settings,
    database: Database,
    clock: FixedClock,
    kinds: Collection[str] | None = None,
) -> list[tuple[str, str]]:
    """Give the test database the demo partners; return (principal id, token) of each.

    ``kinds`` are the partner kinds known (default: the shipped pack's). An empty database
    at START with the template key ring and the shipped kinds gets the rows
    ``create_demo_partners`` would write (they depend on the clock, the token lifetime,
    the kinds and the key ring, never on the settings' pack), made once per process: on
    SQLite a copy of ``demo_template``, on PostgreSQL the ``pg_demo`` snapshot copied
    back; anything else gets the partners created afresh. Call it before anything opens
    a SQLite database that is to be replaced.
    """
    keyer = KeyRing.open(settings, clock=clock).person_key
    standard = clock.now() == START and (kinds is None or frozenset(kinds) == _shipped_kinds())
    issued: list[tuple[str, str]] | None = None
    if standard and database.url.startswith("sqlite:///") and _empty(database):
        template: DemoTemplate = request.getfixturevalue("demo_template")
        if template.ttl_days == settings.token_ttl_days and template.probe == _probe(keyer):
            database.dispose()
            shutil.copyfile(template.path, database.url.removeprefix("sqlite:///"))
            issued = list(template.tokens.items())
    if issued is None and standard and database.url.startswith("postgresql"):
        pg: PgDemo = request.getfixturevalue("pg_demo")
        if (
            pg.ttl_days == settings.token_ttl_days
            and pg.probe == _probe(keyer)
            and postgres.restore_snapshot(database, pg.snapshot)
        ):
            issued = list(pg.tokens.items())
    if issued is None:
        issued = create_demo_partners(
            database,
            clock,
            partner_kinds(POLICIES) if kinds is None else kinds,
            timedelta(days=settings.token_ttl_days),
            keyer=keyer,
        )
    return issued


@pytest.fixture
def gateway(
    settings: Settings, database: Database, clock: FixedClock, request: pytest.FixtureRequest
) -> Iterator[Gateway]:
    """The app on the test database, with the demo partners (``demo_partners``) and tokens."""
    with _serving(request, settings, database, clock) as served:
        yield served


@pytest.fixture(scope="module", params=BACKENDS)
def module_gateway(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    key_ring_template: Path,
) -> Iterator[Gateway]:
    """One ``gateway`` for all tests of a module, on each backend in turn.

    For modules whose tests each ask questions of a gateway with the demo partners and
    judge only the answers (and what their own requests stored): building a gateway per
    test cost such a module 0.2-0.3 s per test. Its tests must not move the clock, need
    an empty table, or use the function-scoped ``database`` (on PostgreSQL that would
    empty this gateway's database under it).
    """
    folder = tmp_path_factory.mktemp("module-gateway")
    database = _empty_database(str(request.param), folder, request)
    settings = _settings(folder, database, key_ring_template)
    with _serving(request, settings, database, FixedClock(START)) as served:
        yield served
    database.dispose()


@contextmanager
def _serving(
    request: pytest.FixtureRequest, settings: Settings, database: Database, clock: FixedClock
) -> Iterator[Gateway]:
    issued = demo_partners(request, settings, database, clock)
    app = create_app(settings, clock=clock, db=database)
    _reuse_openapi(app)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Gateway(client, database, clock, settings, dict(issued))
    forget_endpoints()
