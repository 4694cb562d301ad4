"""The audit log asks real witness processes to cosign, and they catch what the database hides.

The attacker here can write the database but holds no keys: they delete the stored
checkpoints and cosignatures, rewrite an entry and recompute every hash, or restore an
older backup. Checked on SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import text
from sqlmodel import col, select

from gateway.app import create_app
from gateway.audit import checkpoints
from gateway.audit.cosignature import verify_witnessed
from gateway.audit.errors import AuditLogCorruptError
from gateway.audit.merkle import root_from_leaf_hashes
from gateway.audit.note import Checkpoint
from gateway.audit.witness_client import parse_witness
from gateway.audit.witnessing import Witnessing, split_views
from gateway.cli import run
from gateway.clock import FixedClock
from gateway.config import Settings
from gateway.db import Database
from gateway.errors import IntegrityCheckFailed
from gateway.keys.signing import Ed25519Signer
from gateway.models.audit import AuditCheckpoint, AuditCosignature, AuditEntry
from tests.audit.conftest import ORIGIN, CliEnv, fill
from tests.audit.test_tamper import rebuild_tree, rewrite_event
from tests.conftest import POLICIES
from tests.witness.conftest import WitnessProcess
from tests.witness.test_protocol import independently_verified_timestamp

StartWitnesses = Callable[[int], list[WitnessProcess]]


def make_witnessing(
    database: Database,
    clock: FixedClock,
    signer: Ed25519Signer,
    procs: list[WitnessProcess],
    quorum: int | None = None,
) -> Witnessing:
    """The log's witnessing, as the gateway builds it, attached to ``database``."""

    def sign() -> AuditCheckpoint:
        return checkpoints.create_checkpoint(database, clock, signer, ORIGIN)

    witnessing = Witnessing(
        database,
        clock,
        ORIGIN,
        lambda: checkpoints.log_verifiers(ORIGIN, signer),
        [parse_witness(p.setting) for p in procs],
        quorum=quorum,
        timeout=5,
        registry=CollectorRegistry(),
        sign=sign,
    )
    checkpoints.attach_witnesses(database, witnessing)
    return witnessing


@pytest.fixture
def witnessings() -> Iterator[list[Witnessing]]:
    """Witnessings made in a test, stopped (connections closed) afterwards."""
    made: list[Witnessing] = []
    yield made
    for w in made:
        checkpoints.attach_witnesses(w.db, None)
        w.stop()


def latest(database: Database) -> AuditCheckpoint:
    with database.read() as session:
        row = checkpoints.latest_checkpoint(session)
    assert row is not None
    return row


def witness_size(proc: WitnessProcess) -> int:
    state = json.loads((proc.folder / "state.json").read_text())
    return int(state["logs"][ORIGIN]["size"])


def metric(registry_text: str, name: str) -> float:
    for line in registry_text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no metric {name}")


def test_normal_growth_is_cosigned_by_every_witness_and_marked_witnessed(
    database: Database,
    clock: FixedClock,
    signer: Ed25519Signer,
    start_witnesses: StartWitnesses,
    witnessings: list[Witnessing],
) -> None:
    procs = start_witnesses(2)
    witnessing = make_witnessing(database, clock, signer, procs)
    witnessings.append(witnessing)
    fill(database, 5)
    witnessing.run_once()
    assert latest(database).tree_size == 5 and latest(database).witnessed_at is not None
    fill(database, 7, start=5)
    witnessing.run_once()
    row = latest(database)
    assert row.tree_size == 12 and row.witnessed_at is not None
    assert [witness_size(p) for p in procs] == [12, 12]
    with database.read() as session:
        stored = session.exec(
            select(AuditCosignature).where(col(AuditCosignature.tree_size) == 12)
        ).all()
    assert len(stored) == 2
    by_name = {p.key.name: p for p in procs}
    for cosig in stored:  # checked with code written from the C2SP text, not the gateway's
        independently_verified_timestamp(row.note, cosig.line, by_name[cosig.witness_name])
    note = witnessing.witnessed_note(row)
    keys = [parse_witness(p.setting).key for p in procs]
    witnessed = verify_witnessed(note, checkpoints.log_verifiers(ORIGIN, signer), keys, 2, ORIGIN)
    assert witnessed.checkpoint.size == 12 and len(witnessed.cosignatures) == 2
    assert witnessing.check() is None
    assert witnessing.readiness() is None
    exported = generate_latest(witnessing.registry).decode()
    assert metric(exported, "gateway_audit_witnessed_size") == 12
    assert metric(exported, "gateway_audit_witness_lag_entries") == 0
    assert metric(exported, "gateway_audit_witness_consistent") == 1
    fill(database, 3, start=12)
    witnessing.check()
    exported = generate_latest(witnessing.registry).decode()
    assert metric(exported, "gateway_audit_witness_lag_entries") == 3


