"""The log's side of C2SP tlog-witness: asking witnesses to cosign, and listening to them.

Whenever a new checkpoint is stored, a background thread (at most one round per
second, never on the request path) sends it to every configured witness with a
consistency proof from the size that witness last cosigned, stores the verified
cosignatures and marks the checkpoint witnessed once the quorum cosigned it.

The newest checkpoints the witnesses cosigned are this process's *anchors*: fetched
from the witnesses (not from the database, which whoever attacks the log can rewrite),
they must be consistent with the stored tree before the log signs anything new
(``checkpoints.check_witnessed``), and ``gateway audit verify`` checks the stored log
against them. A store that contradicts them is reported by readiness and by the
``gateway_audit_witness_consistent`` metric.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlmodel import Session, col, func, select

from gateway.audit import checkpoints, log
from gateway.audit.cosignature import Cosignature, CosignerKey, cosignatures
from gateway.audit.errors import AuditLogCorruptError
from gateway.audit.note import Checkpoint, NoteVerifier, verify_checkpoint
from gateway.audit.witness_client import (
    WitnessClient,
    WitnessConflict,
    WitnessEndpoint,
    WitnessRejected,
    WitnessUnavailable,
)
from gateway.clock import Clock, as_utc
from gateway.db import Database
from gateway.errors import IntegrityCheckFailed, InvalidInputError
from gateway.models.audit import AuditCheckpoint, AuditCosignature

logger = logging.getLogger(__name__)

REFRESH_INTERVAL = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class WitnessedView:
    """A checkpoint a witness cosigned, as this process last learnt it."""

    witness: CosignerKey
    checkpoint: Checkpoint
    note: str


def split_views(views: Sequence[WitnessedView]) -> list[tuple[WitnessedView, WitnessedView]]:
    """Return the pairs of cosigned checkpoints of one size with different roots.

    Both carry the log's signature, so each pair proves the log showed two histories.
    """
    out = []
    for i, a in enumerate(views):
        for b in views[i + 1 :]:
            same_size = a.checkpoint.size == b.checkpoint.size
            if same_size and a.checkpoint.root != b.checkpoint.root:
                out.append((a, b))
    return out


class Witnessing:
    """The log's witnesses: cosigning new checkpoints, anchors, readiness and metrics."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        origin: str,
        verifiers: Callable[[], list[NoteVerifier]],
        endpoints: Sequence[WitnessEndpoint],
        *,
        quorum: int | None = None,
        timeout: float = 2.0,
        registry: CollectorRegistry | None = None,
        sign: Callable[[], AuditCheckpoint] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not endpoints:
            raise InvalidInputError("configure at least one witness")
        self.quorum = len(endpoints) if quorum is None else quorum
        if not 1 <= self.quorum <= len(endpoints):
            raise InvalidInputError("the witness quorum must be between 1 and the witnesses")
        self.db = db
        self.origin = origin
        self._clock = clock
        self._verifiers = verifiers
        self._sign = sign
        self.clients = [WitnessClient(e, timeout, transport) for e in endpoints]
        self._lock = threading.RLock()
        self._views: dict[bytes, WitnessedView] = {}
        self._sizes: dict[bytes, int] = {}  # the size each witness last cosigned
        self._refreshed_at: datetime | None = None
        self.problem: str | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        registry = registry if registry is not None else CollectorRegistry()
        self.registry = registry
        self._witnessed_size = Gauge(
            "gateway_audit_witnessed_size",
            "Size of the newest checkpoint cosigned by the witness quorum",
            registry=registry,
        )
        self._lag = Gauge(
            "gateway_audit_witness_lag_entries",
            "Entries logged since the newest checkpoint the witness quorum cosigned",
            registry=registry,
        )
        self._lag_seconds = Gauge(
            "gateway_audit_witness_lag_seconds",
            "Age of the oldest checkpoint still waiting for the witness quorum (0: none)",
            registry=registry,
        )
        self._consistent = Gauge(
            "gateway_audit_witness_consistent",
            "1 while the stored log is consistent with every checkpoint its witnesses "
            "cosigned; 0 means rewritten or rolled back: alert",
            registry=registry,
        )
        self._consistent.set(1)
        self._requests = Counter(
            "gateway_audit_witness_requests",
            "add-checkpoint requests to witnesses, by witness and outcome",
            ["witness", "outcome"],
            registry=registry,
        )

    # --- anchors ------------------------------------------------------------------------

    def anchors(self) -> list[Checkpoint]:
        """Return the newest checkpoint each witness cosigned, fetching them the first time."""
        if self._refreshed_at is None:
            self.refresh()
        with self._lock:
            return [v.checkpoint for v in self._views.values()]

    def views(self) -> list[WitnessedView]:
        """Return the newest cosigned checkpoint known of each witness (refreshed first)."""
        self.refresh()
        with self._lock:
            return list(self._views.values())

    def refresh(self) -> int:
        """Ask each witness for its latest cosigned checkpoint; return how many answered.

        A checkpoint counts only if the log's key signed it and the witness cosigned it.
        """
        answered = 0
        for client in self.clients:
            try:
                note = client.latest(self.origin)
            except WitnessUnavailable:
                logger.warning("witness %s unreachable", client.endpoint.key.name)
                continue
            answered += 1
            if note is not None:
                self._learn(client.endpoint.key, note)
        self._refreshed_at = self._clock.now()
        return answered

    def _learn(self, witness: CosignerKey, note: str) -> None:
        try:
            checkpoint = verify_checkpoint(note, self._verifiers(), self.origin)
            if not cosignatures(note, [witness]):
                raise IntegrityCheckFailed()
        except IntegrityCheckFailed:
            logger.warning("witness %s returned a checkpoint that does not verify", witness.name)
            return
        with self._lock:
            known = self._views.get(witness.key_id)
            if known is None or checkpoint.size >= known.checkpoint.size:
                self._views[witness.key_id] = WitnessedView(witness, checkpoint, note)
                self._sizes[witness.key_id] = checkpoint.size

    # --- cosigning ----------------------------------------------------------------------

    def signed(self, row: AuditCheckpoint) -> None:
        """Wake the background thread to have a new checkpoint cosigned."""
        self._wake.set()

    def witness(self, row: AuditCheckpoint) -> int:
        """Send checkpoint ``row`` to every witness; store the cosignatures; return how many.

        Marks the checkpoint witnessed when the quorum cosigned it. A witness that
        refuses it is asked for what it cosigned, which then decides consistency.
        """
        got: list[Cosignature] = []
        for client in self.clients:
            cosig = self._ask(client, row)
            if cosig is not None:
                got.append(cosig)
        with self.db.write() as session:
            for cosig in got:
                if session.get(AuditCosignature, (row.tree_size, cosig.witness.key_id.hex())):
                    continue
                session.add(
                    AuditCosignature(
                        tree_size=row.tree_size,
                        key_id=cosig.witness.key_id.hex(),
                        witness_name=cosig.witness.name,
                        timestamp=cosig.timestamp,
                        line=cosig.line,
                    )
                )
            session.flush()
            count = len(self._verified(session, row))
            stored = session.get(AuditCheckpoint, row.tree_size)
            if stored is not None and count >= self.quorum and stored.witnessed_at is None:
                stored.witnessed_at = self._clock.now()
                session.add(stored)
        return len(got)

    def _ask(self, client: WitnessClient, row: AuditCheckpoint) -> Cosignature | None:
        key = client.endpoint.key
        old = self._sizes.get(key.key_id)
        if old is None:
            with self.db.read() as session:
                old = _stored_size(session, key)
        for _attempt in range(2):
            if old > row.tree_size:
                self._refetch(client)  # newer (another replica) or beyond us (a rollback)
                return None
            try:
                proof: Sequence[bytes] = ()
                if 0 < old < row.tree_size:
                    with self.db.read() as session:
                        proof = log.consistency_proof(session, old, row.tree_size).hashes
                cosig = client.add_checkpoint(old, proof, row.note)
            except WitnessConflict as conflict:
                self._requests.labels(key.name, "conflict").inc()
                old = conflict.size
                continue
            except (WitnessRejected, IntegrityCheckFailed):
                self._requests.labels(key.name, "rejected").inc()
                logger.warning("witness %s refused checkpoint %d", key.name, row.tree_size)
                self._refetch(client)
                return None
            except WitnessUnavailable:
                self._requests.labels(key.name, "unavailable").inc()
                return None
            self._requests.labels(key.name, "cosigned").inc()
            self._learn(key, row.note + cosig.line)
            return cosig
        self._refetch(client)
        return None

    def _refetch(self, client: WitnessClient) -> None:
        try:
            note = client.latest(self.origin)
        except WitnessUnavailable:
            return
        if note is not None:
            self._learn(client.endpoint.key, note)

    def _verified(self, session: Session, row: AuditCheckpoint) -> list[Cosignature]:
        lines = session.exec(
            select(AuditCosignature.line).where(col(AuditCosignature.tree_size) == row.tree_size)
        ).all()
        keys = [c.endpoint.key for c in self.clients]
        try:
            found = cosignatures(row.note + "".join(lines), keys)
        except IntegrityCheckFailed:
            return []
        return sorted(found, key=lambda c: keys.index(c.witness))  # in configured order

    def witnessed_note(self, row: AuditCheckpoint, *, cosign: bool = False) -> str:
        """Return the checkpoint's note with the stored cosignatures that verify appended.

        With ``cosign``, a checkpoint short of its quorum is first sent to the witnesses
        (waiting for them: for offline proofs, which are worth little without them).
        """
        with self.db.read() as session:
            found = self._verified(session, row)
        if cosign and len(found) < self.quorum:
            self.witness(row)
            with self.db.read() as session:
                found = self._verified(session, row)
        return row.note + "".join(c.line for c in found)

    def stored_witnessed(self) -> list[Checkpoint]:
        """Return the newest stored checkpoint whose stored cosignatures verify, if any.

        An anchor too, as long as it is still there: whoever can write the database can
        delete it, so the witnesses' own view is what really counts.
        """
        keys = [c.endpoint.key for c in self.clients]
        with self.db.read() as session:
            size = session.exec(select(func.max(AuditCosignature.tree_size))).one()
            row = None if size is None else session.get(AuditCheckpoint, size)
            if row is None:
                return []
            lines = session.exec(
                select(AuditCosignature.line).where(col(AuditCosignature.tree_size) == size)
            ).all()
        try:
            checkpoint = verify_checkpoint(row.note, self._verifiers(), self.origin)
            if cosignatures(row.note + "".join(lines), keys):
                return [checkpoint]
        except IntegrityCheckFailed:
            pass
        return []

    # --- the background round -----------------------------------------------------------

    def run_once(self) -> None:
        """One round: sign a checkpoint if the log grew, have it cosigned, check consistency."""
        now = self._clock.now()
        if self._refreshed_at is None or now - self._refreshed_at > REFRESH_INTERVAL:
            self.refresh()
        if self.check() is not None:
            return
        with self.db.read() as session:
            size = log.read_head(session).size
            latest = checkpoints.latest_checkpoint(session)
        if self._sign is not None and size > 0 and (latest is None or latest.tree_size < size):
            try:
                latest = self._sign()
            except AuditLogCorruptError as exc:
                self._set_problem(str(exc))
                return
        if latest is not None and latest.witnessed_at is None and latest.tree_size > 0:
            self.witness(latest)
        self.check()

    def check(self) -> str | None:
        """Check the stored tree against the anchors; update readiness and metrics.

        Returns the problem (rewritten or rolled back), or None when consistent.
        """
        anchors = self.anchors() + self.stored_witnessed()
        try:
            with self.db.read() as session:
                head = log.read_head(session)
                checkpoints.check_witnessed(session, head.size, head.root, anchors)
                witnessed = session.exec(
                    select(func.max(AuditCheckpoint.tree_size)).where(
                        col(AuditCheckpoint.witnessed_at).is_not(None)
                    )
                ).one()
                waiting = session.exec(
                    select(func.min(AuditCheckpoint.created_at)).where(
                        col(AuditCheckpoint.witnessed_at).is_(None),
                        col(AuditCheckpoint.tree_size) > (witnessed or 0),
                    )
                ).one()
        except AuditLogCorruptError as exc:
            self._set_problem(str(exc))
            return self.problem
        self._set_problem(None)
        self._witnessed_size.set(witnessed or 0)
        self._lag.set(max(0, head.size - (witnessed or 0)))
        if waiting is None:
            self._lag_seconds.set(0)
        else:
            self._lag_seconds.set(max(0.0, (self._clock.now() - as_utc(waiting)).total_seconds()))
        return None

    def _set_problem(self, problem: str | None) -> None:
        if problem and problem != self.problem:  # once per change, not every round
            logger.error("audit log contradicts its witnesses: %s", problem)
        self.problem = problem
        self._consistent.set(0 if problem else 1)

    def readiness(self) -> str | None:
        """Readiness check: None while the log is consistent with its witnesses."""
        return self.problem

    def start(self, interval: float = 1.0) -> None:
        """Run rounds in a daemon thread, at most one per ``interval`` seconds."""
        if self._thread is not None:
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.is_set():
                try:
                    self.run_once()
                except Exception:  # keep witnessing after a transient database error
                    logger.exception("witnessing round failed")
                self._stop.wait(interval)  # at most one round (and checkpoint) per interval
                self._wake.wait(4 * interval)
                self._wake.clear()

        self._thread = threading.Thread(target=loop, name="audit-witnessing", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the background thread and close the witness connections."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        for client in self.clients:
            client.close()


def _stored_size(session: Session, key: CosignerKey) -> int:
    """The largest size a witness cosigned according to the database (0 if none)."""
    size = session.exec(
        select(func.max(AuditCosignature.tree_size)).where(
            col(AuditCosignature.key_id) == key.key_id.hex()
        )
    ).one()
    return int(size or 0)
