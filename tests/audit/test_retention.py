"""Retention per data category: audit details and data-subject index rows are purged when
their category's retention ends; the leaves stay, so the log still verifies, and an
art. 15 lookup no longer finds the purged processing."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from gateway.audit import entries, sequencer
from gateway.audit.checkpoints import log_verifiers
from gateway.audit.verify import verify_log
from gateway.config import Settings
from gateway.db import Database
from gateway.demo import POLITIE, RIEC
from gateway.demo_data import YOUTH, YOUTH_BSN
from gateway.identity.service import CLI_ACTOR
from gateway.keys import KeyRing
from gateway.models.audit import AuditDetail, AuditEntry, AuditSubject
from gateway.policy.pack import Pack, check_pack, read_pack
from gateway.policy.retention import DEFAULT_DAYS, RETENTION_FILE, Retention, parse_retention
from gateway.policy.vocabulary import load_vocabulary
from gateway.yamlsource import SourceError
from tests.conftest import POLICIES, Gateway
from tests.helpers.cases import POLICE_RECORD, go, start_case

RIEC_PO = "riec-noord-nederland.privacy-officer"
SHORT = 20  # police incidents and hit/no-hit answers
LONG = 60  # signals (all within the test tokens' 90 days)
RETENTION = f"""default_days: {DEFAULT_DAYS}
categories:
  police-incident: {SHORT}
  hit-result: {SHORT}
  signal: {LONG}
