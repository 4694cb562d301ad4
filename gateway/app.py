"""``create_app(settings)``: the FastAPI application with its routers, errors and lifespan."""

from __future__ import annotations

import gc
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from gateway import __version__, preflight, telemetry
from gateway.api import audit as audit_api
from gateway.api import (
    cases,
    health,
    oauth,
    oidc,
    partners,
    problems,
    processing_activities,
    subjects,
)
from gateway.api import keys as keys_api
from gateway.api import policies as policies_api
from gateway.api import records as records_api
from gateway.api import register as register_api
from gateway.api import research as research_api
from gateway.api.middleware import HttpMetrics, RequestContextMiddleware
from gateway.audit import checkpoints, sequencer
from gateway.audit.witness_client import parse_witness
from gateway.audit.witnessing import Witnessing
from gateway.authzen import routes as authzen
from gateway.clock import Clock, SystemClock
from gateway.config import Settings
from gateway.context import AppContext
from gateway.db import Database, current_revision, head_revision
from gateway.keys import KeyRing
from gateway.logboek.exporter import LogboekExporter, export_settings
from gateway.models.audit import AuditCheckpoint
from gateway.policy import versions
from gateway.policy.compiler import CompiledPolicy
from gateway.policy.engine import PolicyEngine
from gateway.policy.errors import NoActiveVersionError
from gateway.policy.pack import Pack, materialised
from gateway.policy.reload import watcher_for
from gateway.policy.retention import Retention, parse_retention
from gateway.research.agreements import Agreement, AgreementVocabulary, load_agreements
from gateway.web import workbench
from gateway.yamlsource import SourceError, SourceProblem

DESCRIPTION = """
Policy-enforced, audited data sharing for RIEC-LIEC partnerships.

Every `/v1` endpoint needs a bearer token. Errors are RFC 9457 `application/problem+json`
with a stable `type` URN per error (`urn:riec-gateway:problem:<code>`).
"""
DOCS_STATIC_URL = "/docs-static"
"""Where Swagger UI's and ReDoc's scripts, styles and icon are served from (same origin)."""


def build_context(
    settings: Settings, *, clock: Clock | None = None, db: Database | None = None
) -> AppContext:
    """Return the process context: settings, database, clock, keys, policy, readiness checks.

    The policy and the research agreements are those of the stored active version when
    the database already holds one, else those of the pack in ``settings.policies_dir``
    (which the watcher imports as the first version on start); the context's watcher
    keeps them on the active version from then on. Raises KeyRingError (one line) if the
    key ring is missing or the master key is wrong, and PreflightError when the pack used
    does not compile or one of its research agreements (``agreements/*.yaml``) is not
    valid.
    """
    clock = clock or SystemClock()
    keys = KeyRing.open(settings, clock=clock)
    database = db or Database(settings.resolved_database_url)
    try:
        stored = _stored_active(database)
        if stored is not None:
            policy, agreements = PolicyEngine(stored[0].compiled), stored[1]
            retention = retention_of(stored[0].pack, stored[0].compiled)
        else:
            policy, agreements = _disk_policy(settings)
            try:
                retention = parse_retention(settings.policies_dir, policy.compiled.vocabulary)
            except SourceError as exc:
                raise preflight.PreflightError(f"retention.yaml is not valid:\n{exc}") from exc
        ctx = _assemble(settings, clock, keys, policy, agreements, database)
        ctx.retention = retention
        ctx.policy_watcher = watcher_for(
            database,
            policy,
            clock,
            interval=settings.policy_poll_seconds,
            policies_dir=settings.policies_dir,
            registry=ctx.registry,
        )
    except BaseException:
        if db is None:
            database.dispose()  # it looked for a stored version: close what that opened
        raise
    if stored is not None:
        ctx.policy_watcher.sources_sha256 = stored[0].pack.sha256

    def load_agreements_of(pack: Pack, compiled: CompiledPolicy) -> None:
        ctx.agreements = agreements_of(pack, compiled)
        ctx.retention = retention_of(pack, compiled)

    ctx.policy_watcher.on_load = load_agreements_of
    ctx.readiness["policy-version"] = ctx.policy_watcher.readiness
    return ctx


def _stored_active(
    database: Database,
) -> tuple[versions.ActivePolicy, dict[str, Agreement]] | None:
    """Return the active version and its agreements if the database holds one that loads.

    None also when the database cannot be read yet (unreachable, schema not migrated):
    preflight reports that; until then the process starts from the files on disk.
    """
    try:
        stored = versions.load_active(database)
        return stored, agreements_of(stored.pack, stored.compiled)
    except (NoActiveVersionError, SQLAlchemyError, SourceError, ValueError):
        return None