def test_a_witness_that_was_down_catches_up_with_one_consistency_proof(
    database: Database,
    clock: FixedClock,
    signer: Ed25519Signer,
    start_witnesses: StartWitnesses,
    witnessings: list[Witnessing],
) -> None:
    up, down = start_witnesses(2)
    witnessing = make_witnessing(database, clock, signer, [up, down], quorum=1)
    witnessings.append(witnessing)
    fill(database, 4)
    witnessing.run_once()
    down.stop()
    for start in (4, 8):
        fill(database, 4, start=start)
        witnessing.run_once()
        assert latest(database).witnessed_at is not None  # the quorum of one still holds
    assert (witness_size(up), witness_size(down)) == (12, 4)
    down.start()
    # A restarted gateway knows the witness's size from the stored cosignatures only.
    fresh = make_witnessing(database, clock, signer, [up, down], quorum=1)
    witnessings.append(fresh)
    fill(database, 3, start=12)
    fresh.run_once()
    assert (witness_size(up), witness_size(down)) == (15, 15)
    counts = fresh_requests(fresh, down)
    assert counts == {"cosigned": 1.0}  # one request, from 4 straight to 15: no conflict


def fresh_requests(witnessing: Witnessing, proc: WitnessProcess) -> dict[str, float]:
    name = parse_witness(proc.setting).key.name
    out: dict[str, float] = {}
    for family in witnessing._requests.collect():
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.labels["witness"] == name:
                out[sample.labels["outcome"]] = sample.value
    return out


def attack_rewrite(database: Database) -> None:
    """No keys, full database access: drop the evidence, rewrite entry 5, recompute it all."""
    with database.write() as session:
        session.execute(text("DELETE FROM audit_cosignatures"))
        session.execute(text("DELETE FROM audit_checkpoints"))
        rewrite_event(session, 5, rehash=True, purpose="something else")
        rebuild_tree(session)


def restore_backup_at(database: Database, size: int) -> None:
    """Put the database back as a backup taken at ``size`` entries would have it."""
    with database.write() as session:
        for table in ("audit_details", "audit_subjects", "audit_parties", "audit_entries"):
            session.execute(text(f"DELETE FROM {table} WHERE leaf_index >= :s"), {"s": size})
        session.execute(text("DELETE FROM audit_cosignatures WHERE tree_size > :s"), {"s": size})
        session.execute(text("DELETE FROM audit_checkpoints WHERE tree_size > :s"), {"s": size})
        rebuild_tree(session)


def use_witnesses(monkeypatch: pytest.MonkeyPatch, procs: list[WitnessProcess]) -> None:
    monkeypatch.setenv("GATEWAY_WITNESSES", json.dumps([p.setting for p in procs]))


