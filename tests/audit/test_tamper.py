"""`gateway audit verify` fails on every kind of tampering and names the first entry affected.

The log is changed behind the gateway's back, the way someone with write access to the
database could: editing, deleting, reordering or inserting stored events, with or
without also recomputing the hashes that commit to them.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from sqlalchemy import text
from sqlmodel import Session, col, select

from gateway.audit import checkpoints, log
from gateway.audit.events import canonical_json
from gateway.audit.merkle import frontier_append, frontier_root, leaf_hash
from gateway.audit.note import NoteVerifier
from gateway.cli import run
from gateway.db import Database
from gateway.keys.signing import Ed25519Signer
from gateway.models.audit import (
    AuditCheckpoint,
    AuditDetail,
    AuditEntry,
    AuditNode,
    AuditTreeHead,
)
from tests.audit.conftest import ORIGIN, CliEnv, fill, sample_event

SIZE = 12


@pytest.fixture
def logged(database: Database, cli_env: CliEnv) -> Database:
    """A log of 12 entries with signed checkpoints at sizes 4 and 12."""
    fill(database, 4)
    ctx = cli_env.context()
    checkpoints.create_checkpoint(database, cli_env.clock, ctx.signer, ORIGIN)
    fill(database, SIZE - 4, start=4)
    checkpoints.create_checkpoint(database, cli_env.clock, ctx.signer, ORIGIN)
    ctx.db.dispose()
    return database


def verify_output(capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = run(["audit", "verify"])
    captured = capsys.readouterr()
    return code, captured.err if code else captured.out


def failure(capsys: pytest.CaptureFixture[str]) -> str:
    code, err = verify_output(capsys)
    assert code == 1
    assert err.count("\n") == 1, err  # one line
    prefix = "error: audit log verification failed: "
    assert err.startswith(prefix), err
    return err.removeprefix(prefix).strip()


def edit(database: Database, change: Callable[[Session], object]) -> None:
    with database.write() as session:
        change(session)


def entry(session: Session, index: int) -> AuditEntry:
    row = session.get(AuditEntry, index)
    assert row is not None
    return row


def rewrite_event(session: Session, index: int, *, rehash: bool, **changes: object) -> None:
    row = entry(session, index)
    doc = json.loads(row.leaf)
    doc.update(changes)
    row.leaf = canonical_json(doc).decode()
    if rehash:
        row.leaf_hash = leaf_hash(row.leaf.encode())
    session.add(row)


def rebuild_tree(session: Session) -> None:
    """What a thorough forger does after editing events: recompute every node and the head."""
    session.execute(text("DELETE FROM audit_nodes"))
    frontier: list[bytes] = []
    rows = session.exec(select(AuditEntry).order_by(col(AuditEntry.leaf_index))).all()
    for i, row in enumerate(rows):
        row.leaf_hash = leaf_hash(row.leaf.encode())
        session.add(row)
        frontier, done = frontier_append(i, frontier, row.leaf_hash)
        session.add_all(AuditNode(level=n.level, node_index=n.index, hash=n.hash) for n in done)
    head = session.get(AuditTreeHead, 1)
    assert head is not None
    head.size, head.root = len(rows), frontier_root(frontier)
    head.frontier = json.dumps([h.hex() for h in frontier])
    session.add(head)


def move(session: Session, old: int, new: int) -> None:
    session.execute(
        text("UPDATE audit_entries SET leaf_index = :new WHERE leaf_index = :old"),
        {"old": old, "new": new},
    )


def test_an_untouched_log_verifies(logged: Database, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = verify_output(capsys)
    assert code == 0
    assert out.startswith(f"ok: {SIZE} entries") and "2 signed checkpoints" in out


def test_a_changed_event_is_named(logged: Database, capsys: pytest.CaptureFixture[str]) -> None:
    edit(logged, lambda s: rewrite_event(s, 5, rehash=False, actor={"partner": "x"}))
    assert failure(capsys).startswith("entry 5 was modified: its stored event does not match")


def test_a_changed_event_with_a_recomputed_leaf_hash_is_caught_by_the_stored_tree(
    logged: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(logged, lambda s: rewrite_event(s, 5, rehash=True, purpose="something else"))
    message = failure(capsys)
    assert message.startswith("entries 4-5: one of them was changed after it was logged")


def test_a_changed_event_with_a_rebuilt_tree_is_caught_by_the_signed_checkpoints(
    logged: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    def forge(session: Session) -> None:
        rewrite_event(session, 5, rehash=True, purpose="something else")
        rebuild_tree(session)

    edit(logged, forge)
    assert failure(capsys).startswith(
        "entries 4-11: one of them was changed, removed or inserted after checkpoint at size 12"
    )


def test_a_changed_search_column_is_named(
    logged: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    def hide(session: Session) -> None:
        row = entry(session, 7)
        row.actor_partner_id = "someone-else"
        session.add(row)

    edit(logged, hide)
    assert failure(capsys).startswith("entry 7 was modified: its search columns")


def test_a_removed_party_link_is_named(
    logged: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(logged, lambda s: s.execute(text("DELETE FROM audit_parties WHERE leaf_index = 6")))
    assert failure(capsys).startswith("entry 6 was modified: its partner links")


def test_a_deleted_event_is_named(logged: Database, capsys: pytest.CaptureFixture[str]) -> None:
    edit(logged, lambda s: s.delete(entry(s, 5)))
    assert failure(capsys).startswith("entry 5 was removed")


def test_a_deleted_event_with_renumbered_successors_is_named(
    logged: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    def delete_and_close_gap(session: Session) -> None:
        session.delete(entry(session, 5))
        session.flush()
        for i in range(6, SIZE):
            move(session, i, i - 1)

    edit(logged, delete_and_close_gap)
    assert failure(capsys).startswith("entry 5 was removed: entry 6 and later ones were moved up")


def test_a_deleted_last_event_is_named(
    logged: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(logged, lambda s: s.delete(entry(s, SIZE - 1)))
    assert failure(capsys).startswith(f"entry {SIZE - 1} was removed")


def test_reordered_events_are_named(logged: Database, capsys: pytest.CaptureFixture[str]) -> None:
    def swap(session: Session) -> None:
        move(session, 3, 1000)
        move(session, 4, 3)
        move(session, 1000, 4)

    edit(logged, swap)
    assert failure(capsys).startswith(
        "entry 3 was reordered: it is stored at position 4 and entry 4 in its place"
    )


def test_an_inserted_event_is_named(logged: Database, capsys: pytest.CaptureFixture[str]) -> None:
    def insert_at_5(session: Session) -> None:
        for i in reversed(range(5, SIZE)):
            move(session, i, i + 1)
        fake = json.loads(entry(session, 4).leaf)
        fake.update(index=5, purpose="made up")
        leaf = canonical_json(fake)
        session.add(
            AuditEntry(
                leaf_index=5,
                event_type=fake["type"],
                occurred_at=entry(session, 4).occurred_at,
                actor_partner_id=fake["actor"]["partner"],
                actor_principal_id=fake["actor"]["principal"],
                case_id=fake["case"],
                leaf=leaf.decode(),
                leaf_hash=leaf_hash(leaf),
            )
        )

    edit(logged, insert_at_5)
    assert failure(capsys).startswith("entry 5 was inserted")


def test_an_event_appended_behind_the_head_is_named(
    logged: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    with logged.read() as session:
        before = log.read_head(session)
        size, root, frontier = before.size, before.root, before.frontier
    with logged.write() as session:
        log.append(session, sample_event(SIZE))  # integrated right after this commit
    with logged.write() as session:
        after = log.read_head(session)
        after.size, after.root, after.frontier = size, root, frontier  # put the old head back
        session.add(after)
    assert failure(capsys).startswith(f"entry {SIZE} was inserted: the tree head counts only")


def test_changed_details_are_named(logged: Database, capsys: pytest.CaptureFixture[str]) -> None:
    def change(session: Session) -> None:
        detail = session.get(AuditDetail, 8)
        assert detail is not None
        detail.body = '{"note":"another story"}'
        session.add(detail)

    edit(logged, change)
    assert failure(capsys).startswith("entry 8 was modified: its details do not match")


def test_details_deleted_before_their_retention_ended_are_named(
    logged: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(logged, lambda s: s.execute(text("DELETE FROM audit_details WHERE leaf_index = 4")))
    assert failure(capsys).startswith("entry 4 lost its details before their retention ended")


def test_a_forged_checkpoint_is_named(logged: Database, capsys: pytest.CaptureFixture[str]) -> None:
    def forge(session: Session) -> None:
        row = session.get(AuditCheckpoint, SIZE)
        assert row is not None
        row.note = row.note.replace(f"\n{SIZE}\n", f"\n{SIZE + 1}\n")
        session.add(row)

    edit(logged, forge)
    assert (
        failure(capsys)
        == f"checkpoint at size {SIZE}: its signature does not verify with the log's keys"
    )


def test_a_leaf_text_swapped_with_its_hash_kept_still_names_the_reorder(
    logged: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    def swap_texts(session: Session) -> None:
        a, b = entry(session, 9), entry(session, 10)
        a.leaf, b.leaf = b.leaf, a.leaf
        session.add_all([a, b])

    edit(logged, swap_texts)
    assert failure(capsys).startswith("entry 9 was reordered: it is stored at position 10")


def test_an_auditor_can_verify_with_the_public_key_alone(
    logged: Database, capsys: pytest.CaptureFixture[str], cli_env: CliEnv
) -> None:
    ctx = cli_env.context()
    ctx.db.dispose()
    assert ctx.signer is not None
    own = NoteVerifier(ORIGIN, ctx.signer.public_key).vkey()
    assert run(["audit", "verify", "--public-key", own]) == 0
    assert "2 signed checkpoints" in capsys.readouterr().out
    other = NoteVerifier(ORIGIN, Ed25519Signer.generate().public_key).vkey()
    assert run(["audit", "verify", "--public-key", other]) == 1
    assert "checkpoint at size 4: its signature does not verify" in capsys.readouterr().err