"""


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    """The shipped pack with two short retentions and a longer one (imported on start)."""
    policies = tmp_path / "policies"
    shutil.copytree(POLICIES, policies)
    (policies / RETENTION_FILE).write_text(RETENTION, encoding="utf-8")
    return Settings(**{**settings.model_dump(), "policies_dir": policies})


# --- the file: checked against the vocabulary, inherited down the category tree ---------


def test_the_shipped_pack_keeps_wjsg_data_four_years() -> None:
    retention = parse_retention(POLICIES, load_vocabulary(POLICIES))
    assert retention.default == timedelta(days=DEFAULT_DAYS) >= timedelta(days=4 * 365)
    assert retention.period(["om-case"]) == retention.period(["research-om-case"])
    assert retention.period(["om-case"]) >= timedelta(days=4 * 365)
    assert retention.period() == retention.default


def test_a_category_takes_the_longest_retention_above_it_and_an_entry_its_longest(
    tmp_path: Path,
) -> None:
    shutil.copytree(POLICIES, tmp_path / "p")
    (tmp_path / "p" / RETENTION_FILE).write_text(
        "default_days: 1461\ncategories:\n  criminal-law: 1000\n  police: 200\n",
        encoding="utf-8",
    )
    retention = parse_retention(tmp_path / "p", load_vocabulary(POLICIES))
    assert retention.period(["police-incident"]) == timedelta(days=1000)  # criminal-law above
    assert retention.period(["police"]) == timedelta(days=200)  # its own line first
    assert retention.period(["om-case"]) == timedelta(days=1000)
    assert retention.period(["fiscal"]) == timedelta(days=1461)  # nothing above: default
    assert retention.period(["police", "fiscal"]) == timedelta(days=1461)


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("categories:\n  politie-incident: 30\n", 2, "unknown data category 'politie-incident'"),
        ("categories:\n  police-incident: 0\n", 2, "police-incident: must be a whole number"),
        ("categories:\n  police-incident: dertig\n", 2, "police-incident: must be a whole"),
        ("default_days: -1\n", 1, "default_days must be a whole number"),
        ("bewaren: 30\n", 1, "unknown key 'bewaren'"),
    ],
)
def test_mistakes_in_the_retention_file_name_file_and_line(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    shutil.copytree(POLICIES, tmp_path / "p")
    (tmp_path / "p" / RETENTION_FILE).write_text(text, encoding="utf-8")
    pack = read_pack(tmp_path / "p")
    with pytest.raises(SourceError) as info:
        check_pack(pack)  # what a proposal passes through, like the rules
    assert f"{RETENTION_FILE}:{line}: {message}" in str(info.value)


def test_the_retention_file_is_changed_through_a_proposal() -> None:
    pack = read_pack(POLICIES)
    assert RETENTION_FILE in pack.editable
    changed = pack.with_changes({RETENTION_FILE: RETENTION})
    assert isinstance(changed, Pack) and check_pack(changed).compiled.version


# --- the purge, on both backends --------------------------------------------------------


def _lookup(gateway: Gateway) -> set[str]:
    """The names of the processings an art. 15 lookup (name and BSN) finds, reads excluded."""
    body = {"identifiers": [{"type": "name", "value": YOUTH}, {"type": "bsn", "value": YOUTH_BSN}]}
    response = gateway.client.post(
        "/v1/subjects/processing-log", json=body, headers=gateway.auth(RIEC_PO)
    )
    assert response.status_code == 200, response.text
    return {
        line["name"]
        for line in response.json()["lines"]
        if line["name"] != "subject:processing-log:read"
    }


def _purge(gateway: Gateway) -> int:
    with gateway.database.write() as session:
        return entries.purge_details(session, gateway.clock, CLI_ACTOR)


GEMEENTE_SYSTEM = "gemeente-smallingerland.partner-system"


def _kept(database: Database, event_type: str) -> tuple[int, int]:
    """How many subject rows and detail rows the entries of ``event_type`` still have."""
    with database.read() as session:
        leaves = select(AuditEntry.leaf_index).where(AuditEntry.event_type == event_type)
        subjects = session.exec(
            select(AuditSubject).where(col(AuditSubject.leaf_index).in_(leaves))
        ).all()
        details = session.exec(
            select(AuditDetail).where(col(AuditDetail.leaf_index).in_(leaves))
        ).all()
    return len(subjects), len(details)


def _verifies(gateway: Gateway) -> Any:
    sequencer.catch_up(gateway.database)
    signer = KeyRing.open(gateway.settings, clock=gateway.clock).signer()
    origin = gateway.settings.log_origin
    return verify_log(gateway.database, log_verifiers(origin, signer), origin, gateway.clock.now())


def test_the_shorter_categorys_details_and_subject_rows_go_the_longers_stay(
    gateway: Gateway,
) -> None:
    walk = start_case(gateway)
    hit = walk.ok(
        RIEC, "POST", walk.case("/hits"), json={"identifier": {"type": "name", "value": YOUTH}}
    )
    assert hit["hits"]["politie-noord-nederland"] is True
    go(walk)
    assert walk.share(POLITIE, POLICE_RECORD).status_code == 201
    walk.records(RIEC)
    # an AuthZEN evaluation: its decision is an entry of its own, naming no data category
    evaluation = {
        "subject": {"type": "partner", "id": "gemeente-smallingerland"},
        "action": {"name": "case:signal:submit"},
        "resource": {
            "type": "record",
            "id": "r-1",
            "properties": {"category": "signal", "legal_basis": "wpg-20"},
        },
        "context": {"process": "casusaanpak", "step": 1, "purpose": "signaalbeoordeling"},
    }
    asked = gateway.client.post(
        "/access/v1/evaluation", json=evaluation, headers=gateway.auth(GEMEENTE_SYSTEM)
    )
    assert asked.status_code == 200, asked.text
    before = _lookup(gateway)
    assert before >= {"case:signal:submit", "case:hit:query", "case:record:share"}
    assert _kept(gateway.database, "case:hit:query") == (1, 1)
    entries_before = len(_entries(gateway.database))

    gateway.clock.advance(timedelta(days=SHORT - 1))  # the day before: nothing is due
    assert _purge(gateway) == 0
    assert _lookup(gateway) == before

    gateway.clock.advance(timedelta(days=2))
    assert _purge(gateway) > 0
    after = _lookup(gateway)
    assert after == {"case:signal:submit"}  # the longer category's processing is still found
    for short in ("case:hit:query", "case:record:share", "case:record:read"):
        assert _kept(gateway.database, short) == (0, 0), short
    signal_subjects, _ = _kept(gateway.database, "case:signal:submit")
    assert signal_subjects == 3  # its three subjects, kept for the signal's 60 days
    _subjects, decision_details = _kept(gateway.database, "policy:decision:record")
    assert decision_details > 0  # uncategorised details keep the default four years
    # the leaves stay: only the purge's own entry was added
    assert len(_entries(gateway.database)) >= entries_before + 1
    report = _verifies(gateway)
    assert report.ok, report.problem

    gateway.clock.advance(timedelta(days=LONG))
    assert _purge(gateway) > 0
    assert _lookup(gateway) == set()
    assert _kept(gateway.database, "case:signal:submit") == (0, 0)
    report = _verifies(gateway)
    assert report.ok, report.problem


def test_verify_reports_subject_rows_deleted_before_their_retention_ended(
    gateway: Gateway,
) -> None:
    walk = start_case(gateway)
    go(walk)
    assert walk.share(POLITIE, POLICE_RECORD).status_code == 201
    sequencer.catch_up(gateway.database)
    with gateway.database.write() as session:
        share = session.exec(
            select(AuditEntry.leaf_index).where(AuditEntry.event_type == "case:record:share")
        ).one()
        for row in session.exec(select(AuditSubject).where(AuditSubject.leaf_index == share)):
            session.delete(row)
    report = _verifies(gateway)
    assert not report.ok and "data-subject links" in str(report.problem)
    gateway.clock.advance(timedelta(days=SHORT + 1))  # once due, their absence is the purge's
    assert _verifies(gateway).ok


def _entries(database: Database) -> list[int]:
    with database.read() as session:
        return list(session.exec(select(AuditEntry.leaf_index)).all())


def test_retention_defaults_without_a_file(tmp_path: Path) -> None:
    shutil.copytree(POLICIES, tmp_path / "p")
    (tmp_path / "p" / RETENTION_FILE).unlink()
    assert parse_retention(tmp_path / "p", load_vocabulary(POLICIES)) == Retention()