def verify_cli(capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = run(["audit", "verify"])
    captured = capsys.readouterr()
    return code, (captured.err if code else captured.out)


@pytest.fixture
def witnessed_log(
    database: Database,
    cli_env: CliEnv,
    start_witnesses: StartWitnesses,
    monkeypatch: pytest.MonkeyPatch,
) -> list[WitnessProcess]:
    """12 entries, cosigned at sizes 8 and 12 by two running witnesses the CLI is told of."""
    procs = start_witnesses(2)
    use_witnesses(monkeypatch, procs)
    ctx = cli_env.context()
    assert ctx.witnessing is not None
    fill(database, 8)
    ctx.witnessing.run_once()
    fill(database, 4, start=8)
    ctx.witnessing.run_once()
    assert latest(database).witnessed_at is not None
    ctx.witnessing.stop()
    checkpoints.attach_witnesses(ctx.db, None)
    ctx.db.dispose()
    return procs


def test_a_rewrite_with_everything_recomputed_passes_verify_without_witnesses_only(
    database: Database,
    witnessed_log: list[WitnessProcess],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out = verify_cli(capsys)
    assert code == 0
    assert "ok: consistent with what its witnesses cosigned (newest at size 12)" in out
    attack_rewrite(database)
    monkeypatch.delenv("GATEWAY_WITNESSES")
    assert verify_cli(capsys)[0] == 0  # what the issue reports: alone, the store proves nothing
    use_witnesses(monkeypatch, witnessed_log)
    code, err = verify_cli(capsys)
    assert code == 1 and err.count("\n") == 1
    assert "after the checkpoint its witnesses cosigned at size 12" in err, err


def test_after_a_rewrite_the_restarted_gateway_refuses_to_sign_and_is_not_ready(
    database: Database,
    witnessed_log: list[WitnessProcess],
    cli_env: CliEnv,
    tmp_path: Path,
    key_ring_template: Path,
) -> None:
    attack_rewrite(database)
    settings = Settings(
        mode="development",
        data_dir=tmp_path,
        database_url=database.url,
        keys_dir=tmp_path / "keys",
        policies_dir=POLICIES,
        log_origin=ORIGIN,
        witnesses=[p.setting for p in witnessed_log],
    )
    app = create_app(settings, clock=cli_env.clock, db=database)
    ctx = app.state.ctx
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            with pytest.raises(AuditLogCorruptError, match="witnesses cosigned at size 12"):
                checkpoints.create_checkpoint(database, cli_env.clock, ctx.signer, ORIGIN)
            ctx.witnessing.run_once()
            ready = client.get("/readyz")
            assert ready.status_code == 503
            assert "witnesses cosigned" in ready.json()["checks"]["witnesses"]
            metrics = client.get("/metrics").text
            assert metric(metrics, "gateway_audit_witness_consistent") == 0
    finally:
        checkpoints.attach_witnesses(database, None)
    with database.read() as session:
        assert checkpoints.latest_checkpoint(session) is None  # nothing was signed
    assert [witness_size(p) for p in witnessed_log] == [12, 12]  # nor cosigned


def test_a_restored_older_backup_is_reported_as_a_rollback(
    database: Database,
    witnessed_log: list[WitnessProcess],
    cli_env: CliEnv,
    capsys: pytest.CaptureFixture[str],
) -> None:
    restore_backup_at(database, 8)
    code, err = verify_cli(capsys)
    assert code == 1
    assert "rolled back: it holds 8 entries" in err and "cosigned at size 12" in err, err
    ctx = cli_env.context()
    try:
        assert ctx.witnessing is not None
        problem = ctx.witnessing.check()
        assert problem is not None and "rolled back" in problem
        assert ctx.witnessing.readiness() == problem
        fill(database, 6, start=100)  # new entries do not make the lost ones come back
        with pytest.raises(AuditLogCorruptError, match="not consistent"):
            checkpoints.create_checkpoint(ctx.db, cli_env.clock, ctx.signer, ORIGIN)
    finally:
        if ctx.witnessing is not None:
            ctx.witnessing.stop()
        checkpoints.attach_witnesses(ctx.db, None)
        ctx.db.dispose()


def test_a_split_view_shown_to_two_witnesses_is_detected_by_comparing_their_checkpoints(
    database: Database,
    clock: FixedClock,
    signer: Ed25519Signer,
    start_witnesses: StartWitnesses,
    witnessings: list[Witnessing],
) -> None:
    """An operator who holds the log key shows each witness a different tree of size 8."""
    first, second = start_witnesses(2)
    fill(database, 8)
    real = checkpoints.create_checkpoint(database, clock, signer, ORIGIN)
    with database.read() as session:
        leaves = list(
            session.exec(select(AuditEntry.leaf_hash).order_by(col(AuditEntry.leaf_index))).all()
        )
    leaves[6] = bytes(32)
    forged = Checkpoint(ORIGIN, 8, root_from_leaf_hashes(leaves)).sign(signer)
    for proc, note in ((first, real.note), (second, forged)):
        answer = httpx.post(f"{proc.url}/add-checkpoint", content=b"old 0\n\n" + note.encode())
        assert answer.status_code == 200  # each witness alone sees nothing wrong
    witnessing = make_witnessing(database, clock, signer, [first, second], quorum=1)
    witnessings.append(witnessing)
    views = witnessing.views()
    assert len(views) == 2
    pairs = split_views(views)
    assert len(pairs) == 1 and {pairs[0][0].witness, pairs[0][1].witness} == {
        v.witness for v in views
    }
    assert witnessing.check() is not None  # the stored tree cannot match both
    keys = [v.witness for v in views]
    for view in views:  # no checkpoint gathers both witnesses: a quorum of 2 catches it
        with pytest.raises(IntegrityCheckFailed):
            verify_witnessed(view.note, checkpoints.log_verifiers(ORIGIN, signer), keys, 2)


def test_a_forged_history_signed_while_the_witnesses_were_down_is_never_cosigned(
    database: Database,
    witnessed_log: list[WitnessProcess],
    cli_env: CliEnv,
    signer: Ed25519Signer,
    witnessings: list[Witnessing],
) -> None:
    attack_rewrite(database)
    for proc in witnessed_log:
        proc.stop()
    witnessing = make_witnessing(database, cli_env.clock, signer, witnessed_log)
    witnessings.append(witnessing)
    forged = checkpoints.create_checkpoint(database, cli_env.clock, signer, ORIGIN)
    assert forged.tree_size == 12  # nobody to ask: the log signs what its database says
    for proc in witnessed_log:
        proc.start()
    witnessing.run_once()
    assert witnessing.readiness() is not None  # the witnesses' answer exposes it
    with database.read() as session:
        assert session.exec(select(AuditCosignature)).all() == []
    assert latest(database).witnessed_at is None
    for proc in witnessed_log:
        state = json.loads((proc.folder / "state.json").read_text())["logs"][ORIGIN]
        assert state["size"] == 12 and state["root"] != forged_root(forged)


def forged_root(row: AuditCheckpoint) -> str:
    return base64.b64encode(row.root).decode()
