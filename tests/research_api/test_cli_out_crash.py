"""``gateway extract run --out`` killed with SIGKILL mid-copy: the bundle is whole or absent.

A child process runs the real command against the test gateway's store and stops dead
after the first kilobyte of the bundle's copy into ``--out`` (it signals the test
through a marker file, then waits to be killed).
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
from tests.conftest import ROOT
from tests.research_api.conftest import AGREEMENT, Study

CHILD = r"""
import os, sys, time
from pathlib import Path
from gateway.cli import run

out, marker = Path(sys.argv[1]), Path(sys.argv[2])
real_sendfile = os.sendfile

def stop_after_a_kilobyte(out_fd, in_fd, offset, count):
    if not os.readlink(f"/proc/self/fd/{out_fd}").startswith(str(out)):
        return real_sendfile(out_fd, in_fd, offset, count)
    sent = real_sendfile(out_fd, in_fd, offset, min(count, 1024))
    marker.write_text("copying")
    while True:
        time.sleep(1)
    return sent

os.sendfile = stop_after_a_kilobyte
argv = ["extract", "run", "--agreement", sys.argv[3], "--declare-use", "non-commercial"]
code = run([*argv, "--out", str(out)])
print(f"finished without stopping ({code})", file=sys.stderr)
sys.exit(3)
"""


@pytest.mark.slow
def test_a_kill_during_the_out_copy_leaves_a_whole_bundle_or_none(
    cli_env: Study,
    synthetic_rows: list[dict[str, Any]],
    tmp_path: Path,
) -> None:
    study = cli_env
    study.consent_all()
    study.submit_synthetic(synthetic_rows)
    study.enrol_all()
    out = tmp_path / "handover"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    marker = tmp_path / "stopped"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, str(script), str(out), str(marker), AGREEMENT],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while not marker.exists():
        if child.poll() is not None or time.monotonic() > deadline:
            child.kill()
            _, err = child.communicate()
            pytest.fail(f"the child did not reach the copy: {err.decode()[-2000:]}")
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.communicate(timeout=30)
    with study.gw.database.read() as session:
        release = session.exec(select(ResearchRelease)).one()
    published = study.gw.settings.resolved_releases_dir / release.bundle_name
    copied = out / release.bundle_name
    assert not copied.exists() or copied.read_bytes() == published.read_bytes()
    assert not copied.exists(), "the copy was stopped after a kilobyte; nothing may show"
    assert [p.name for p in out.iterdir() if not p.name.startswith(".")] == []