def _disk_policy(settings: Settings) -> tuple[PolicyEngine, dict[str, Agreement]]:
    """Return the engine and agreements of the pack on disk; raise PreflightError if broken."""
    try:
        policy = PolicyEngine.from_directory(settings.policies_dir)
    except SourceError as exc:
        raise preflight.PreflightError(f"the policy pack does not compile:\n{exc}") from exc
    try:
        agreements = load_agreements(
            settings.policies_dir / "agreements",
            AgreementVocabulary.from_vocabulary(policy.compiled.vocabulary),
        )
    except SourceError as exc:
        raise preflight.PreflightError(f"the research agreements are not valid:\n{exc}") from exc
    return policy, agreements


def build_command_context(
    settings: Settings, *, clock: Clock | None = None, db: Database | None = None
) -> AppContext:
    """Return the context of a one-shot command: policy and agreements of the active version.

    The files in ``settings.policies_dir`` play no part: a command decides exactly as the
    servers do, with the version privacy officers approved, for its whole run. Raises
    NoActiveVersionError when the database holds no version (``gateway init`` imports the
    first), PreflightError when the stored version does not load here, and KeyRingError
    for a missing key ring or a wrong master key.
    """
    clock = clock or SystemClock()
    keys = KeyRing.open(settings, clock=clock)
    database = db or Database(settings.resolved_database_url)
    try:
        active = versions.load_active(database)
        agreements = agreements_of(active.pack, active.compiled)
    except SourceError as exc:
        if db is None:
            database.dispose()
        raise preflight.PreflightError(
            f"the active policy version does not load here ({len(exc.problems)} problem(s): "
            f"{'; '.join(map(str, exc.problems[:1]))}); approve a version that does"
        ) from exc
    except BaseException:
        if db is None:
            database.dispose()
        raise
    policy = PolicyEngine(active.compiled)
    ctx = _assemble(settings, clock, keys, policy, agreements, database)
    ctx.retention = retention_of(active.pack, active.compiled)
    return ctx


def retention_of(pack: Pack, compiled: CompiledPolicy) -> Retention:
    """Return the audit retention per data category of ``pack`` (``retention.yaml``).

    Raises SourceError when the file is not valid (a checked pack never has that).
    """
    with materialised(pack) as folder:
        return parse_retention(folder, compiled.vocabulary)


def agreements_of(pack: Pack, compiled: CompiledPolicy) -> dict[str, Agreement]:
    """Return the research agreements of ``pack``, checked against its vocabulary, by id.

    Raises SourceError (paths relative to the pack) when one of them is not valid.
    """
    vocabulary = AgreementVocabulary.from_vocabulary(compiled.vocabulary)
    with materialised(pack) as folder:
        try:
            return load_agreements(folder / "agreements", vocabulary)
        except SourceError as exc:
            problems = [
                SourceProblem(p.path.relative_to(folder), p.line, p.message)
                if p.path.is_relative_to(folder)
                else p
                for p in exc.problems
            ]
            raise SourceError(problems) from None


def _assemble(
    settings: Settings,
    clock: Clock,
    keys: KeyRing,
    policy: PolicyEngine,
    agreements: dict[str, Agreement],
    database: Database,
) -> AppContext:
    """Return the context over these parts, with its readiness checks."""
    ctx = AppContext(settings=settings, db=database, clock=clock, keys=keys, policy=policy)
    ctx.agreements = agreements

    def database_reachable() -> str | None:
        with database.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return None

    def schema_current() -> str | None:
        current, head = current_revision(database), head_revision()
        return None if current == head else f"schema at {current or 'nothing'}, needs {head}"

    ctx.readiness["database"] = database_reachable
    ctx.readiness["schema"] = schema_current
    ctx.readiness["keys"] = keys.readiness

    def policy_loaded() -> str | None:
        compiled = ctx.policy.compiled
        return None if compiled.rows else "the active policy has no rules"

    ctx.readiness["policy"] = policy_loaded
    if settings.witnesses:
        ctx.witnessing = _witnessing(ctx)
        checkpoints.attach_witnesses(database, ctx.witnessing)
        ctx.readiness["witnesses"] = ctx.witnessing.readiness
    return ctx


def _witnessing(ctx: AppContext) -> Witnessing:
    """Return the audit log's witnesses as configured (signing with the ring's current key)."""
    settings = ctx.settings

    def sign() -> AuditCheckpoint:
        return checkpoints.create_checkpoint(
            ctx.db,
            ctx.clock,
            ctx.signer,
            settings.log_origin,
            retired_public_keys=ctx.retired_public_keys,
        )

    return Witnessing(
        ctx.db,
        ctx.clock,
        settings.log_origin,
        lambda: checkpoints.log_verifiers(settings.log_origin, ctx.signer, ctx.retired_public_keys),
        [parse_witness(w) for w in settings.witnesses],
        quorum=settings.witness_quorum,
        timeout=settings.witness_timeout_seconds,
        registry=ctx.registry,
        sign=sign,
    )


