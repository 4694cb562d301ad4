"""`verify_log` reads every table in one stream each and still names every changed row.

One column of one row of each table verify reads is changed behind the gateway's back
(entries, data-subject links, partner links, details, stored nodes, the tree head), or
a row is added for an entry that does not exist; verify names the entry (or subtree),
in small batches (streams and stored-node batches ending mid-log) as in large ones.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import text

from gateway.audit.verify import verify_log
from gateway.db import Database
from tests.audit.conftest import ORIGIN, fill
from tests.conftest import START

SIZE = 20
# In sample_event: even entries name a subject, every third a partner, every fourth has details.
CHANGES: list[tuple[str, str]] = [
    (
        "UPDATE audit_entries SET event_type = 'admin:partner:revoke' WHERE leaf_index = 13",
        "entry 13 was modified: its search columns (type, time, actor, case)",
    ),
    (
        "UPDATE audit_entries SET actor_principal_id = 'p9.analyst' WHERE leaf_index = 13",
        "entry 13 was modified: its search columns",
    ),
    (
        "UPDATE audit_entries SET actor_partner_id = NULL WHERE leaf_index = 14",
        "entry 14 was modified: its search columns",
    ),
    (
        "UPDATE audit_entries SET case_id = 'case-9' WHERE leaf_index = 15",
        "entry 15 was modified: its search columns",
    ),
    (
        "UPDATE audit_entries SET occurred_at = "
        "(SELECT occurred_at FROM audit_entries WHERE leaf_index = 16) WHERE leaf_index = 17",
        "entry 17 was modified: its search columns",
    ),
    (
        "UPDATE audit_entries SET leaf = replace(leaf, 'case-1', 'case-3') WHERE leaf_index = 11",
        "entry 11 was modified: its stored event does not match its leaf hash",
    ),
    (
        "UPDATE audit_entries SET leaf_hash = "
        "(SELECT leaf_hash FROM audit_entries WHERE leaf_index = 2) WHERE leaf_index = 9",
        "entry 9 was modified: its stored event does not match its leaf hash",
    ),
    (
        "UPDATE audit_subjects SET subject_key = 'subject-9' WHERE leaf_index = 12",
        "entry 12 was modified: its data-subject links",
    ),
    (
        "UPDATE audit_subjects SET leaf_index = 13 WHERE leaf_index = 12",
        "entry 12 was modified: its data-subject links",
    ),
    (
        "INSERT INTO audit_subjects (leaf_index, subject_key) VALUES (13, 'subject-1')",
        "entry 13 was modified: its data-subject links",
    ),
    (
        "INSERT INTO audit_subjects (leaf_index, subject_key) VALUES (99, 'subject-1')",
        "entry 99 does not exist, but data-subject links to it were inserted",
    ),
    (
        "UPDATE audit_parties SET partner_id = 'partner-9' WHERE leaf_index = 15",
        "entry 15 was modified: its partner links",
    ),
    (
        "INSERT INTO audit_parties (leaf_index, partner_id) VALUES (16, 'partner-1')",
        "entry 16 was modified: its partner links",
    ),
    (
        "INSERT INTO audit_parties (leaf_index, partner_id) VALUES (-1, 'partner-1')",
        "entry -1 does not exist, but partner links to it were inserted",
    ),
    (
        'UPDATE audit_details SET body = \'{"note":"detail 13"}\' WHERE leaf_index = 12',
        "entry 12 was modified: its details do not match the commitment in its event",
    ),
    (
        "UPDATE audit_details SET salt = "
        "(SELECT salt FROM audit_details WHERE leaf_index = 0) WHERE leaf_index = 16",
        "entry 16 was modified: its details do not match the commitment in its event",
    ),
    (
        "UPDATE audit_details SET delete_after = "
        "(SELECT occurred_at FROM audit_entries WHERE leaf_index = 0) WHERE leaf_index = 12",
        "entry 12 was modified: the retention date of its details was changed",
    ),
    (
        "UPDATE audit_details SET leaf_index = 13 WHERE leaf_index = 12",
        "entry 12 lost its details before their retention ended",
    ),
    (
        "INSERT INTO audit_details (leaf_index, salt, body, delete_after) SELECT 25, salt, "
        "body, delete_after FROM audit_details WHERE leaf_index = 16",
        "entry 25 does not exist, but details were inserted for it",
    ),
    (
        "UPDATE audit_nodes SET hash = (SELECT hash FROM audit_nodes WHERE level = 1 "
        "AND node_index = 0) WHERE level = 1 AND node_index = 7",
        "entries 14-15: one of them was changed after it was logged (the stored hash over "
        "them, tree level 1, no longer matches them)",
    ),
    (
        "DELETE FROM audit_nodes WHERE level = 2 AND node_index = 3",
        "entries 12-15: one of them was changed after it was logged (the stored hash over "
        "them, tree level 2, is missing from the store)",
    ),
    (
        "INSERT INTO audit_nodes (level, node_index, hash) SELECT 1, 10, hash FROM audit_nodes "
        "WHERE level = 1 AND node_index = 0",
        "a stored tree node (level 1) covers entries beyond the 20 stored ones",
    ),
    (
        "UPDATE audit_tree_head SET root = (SELECT hash FROM audit_nodes WHERE level = 1 "
        "AND node_index = 0)",
        "the tree head's root does not match the stored entries",
    ),
]


@pytest.fixture
def filled(database: Database) -> Database:
    fill(database, SIZE)
    return database


def problems(database: Database) -> list[str]:
    """What verify reports, streaming in batches of 3 rows and of 2000."""
    reports = [verify_log(database, [], ORIGIN, START, batch=b) for b in (3, 2000)]
    return [report.problem.message if report.problem else "ok" for report in reports]


def test_an_untouched_log_with_links_and_details_verifies_in_any_batch_size(
    filled: Database,
) -> None:
    reports = [verify_log(filled, [], ORIGIN, START, batch=b) for b in (1, 3, 2000)]
    assert [(r.ok, r.entries, r.details) for r in reports] == [(True, SIZE, 5)] * 3


@pytest.mark.parametrize(("change", "named"), CHANGES, ids=[c[1][:40] for c in CHANGES])
def test_one_changed_row_of_any_table_is_named(filled: Database, change: str, named: str) -> None:
    with filled.write() as session:
        session.execute(text(change))
    found = problems(filled)
    assert all(message.startswith(named) for message in found), found


def test_a_time_stored_in_another_but_equal_form_is_not_reported(
    sqlite_template: Path, tmp_path: Path
) -> None:
    # SQLite keeps times as text; a shorter text for the same instant is the same time, so
    # the exact comparison behind the text comparison must accept it.
    path = tmp_path / "gateway.db"
    shutil.copyfile(sqlite_template, path)
    database = Database(f"sqlite:///{path}")
    try:
        fill(database, 4)
        with database.write() as session:
            session.execute(
                text(
                    "UPDATE audit_entries SET occurred_at = substr(occurred_at, 1, 19) "
                    "WHERE leaf_index = 2"
                )
            )
            stored = session.execute(
                text("SELECT occurred_at FROM audit_entries WHERE leaf_index = 2")
            ).scalar_one()
        assert len(stored) == 19
        assert problems(database) == ["ok", "ok"]
        with database.write() as session:
            session.execute(
                text(
                    "UPDATE audit_entries SET occurred_at = substr(occurred_at, 1, 18) || '9' "
                    "WHERE leaf_index = 2"
                )
            )
        assert all(
            message.startswith("entry 2 was modified: its search columns")
            for message in problems(database)
        )
    finally:
        database.dispose()
