"""No age secret key is ever committed: the example's recipients are public keys only."""

from __future__ import annotations

import subprocess

from tests.conftest import ROOT

MARKER = ("AGE-SECRET" + "-KEY-").encode()  # spelled apart so this file does not match


def test_no_tracked_file_holds_an_age_secret_key() -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    files = [ROOT / name.decode() for name in listed if name]
    assert any(f.name == "jeugdnetwerken-noord-nederland.yaml" for f in files)
    offenders = [str(f) for f in files if f.is_file() and MARKER in f.read_bytes().upper()]
    assert offenders == []
