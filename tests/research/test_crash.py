"""A release killed with SIGKILL at any stage leaves no bundle; the next run cleans up.

A child process runs a real release and stops dead at a chosen point (it signals the
test through a marker file, then waits to be killed): while spilling pass 1, between
encrypting the data files, while writing the tar, and just before publishing.
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

from gateway.keys.signing import Ed25519Signer
from gateway.research.bundle import verify_bundle
from tests.conftest import ROOT
from tests.research.conftest import Releaser

CHILD = r"""
import sys, time
from datetime import UTC, datetime
from pathlib import Path
from pyrage import x25519
from gateway.keys.signing import Ed25519Signer
from gateway.research import bundle_pack, release_builder, synthetic
from gateway.research.agreements import AgreementVocabulary, load_agreement
from gateway.research.extract import ExtractRequest
from tests.research.doubles import FakeKeyRing

out, point, marker = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])

def stop_here():
    marker.write_text(point)
    while True:
        time.sleep(1)

policies = Path("policies")
agreement = load_agreement(
    policies / "agreements" / "jeugdnetwerken-noord-nederland.yaml",
    AgreementVocabulary.from_policies(policies),
)
agreement = agreement.with_recipients(
    [str(x25519.Identity.generate().to_public()) for _ in agreement.researchers]
)

def rows():
    for index, row in enumerate(synthetic.rows(40_000)):
        if point == "pass1" and index == 20_000:
            stop_here()
        yield row

if point == "encrypt":
    real_encrypt = bundle_pack.encrypt_stream
    def encrypt_then_stop(source, target, recipients):
        real_encrypt(source, target, recipients)
        target.flush()
        stop_here()  # data.csv.age in the tar, data.parquet not yet
    bundle_pack.encrypt_stream = encrypt_then_stop
elif point == "tar":
    def no_head(manifest, signature, mtime):
        stop_here()  # every data member in the tar, no manifest in front of them
    bundle_pack.tar_head = no_head
elif point == "publish":
    release_builder.publish = lambda temporary, final: stop_here()

request = ExtractRequest(
    agreement, "crash-test", datetime(2026, 11, 23, 9, tzinfo=UTC), "test", agreement.provider_ids
)
release_builder.make_release(
    request,
    rows(),
    pseudonymiser=FakeKeyRing().pseudonymiser(agreement.project),
    signer=Ed25519Signer.generate(),
    out_dir=out,
)
print("finished without stopping", file=sys.stderr)
sys.exit(3)
"""


def _bundles(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.suffix == ".tar")


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".extract-tmp-"))


@pytest.mark.slow
@pytest.mark.parametrize("point", ["pass1", "encrypt", "tar", "publish"])
def test_sigkill_mid_release_leaves_no_bundle_and_the_next_run_cleans_up(
    point: str,
    tmp_path: Path,
    releaser: Releaser,
    rows: list[dict[str, Any]],
    signer: Ed25519Signer,
) -> None:
    out = releaser.out
    out.mkdir(parents=True)
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    marker = tmp_path / "stopped"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, str(script), str(out), point, str(marker)],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while not marker.exists():
        if child.poll() is not None or time.monotonic() > deadline:
            child.kill()
            _, err = child.communicate()
            pytest.fail(f"child did not reach {point}: {err.decode()[-2000:]}")
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL
    assert _bundles(out) == []
    assert len(_leftovers(out)) == 1  # killed mid-work: its work folder is still there

    release = releaser.release(rows, "after-the-crash")
    assert _bundles(out) == ["after-the-crash.tar"]
    assert _leftovers(out) == []
    verify_bundle(release.bundle, signer.public_key)
