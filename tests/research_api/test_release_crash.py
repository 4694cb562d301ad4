"""A release killed with SIGKILL at any point leaves no bundle and no release record.

A child process runs a real release against the test database and stops dead at a
chosen point (it signals the test through a marker file, then waits to be killed):
while reading the stored rows, after the bundle was written but before the release is
recorded, inside the recording transaction, and after the commit but before the bundle
is moved into place. Before the commit nothing is released; after it the release
happened, and the next release completes it. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from gateway.models.research import ResearchRelease
from tests.conftest import ROOT, START
from tests.research_api.conftest import AGREEMENT, NSCR, Study

CHILD = r"""
import sys, time
from datetime import datetime
from pathlib import Path
from gateway.app import build_context
from gateway.clock import FixedClock
from gateway.config import Settings
from gateway.identity.service import CLI_ACTOR
from gateway.research import release_folder
from gateway.research.duo import DeclaredUse
from gateway.research.service import Research, release

point, marker, at, agreement = sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4]

def stop_here(*args, **kwargs):
    marker.write_text(point)
    while True:
        time.sleep(1)

if point == "rows":
    real_rows = release.stored_rows
    def some_rows(ctx, session, agreement, allowed):
        for index, row in enumerate(real_rows(ctx, session, agreement, allowed)):
            if index == 500:
                stop_here()
            yield row
    release.stored_rows = some_rows
elif point == "written":
    release.record_release = stop_here
elif point == "in-transaction":
    release.before_commit = stop_here
elif point == "committed":
    release_folder.finish = stop_here

ctx = build_context(Settings(), clock=FixedClock(datetime.fromisoformat(at)))
Research(ctx).release(CLI_ACTOR, agreement, declared_use=[DeclaredUse.NON_COMMERCIAL])
print("finished without stopping", file=sys.stderr)
sys.exit(3)
"""


def _files(folder: Path) -> dict[str, list[str]]:
    pending = folder / ".pending"
    return {
        "bundles": sorted(p.name for p in folder.glob("*.tar")),
        "pending": sorted(p.name for p in pending.glob("*.tar")) if pending.exists() else [],
        "work": sorted(p.name for p in pending.glob(".extract-tmp-*")) if pending.exists() else [],
    }


def _recorded(study: Study) -> list[str]:
    with study.gw.database.read() as session:
        return sorted(session.exec(select(ResearchRelease.id)).all())


@pytest.mark.slow
@pytest.mark.parametrize("point", ["rows", "written", "in-transaction", "committed"])
def test_sigkill_mid_release(
    point: str, study: Study, synthetic_rows: list[dict[str, Any]], tmp_path: Path
) -> None:
    study.consent_all()
    study.submit_synthetic(synthetic_rows)
    study.enrol_all()
    settings = study.gw.settings
    folder = settings.resolved_releases_dir
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env |= {
        "PYTHONPATH": str(ROOT),
        "GATEWAY_MODE": "development",
        "GATEWAY_DATABASE_URL": str(settings.database_url),
        "GATEWAY_DATA_DIR": str(settings.data_dir),
        "GATEWAY_KEYS_DIR": str(settings.keys_dir),
        "GATEWAY_POLICIES_DIR": str(settings.policies_dir),
        "GATEWAY_RELEASES_DIR": str(folder),
    }
    script, marker = tmp_path / "child.py", tmp_path / "stopped"
    script.write_text(CHILD)
    child = subprocess.Popen(
        [sys.executable, str(script), point, str(marker), START.isoformat(), AGREEMENT],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while not marker.exists():
        if child.poll() is not None or time.monotonic() > deadline:
            child.kill()
            _, err = child.communicate()
            pytest.fail(f"child did not reach {point}: {err.decode()[-3000:]}")
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL

    left = _files(folder)
    assert left["bundles"] == []  # nothing under a final name, whatever the point
    recorded = _recorded(study)
    if point == "committed":
        assert len(recorded) == 1 and left["pending"] == [f"{recorded[0]}.tar"]
    else:
        assert recorded == []
        assert len(left["pending"]) == (0 if point == "rows" else 1)
        assert len(left["work"]) == (1 if point == "rows" else 0)

    # the next release cleans up or completes what the killed one left
    after = study.released(NSCR)
    recorded = _recorded(study)
    assert after["id"] in recorded and len(recorded) == (2 if point == "committed" else 1)
    assert _files(folder) == {
        "bundles": sorted(f"{r}.tar" for r in recorded),
        "pending": [],
        "work": [],
    }
    for release in recorded:
        study.open(release)  # the completed one verifies and opens as well
