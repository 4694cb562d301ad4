"""Stored versions: one active version by schema, imports, and every worker following
activations within a second (two app instances, and a separate server process), on
SQLite and PostgreSQL; a version that does not load never replaces a working one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from gateway.app import create_app
from gateway.clock import FixedClock
from gateway.config import Settings
from gateway.db import Database
from gateway.identity.service import CLI_ACTOR, authenticate
from gateway.models.policy_versions import PolicyActive, PolicyVersion
from gateway.policy import approvals, proposals, versions
from gateway.policy import pack as packmod
from gateway.policy.errors import ProposalStaleError
from gateway.policy.pack import Pack, read_pack
from tests.conftest import POLICIES, ROOT, Gateway
from tests.workbench.helpers import (
    FLIPPING,
    GEMEENTE_ANALYST,
    OFFICER_A,
    RULES_30,
    add_officer,
    app_ctx,
    widened_rules,
)


def propose_widening(gateway: Gateway) -> int:
    """Propose the widening change as officer A; return the proposal id."""
    created = gateway.client.post(
        "/v1/policies/proposals",
        json={"title": "Widen", "files": {RULES_30: widened_rules()}},
        headers=gateway.auth(OFFICER_A),
    )
    assert created.status_code == 201, created.text
    proposal_id: int = created.json()["id"]
    return proposal_id


def approve(gateway: Gateway, proposal_id: int) -> str:
    """Approve a proposal as a second RIEC officer; return the new policy version hash."""
    officer_b = {"Authorization": f"Bearer {add_officer(gateway.database, gateway.clock)}"}
    approved = gateway.client.post(
        f"/v1/policies/proposals/{proposal_id}/approve", json={}, headers=officer_b
    )
    assert approved.status_code == 200, approved.text
    version: str = approved.json()["policy_version"]
    return version


def approve_widening(gateway: Gateway) -> str:
    """Propose and approve the widening change; return the new policy version hash."""
    return approve(gateway, propose_widening(gateway))


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 20) -> None:
    """Wait (untimed: no claim about speed) until ``condition`` holds."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)


def test_the_schema_allows_one_active_version_and_one_pointer_row(gateway: Gateway) -> None:
    with gateway.database.read() as session:
        active = versions.active_version(session)
    pack = Pack.from_json(active.sources)
    assert active.id is not None
    active_id = active.id
    with pytest.raises(IntegrityError), gateway.database.write() as session:
        session.add(
            PolicyVersion(
                policy_version="x" * 64,
                sources_sha256="y" * 64,
                sources=pack.to_json(),
                rule_count=1,
                origin="import",
                created_at=gateway.clock.now(),
                created_by_principal_id="test",
                state="active",
            )
        )
    with pytest.raises(IntegrityError), gateway.database.write() as session:
        session.add(
            PolicyActive(id=2, version_id=active_id, generation=1, activated_at=active.created_at)
        )
    with gateway.database.read() as session:
        states = session.exec(select(PolicyVersion.state)).all()
    assert states == ["active"]


