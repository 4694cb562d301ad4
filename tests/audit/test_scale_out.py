"""Two ``gateway serve`` replicas on one PostgreSQL database, integrating in the background.

Both take concurrent writes (AuthZEN evaluations: a decision record and its audit entry
each). At every sample at most one process holds the integrator's advisory lock; when
the integrating process is killed with SIGKILL, the other takes over within seconds;
afterwards every acknowledged decision has its audit entry, nothing stays pending, and
the tree has no gap or fork.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlmodel import col, select

from gateway.audit import checkpoints, log, sequencer
from gateway.audit.merkle import leaf_hash, root_from_leaf_hashes
from gateway.audit.verify import verify_log
from gateway.clock import FixedClock
from gateway.config import Settings
from gateway.db import Database
from gateway.demo_partners import create_demo_partners
from gateway.keys import KeyRing
from gateway.keys.signing import Ed25519Signer
from gateway.models.audit import AuditCheckpoint, AuditEntry, AuditPending
from gateway.models.policy import PolicyDecisionRecord
from gateway.policy.vocabulary import partner_kinds
from tests.audit.conftest import ORIGIN
from tests.authzen.test_authzen import GEMEENTE, ask
from tests.conftest import POLICIES, START

GATEWAY = str(Path(sys.executable).parent / "gateway")
pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def leader_pids(engine: Engine) -> list[int]:
    """The OS pids of the processes holding the integrator's advisory lock (by app name)."""
    hi, lo = sequencer.LEADER_LOCK >> 32, sequencer.LEADER_LOCK & 0xFFFFFFFF
    with engine.connect() as conn:
        names = conn.execute(
            text(
                "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a "
                "ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
                "AND l.classid = :hi AND l.objid = :lo AND l.objsubid = 1 "
                "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            ),
            {"hi": hi, "lo": lo},
        ).scalars()
        return [int(n.rsplit("-", 1)[1]) for n in names]


class Replica:
    def __init__(self, environment: dict[str, str]) -> None:
        self.port = _free_port()
        self.process = subprocess.Popen(
            [GATEWAY, "serve", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, "the gateway stopped"
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the gateway did not start"
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@pytest.fixture
def replicas(settings: Settings, database: Database, clock: FixedClock) -> Iterator[list[Replica]]:
    issued = create_demo_partners(
        database,
        clock,
        partner_kinds(POLICIES),
        timedelta(days=settings.token_ttl_days),
        keyer=KeyRing.open(settings, clock=clock).person_key,
    )
    environment = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    environment.update(
        GATEWAY_DATABASE_URL=database.url,
        GATEWAY_DATA_DIR=str(settings.data_dir),
        GATEWAY_KEYS_DIR=str(settings.keys_dir),
        GATEWAY_POLICIES_DIR=str(POLICIES),
        GATEWAY_AUDIT_INTEGRATION="background",
        GATEWAY_LOG_ORIGIN=ORIGIN,
    )
    servers = [Replica(environment), Replica(environment)]
    try:
        for server in servers:
            server.wait_ready()
        servers[0].token = dict(issued)[GEMEENTE]  # type: ignore[attr-defined]
        yield servers
    finally:
        for server in servers:
            server.stop()


def drive(url: str, token: str, stop: threading.Event, acknowledged: list[str]) -> None:
    """Ask for decisions until ``stop``; keep the request id of each one answered."""
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as client:
        while not stop.is_set():
            try:
                response = client.post(
                    "/access/v1/evaluation",
                    json=ask("gemeente-smallingerland", "case:record:read"),
                    timeout=10,
                )
            except httpx.TransportError:
                return  # this replica was killed
            if response.status_code == 200:
                acknowledged.append(response.headers.get("x-request-id", ""))


@pytest.fixture
def engine(database: Database) -> Iterator[Engine]:
    """A separate engine for watching the servers' locks."""
    watcher = create_engine(database.engine.url)
    yield watcher
    watcher.dispose()


def test_two_replicas_one_integrator_takeover_on_sigkill_nothing_lost(
    replicas: list[Replica], database: Database, engine: Engine, signer: Ed25519Signer
) -> None:
    token: str = replicas[0].token  # type: ignore[attr-defined]
    stop = threading.Event()
    acknowledged: list[list[str]] = [[], [], [], []]
    writers = [
        threading.Thread(target=drive, args=(replicas[n % 2].url, token, stop, acknowledged[n]))
        for n in range(4)
    ]
    try:
        for writer in writers:
            writer.start()
        seen: set[int] = set()
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            holders = leader_pids(engine)
            assert len(holders) <= 1, f"two integrators at once: {holders}"
            seen.update(holders)
            time.sleep(0.05)
        assert len(seen) == 1, f"expected one integrator, saw {seen}"
        leader = seen.pop()
        killed = next(r for r in replicas if r.process.pid == leader)
        survivor = next(r for r in replicas if r is not killed)
        os.kill(killed.process.pid, signal.SIGKILL)
        killed.process.wait(10)
        took_over = time.monotonic()
        while leader_pids(engine) != [survivor.process.pid]:
            assert time.monotonic() - took_over < 5, "no replica took over integration"
            time.sleep(0.05)
        time.sleep(1)  # the survivor keeps taking writes as the only integrator
    finally:
        stop.set()
        for writer in writers:
            writer.join(30)

    answered = sum(len(a) for a in acknowledged)
    assert answered > 20
    deadline = time.monotonic() + 10
    while True:  # the survivor drains what is pending (also what the killed one committed)
        with database.read() as session:
            pending = session.exec(select(AuditPending.entry_id)).all()
        if not pending:
            break
        assert time.monotonic() < deadline, f"{len(pending)} entries stayed pending"
        time.sleep(0.1)
    with database.read() as session:
        decisions = session.exec(select(PolicyDecisionRecord)).all()
        rows = session.exec(select(AuditEntry).order_by(col(AuditEntry.leaf_index))).all()
        head = log.read_head(session)
    assert len(decisions) >= answered  # every acknowledged decision was committed
    audited = {r.entry_id for r in rows if r.event_type == "policy:decision:record"}
    assert {d.audit_entry_id for d in decisions} <= audited  # each with its entry
    assert [r.leaf_index for r in rows] == list(range(len(rows)))  # no gap
    leaves = [leaf_hash(r.leaf.encode()) for r in rows]
    assert head.size == len(rows)
    assert head.root == root_from_leaf_hashes(leaves)  # no fork
    with database.read() as session:
        assert session.exec(select(AuditCheckpoint)).first() is not None  # the integrator signed
    report = verify_log(database, checkpoints.log_verifiers(ORIGIN, signer), ORIGIN, START)
    assert report.ok, report.problem