CHECKPOINT_EVERY_SECONDS = 1.0
"""How often the background integrator signs a checkpoint of a grown tree, at most."""


def start_integration(ctx: AppContext) -> sequencer.Integrator | None:
    """Drain what a crash left pending; in ``background`` mode start the integrator.

    An in-memory SQLite database shares one connection, so it always integrates inline.
    """
    sequencer.catch_up(ctx.db)
    in_memory = ctx.db.is_sqlite and ctx.db.engine.url.database in (None, "", ":memory:")
    if ctx.settings.audit_integration != "background" or in_memory:
        return None
    last_signed = [0.0]

    def sign() -> None:
        now = time.monotonic()
        if now - last_signed[0] < CHECKPOINT_EVERY_SECONDS:
            return
        last_signed[0] = now
        checkpoints.current_checkpoint(
            ctx.db,
            ctx.clock,
            ctx.signer,
            ctx.settings.log_origin,
            retired_public_keys=ctx.retired_public_keys,
        )

    integrator = sequencer.Integrator(ctx.db, on_batch=sign)
    integrator.start()
    return integrator


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    db: Database | None = None,
    run_preflight: bool = True,
    freeze_heap: bool = False,
) -> FastAPI:
    """Return the gateway application; it refuses to start if preflight checks fail.

    ``freeze_heap`` (the served process, ``gateway.asgi``): once started, what start-up
    built is frozen out of the garbage collector's full collections. Not for an app
    embedded in another process (tests): frozen objects are never collected as garbage.
    """
    ctx = build_context(settings, clock=clock, db=db)
    tracing = telemetry.tracer_provider()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if run_preflight:
            preflight.run(settings, ctx.db)
        if ctx.policy_watcher is not None:
            ctx.policy_watcher.start()
        if ctx.witnessing is not None:
            ctx.witnessing.start()
        integrator = start_integration(ctx)
        exporter = None
        if settings.logboek_export:
            exporter = LogboekExporter(
                ctx.db, ctx.clock, export_settings(settings), poll=settings.logboek_poll_seconds
            )
            exporter.start()
        # What start-up built (policies, schemas, routes, metadata: most of the heap) lives
        # as long as the process; frozen, a full collection no longer walks it. Unfrozen,
        # one stops every request for 100-180 ms on this machine (rare once warm, but then
        # all requests in flight wait).
        if freeze_heap:
            gc.freeze()
        yield
        if freeze_heap:
            gc.unfreeze()
        if exporter is not None:
            exporter.stop()
        if integrator is not None:
            integrator.stop()
        if ctx.witnessing is not None:
            ctx.witnessing.stop()
            checkpoints.attach_witnesses(ctx.db, None)
        if ctx.policy_watcher is not None:
            ctx.policy_watcher.stop()
        if tracing is not None:
            tracing.shutdown()  # sends the spans still buffered
        if db is None:
            ctx.db.dispose()

    # The API docs load Swagger UI and ReDoc from the installed package, never from a
    # CDN, so /docs and /redoc work on a closed government network.
    app = FastAPIOffline(
        static_url=DOCS_STATIC_URL,
        title="RIEC-LIEC data-sharing gateway",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    problems.install(app)
    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=settings.max_body_bytes,
        metrics=HttpMetrics(ctx.registry),
    )
    if tracing is not None:  # outermost: the span covers the whole request
        app.add_middleware(telemetry.RequestTracing, tracer=tracing.get_tracer("riec-gateway"))
    # A request is matched against the routers in this order, route by route: the
    # routes every partner system calls all day (records, AuthZEN, cases) come first. No
    # two routes of different routers match one path, so the order changes no match,
    # only the docs' order.
    app.include_router(records_api.router)
    app.include_router(authzen.router)
    app.include_router(cases.router)
    app.include_router(health.router)
    app.include_router(partners.router)
    app.include_router(oidc.router)
    app.include_router(oauth.router)
    app.include_router(keys_api.router)
    app.include_router(audit_api.router)
    app.include_router(audit_api.pending_router)
    app.include_router(subjects.router)
    app.include_router(processing_activities.router)
    app.include_router(policies_api.router)
    app.include_router(register_api.router)
    workbench.install(app)
    app.include_router(research_api.router)
    return app