def test_concurrent_approvals_activate_exactly_one_version(gateway: Gateway) -> None:
    officer_a = gateway.auth(OFFICER_A)
    ids = []
    for text in (
        widened_rules(),
        widened_rules().replace("om-case, labour", "om-case, municipal, labour"),
    ):
        created = gateway.client.post(
            "/v1/policies/proposals",
            json={"title": "concurrent", "files": {RULES_30: text}},
            headers=officer_a,
        )
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
    token = add_officer(gateway.database, gateway.clock)
    with gateway.database.read() as session:
        approver = authenticate(session, token, gateway.clock)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def approve(proposal_id: int) -> None:
        barrier.wait()
        try:
            approvals.approve(gateway.database, gateway.clock, approver, proposal_id)
            outcomes.append("approved")
        except ProposalStaleError:
            outcomes.append("stale")

    threads = [threading.Thread(target=approve, args=(i,)) for i in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["approved", "stale"]
    with gateway.database.read() as session:
        states = sorted(session.exec(select(PolicyVersion.state)).all())
        pointer = session.get(PolicyActive, 1)
    assert states == ["active", "retired"]
    assert pointer is not None and pointer.generation == 2


def test_importing_twice_keeps_one_version(gateway: Gateway) -> None:
    pack = read_pack(POLICIES)
    compiled = packmod.compile_pack(pack)
    version, imported = versions.ensure_active(
        gateway.database, gateway.clock, CLI_ACTOR, pack, compiled
    )
    assert imported is False and version.sources_sha256 == pack.sha256
    with gateway.database.read() as session:
        assert len(versions.list_versions(session)) == 1


def test_an_activation_reaches_a_second_app_instance_within_a_second(
    gateway: Gateway, settings: Settings, database: Database, clock: FixedClock
) -> None:
    other_db = Database(database.url)  # its own engine and pool, as another process has
    other_app = create_app(settings, clock=clock, db=other_db)
    try:
        with TestClient(other_app, raise_server_exceptions=False) as other:
            engine = app_ctx(other).policy
            watcher = app_ctx(other).policy_watcher
            assert watcher is not None
            old = engine.version
            proposal_id = propose_widening(gateway)
            with gateway.database.read() as session:
                sha = proposals.get_proposal(session, proposal_id).sources_sha256
            wait_for(lambda: sha in watcher.prepared, "the proposal compiled ahead of time")
            new = approve(gateway, proposal_id)
            started = time.monotonic()
            while engine.version == old:
                assert time.monotonic() - started < 1.0, "not active within a second"
                time.sleep(0.01)
            assert engine.version == new
            answer = other.post(
                "/access/v1/evaluation", json=FLIPPING, headers=gateway.auth(GEMEENTE_ANALYST)
            )
            assert answer.json()["decision"] is True
            assert other.get("/readyz").json()["checks"]["policy-version"] == "ok"
    finally:
        other_db.dispose()


def test_a_worker_compiles_a_version_it_did_not_prepare(
    gateway: Gateway, settings: Settings, database: Database, clock: FixedClock
) -> None:
    other_db = Database(database.url)
    try:
        with TestClient(create_app(settings, clock=clock, db=other_db)) as other:
            ctx = app_ctx(other)
            assert ctx.policy_watcher is not None
            ctx.policy_watcher.stop()  # nothing prepared, nothing polled
            new = approve_widening(gateway)
            packmod._cache.clear()  # as in a process that never saw the proposal
            ctx.policy_watcher.prepared.clear()
            assert ctx.policy.version != new
            assert ctx.policy_watcher.sync() is True
            assert ctx.policy.version == new
            metrics = other.get("/metrics").text
            assert "gateway_policy_generation 2.0" in metrics
    finally:
        other_db.dispose()


def test_a_new_process_serves_the_stored_active_version_not_the_disk(
    gateway: Gateway, settings: Settings, database: Database, clock: FixedClock
) -> None:
    new = approve_widening(gateway)
    other_db = Database(database.url)
    try:
        with TestClient(create_app(settings, clock=clock, db=other_db)) as other:
            assert app_ctx(other).policy.version == new
    finally:
        other_db.dispose()


def test_a_version_that_does_not_load_never_replaces_the_working_one(gateway: Gateway) -> None:
    ctx = app_ctx(gateway.client)
    assert ctx.policy_watcher is not None
    working = ctx.policy.version
    with gateway.database.read() as session:
        original = versions.active_version(session)
    files = dict(Pack.from_json(original.sources).files)
    files[RULES_30] = widened_rules().replace("labour-inspection]", "no-such-category]")
    broken = Pack.of(files)
    with gateway.database.write() as session:
        row = PolicyVersion(
            policy_version="0" * 64,
            sources_sha256=broken.sha256,
            sources=broken.to_json(),
            rule_count=0,
            origin="proposal",
            created_at=gateway.clock.now(),
            created_by_principal_id="test",
            state="retired",
        )
        session.add(row)
        session.flush()
        versions.activate(session, gateway.clock, CLI_ACTOR, row)  # as a future gateway might
    assert ctx.policy_watcher.sync() is False
    assert ctx.policy.version == working
    ready = gateway.client.get("/readyz")
    assert ready.status_code == 503
    assert "does not load here" in ready.json()["checks"]["policy-version"]
    answer = gateway.client.post(
        "/access/v1/evaluation", json=FLIPPING, headers=gateway.auth(GEMEENTE_ANALYST)
    )
    assert answer.status_code == 200 and answer.json()["context"]["policy_version"] == working
    with gateway.database.write() as session:
        versions.activate(
            session, gateway.clock, CLI_ACTOR, versions.get_version(session, original.id or 0)
        )
    ctx.policy_watcher.sync()
    assert gateway.client.get("/readyz").status_code == 200


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def server_process(settings: Settings, gateway: Gateway, tmp_path: Path) -> Iterator[str]:
    """Run ``gateway.asgi:app`` in a separate uvicorn process on the test database."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(
        GATEWAY_MODE="development",
        GATEWAY_DATABASE_URL=settings.resolved_database_url,
        GATEWAY_KEYS_DIR=str(settings.keys_dir),
        GATEWAY_POLICIES_DIR=str(settings.policies_dir),
        GATEWAY_DATA_DIR=str(tmp_path),
        GATEWAY_LOG_LEVEL="WARNING",
    )
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "gateway.asgi:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, (tmp_path / "server.log").read_text()
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)

        log.close()


def test_an_activation_reaches_another_process_within_a_second(
    gateway: Gateway, server_process: str
) -> None:
    headers = gateway.auth(GEMEENTE_ANALYST)
    url = f"{server_process}/access/v1/evaluation"
    before = httpx.post(url, json=FLIPPING, headers=headers, timeout=5).json()
    assert before["decision"] is False
    proposal_id = propose_widening(gateway)

    def prepared() -> bool:
        metrics = httpx.get(f"{server_process}/metrics", timeout=5).text
        return "gateway_policy_prepared_total 1.0" in metrics

    wait_for(prepared, "the other process to compile the proposal ahead of time")
    new = approve(gateway, proposal_id)
    started = time.monotonic()
    while True:
        answer = httpx.post(url, json=FLIPPING, headers=headers, timeout=5).json()
        if answer["decision"]:
            break
        assert time.monotonic() - started < 1.0, "the other process still decides the old way"
        time.sleep(0.02)
    assert answer["context"]["policy_version"] == new
