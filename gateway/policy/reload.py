"""The worker-side watcher: every gateway process follows the active policy version.

A background thread reads the single ``policy_active`` row every
``settings.policy_poll_seconds``. When its generation changes, the watcher loads the
stored files of the new version and swaps them into the process's ``PolicyEngine``;
decisions in flight finish on the old version. A version that does not compile here
never replaces a working one: the watcher logs it, keeps serving, and its readiness
check says so until another version is activated.

Compiling takes a good part of a second on a busy machine, so the watcher also compiles
every open proposal ahead of time (each once, into the content-addressed cache of
``gateway.policy.pack``): when one is approved, activation is a lookup and a swap, and
every process serves it within one poll interval.

On start it first makes sure the database has an active version (importing the pack on
disk, which is what the process serves until then) and loads it, so a process never
serves anything but the stored active version once it accepts requests.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlmodel import col, select

from gateway.clock import Clock
from gateway.db import Database
from gateway.errors import InvalidInputError
from gateway.models.policy_versions import (
    PolicyActive,
    PolicyProposal,
    PolicyVersion,
    ProposalStatus,
)
from gateway.policy import versions
from gateway.policy.compiler import CompiledPolicy
from gateway.policy.engine import PolicyEngine
from gateway.policy.pack import Pack, compile_pack, read_pack
from gateway.preflight import PreflightError
from gateway.yamlsource import SourceError

logger = logging.getLogger("gateway.policy.reload")

PREPARE_PER_POLL = 8
"""Open proposals compiled ahead of time per poll at most (the newest wait for the next)."""


class PolicyWatcher:
    """Keeps one process's engine on the active version; thread-safe."""

    def __init__(
        self,
        db: Database,
        engine: PolicyEngine,
        clock: Clock,
        *,
        interval: float,
        disk_pack: Pack | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.db = db
        self.engine = engine
        self.clock = clock
        self.interval = interval
        self.disk_pack = disk_pack
        self.generation: int | None = None
        self.version_id: int | None = None
        self.sources_sha256: str | None = disk_pack.sha256 if disk_pack else None
        self.problem: str | None = None
        self.on_load: Callable[[Pack, CompiledPolicy], None] | None = None
        """Called with each new version before it is swapped in (the process's research
        agreements come from it); a SourceError it raises keeps the previous version."""
        self.prepared: set[str] = set()
        self._last_proposal = 0
        self._failed_generation: int | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        registry = registry or CollectorRegistry()
        self._generation_gauge = Gauge(
            "gateway_policy_generation",
            "Activation generation of the policy version this process serves",
            registry=registry,
        )
        self._prepared_counter = Counter(
            "gateway_policy_prepared",
            "Open proposals this process compiled ahead of their approval",
            registry=registry,
        )

    def readiness(self) -> str | None:
        """Return None while serving the active version, else why not (for ``/readyz``)."""
        return self.problem

    def import_if_empty(self) -> None:
        """Store the pack on disk as the first active version if the database has none."""
        if self.disk_pack is None:
            return
        _version, imported = versions.ensure_active(
            self.db,
            self.clock,
            versions.STARTUP_ACTOR,
            self.disk_pack,
            compile_pack(self.disk_pack),
        )
        if imported:
            logger.info("imported the policy pack on disk as the first active version")

    def sync(self) -> bool:
        """Look at the active version once; load and swap it in if it changed.

        Then compile a few new open proposals ahead of time. Returns True when the
        engine now serves a different version. Never raises for a version that does
        not load or an unreachable database: it logs, keeps serving, and sets
        ``problem`` (compile failures) for the readiness check.
        """
        with self._lock:
            swapped = self._sync_active()
            self._prepare_proposals()
            return swapped

    def _sync_active(self) -> bool:
        try:
            with self.db.read() as session:
                current = session.get(PolicyActive, versions.POINTER_ID)
                if current is None or current.generation == self.generation:
                    return False
                if current.generation == self._failed_generation:
                    return False
                version = session.get(PolicyVersion, current.version_id)
                if version is None:  # impossible with the foreign key; be safe
                    return False
                generation, version_id = current.generation, current.version_id
                sources = version.sources
        except Exception as exc:  # the database may be briefly unreachable
            logger.warning("cannot read the active policy version: %s", type(exc).__name__)
            return False
        return self._load(generation, version_id, sources)

    def _load(self, generation: int, version_id: int, sources: str) -> bool:
        try:
            pack = Pack.from_json(sources)
            if pack.sha256 == self.sources_sha256:
                self._loaded(generation, version_id)
                return False
            compiled = compile_pack(pack)
            if self.on_load is not None:
                self.on_load(pack, compiled)
        except (SourceError, ValueError) as exc:
            count = len(exc.problems) if isinstance(exc, SourceError) else 1
            self._failed_generation = generation
            self.problem = (
                f"policy version {version_id} does not load here ({count} problem(s)); "
                f"still serving version {self.version_id or 'from disk'}"
            )
            logger.error(
                "active policy version does not load; keeping the previous one",
                extra={"fields": {"version": version_id, "problems": count}},
            )
            return False
        self.engine.swap(compiled)
        self.sources_sha256 = pack.sha256
        self._loaded(generation, version_id)
        logger.info(
            "policy version active",
            extra={"fields": {"version": version_id, "policy_version": compiled.version[:16]}},
        )
        return True

    def _loaded(self, generation: int, version_id: int) -> None:
        self.generation, self.version_id, self.problem = generation, version_id, None
        self._generation_gauge.set(generation)

    def _prepare_proposals(self) -> None:
        try:
            with self.db.read() as session:
                rows = session.exec(
                    select(PolicyProposal.id, PolicyProposal.sources_sha256, PolicyProposal.sources)
                    .where(PolicyProposal.status == ProposalStatus.OPEN.value)
                    .where(col(PolicyProposal.id) > self._last_proposal)
                    .order_by(col(PolicyProposal.id))
                    .limit(PREPARE_PER_POLL)
                ).all()
        except Exception as exc:
            logger.warning("cannot read open proposals: %s", type(exc).__name__)
            return
        # An id cursor may pass over a proposal that commits late; it is then compiled at
        # activation instead, which is slower but just as correct.
        for proposal_id, sha256, sources in rows:
            self._last_proposal = max(self._last_proposal, proposal_id or 0)
            if sha256 in self.prepared:
                continue
            try:
                compile_pack(Pack.from_json(sources))
            except (SourceError, ValueError):
                continue  # it will fail at approval with the reason; nothing to prepare
            self.prepared.add(sha256)
            self._prepared_counter.inc()

    def start(self) -> None:
        """Import if needed, load the active version, then poll in a daemon thread."""
        try:
            self.import_if_empty()
        except Exception as exc:  # serve the pack on disk; readiness shows the database
            logger.error("cannot store the first policy version: %s", type(exc).__name__)
        self.sync()
        disk = self.disk_pack
        if disk is not None and self.version_id is not None and self.sources_sha256 != disk.sha256:
            logger.warning(
                "the policy pack on disk differs from the active version and is not used; "
                "propose the change in the workbench (`gateway policy diff` shows it)"
            )
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="policy-watcher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sync()

    def stop(self) -> None:
        """Stop polling and wait for the thread to end."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None


def watcher_for(
    db: Database,
    engine: PolicyEngine,
    clock: Clock,
    *,
    interval: float,
    policies_dir: Path,
    registry: CollectorRegistry | None = None,
) -> PolicyWatcher:
    """Return a watcher for ``engine``, which was built from the pack in ``policies_dir``.

    Raises PreflightError when a file of the pack cannot be read as text or is too large.
    """
    try:
        disk = read_pack(policies_dir)
    except InvalidInputError as exc:
        raise PreflightError(f"the policy pack cannot be stored: {exc.detail}") from exc
    return PolicyWatcher(db, engine, clock, interval=interval, disk_pack=disk, registry=registry)
