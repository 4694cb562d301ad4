"""The researcher's guide, run as written: an ``age-keygen`` key, a pinned signing key, ``age -d``.

The README's offline block (verify against the agreement's pin, unpack, decrypt with
the ``age`` command) runs unchanged against a real release of a test gateway, with a key
made by Debian's ``age-keygen`` and enrolled through the API. A bundle re-signed by
another key is refused against the pin.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import run
from gateway.keys import Ed25519Signer
from gateway.research.manifest import MANIFEST_NAME, SIGNATURE_NAME, manifest_bytes
from tests.research_api.conftest import AGREEMENT, NSCR, Study

AGE = shutil.which("age")
AGE_KEYGEN = shutil.which("age-keygen")
README = Path(__file__).resolve().parents[2] / "README.md"

pytestmark = pytest.mark.skipif(
    AGE is None or AGE_KEYGEN is None,
    reason="Debian's age (age, age-keygen) is not installed and could not be: "
    "scripts/ensure-services.sh installs it as root with apt-get install -y age",
)


def offline_block() -> str:
    """Return the README's researcher-guide shell block that needs no network."""
    text = README.read_text(encoding="utf-8")
    found = re.search(
        r"<!-- researcher-guide:offline -->\n```sh\n(.*?)```\n<!-- /researcher-guide:offline -->",
        text,
        re.DOTALL,
    )
    assert found, "the README lost its researcher-guide:offline block"
    return found.group(1)


def age_keygen(path: Path) -> str:
    """Make an identity with Debian's age-keygen; return its public recipient."""
    assert AGE_KEYGEN is not None
    subprocess.run([AGE_KEYGEN, "-o", str(path)], check=True, capture_output=True)
    path.chmod(0o600)
    made = subprocess.run([AGE_KEYGEN, "-y", str(path)], check=True, capture_output=True)
    return made.stdout.decode().strip()


def pinned_release(study: Study, synthetic_rows: list[dict[str, Any]], recipient: str) -> Any:
    """Pin the gateway's signing key in the agreement, enrol ``recipient``, release."""
    ctx = study.gw.client.app.state.ctx  # type: ignore[attr-defined]
    pin = f"sha256:{ctx.signer.fingerprint}"
    ctx.agreements[AGREEMENT] = ctx.agreements[AGREEMENT].model_copy(
        update={"signing_key_fingerprint": pin}
    )
    study.enrolled.add(AGREEMENT)
    study.enrol(NSCR, recipient)
    study.consent_all()
    study.submit_synthetic(synthetic_rows)
    return study.released()


def test_a_researcher_opens_a_release_with_an_age_keygen_key_after_checking_the_pin(
    study: Study, synthetic_rows: list[dict[str, Any]], tmp_path: Path
) -> None:
    key = tmp_path / "researcher.key"
    release = pinned_release(study, synthetic_rows, age_keygen(key))
    bundle = study.download(release["id"])
    agreement = study.ok(NSCR, "GET", f"/v1/research/agreements/{AGREEMENT}")
    fingerprint = agreement["signing_key_fingerprint"]

    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "BUNDLE": str(bundle),
        "FINGERPRINT": fingerprint,
        "KEY": str(key),
    }
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", offline_block()],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"signed by {fingerprint}, pinned in agreement {AGREEMENT}" in done.stdout
    text = (tmp_path / "release" / "data.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == release["rows_out"]
    assert text.splitlines()[0] in done.stdout  # head printed the header
    assert (tmp_path / "release" / "data.parquet").read_bytes()[:4] == b"PAR1"


def forge(bundle: Path, signer: Ed25519Signer, target: Path) -> None:
    """Write ``bundle`` re-signed by ``signer``: a whole, self-consistent bundle of another key."""
    with tarfile.open(bundle, mode="r:") as tar:
        members = tar.getmembers()
        data = {m.name: tar.extractfile(m).read() for m in members}  # type: ignore[union-attr]
    manifest = json.loads(data[MANIFEST_NAME])
    manifest["signature"]["key_fingerprint"] = signer.fingerprint
    manifest["signature"]["public_key"] = base64.b64encode(signer.public_key).decode()
    data[MANIFEST_NAME] = manifest_bytes(manifest)
    data[SIGNATURE_NAME] = signer.sign(data[MANIFEST_NAME])
    with tarfile.open(target, mode="w") as out:
        for member in members:
            member.size = len(data[member.name])
            out.addfile(member, io.BytesIO(data[member.name]))


def test_a_bundle_signed_by_another_key_is_refused_against_the_pin(
    study: Study,
    synthetic_rows: list[dict[str, Any]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    release = pinned_release(study, synthetic_rows, age_keygen(tmp_path / "researcher.key"))
    bundle = study.download(release["id"])
    pin = study.ok(NSCR, "GET", f"/v1/research/agreements/{AGREEMENT}")["signing_key_fingerprint"]
    other = Ed25519Signer.generate()
    forged = tmp_path / "forged.tar"
    forge(bundle, other, forged)
    capsys.readouterr()

    assert run(["extract", "verify", str(forged), "--fingerprint", pin]) == 1
    assert capsys.readouterr().err.strip() == "error: integrity check failed"
    # the forgery is whole: only the pin tells it apart
    assert run(["extract", "verify", str(forged), "--fingerprint", other.fingerprint]) == 0
    capsys.readouterr()
    assert (
        run(["extract", "verify", str(bundle), "--fingerprint", f"sha256:{other.fingerprint}"]) == 1
    )
    assert "integrity check failed" in capsys.readouterr().err
    assert run(["extract", "verify", str(bundle), "--fingerprint", pin]) == 0
    assert f"signed by {pin}, pinned in agreement {AGREEMENT}" in capsys.readouterr().out

    # a pin that is no fingerprint: one line, exit 1; no key at all, or both ways at
    # once: a usage mistake, one line, exit 2
    for argv, code in (
        (["--fingerprint", "sha256:abc"], 1),
        ([], 2),
        (["--fingerprint", pin, "--public-key", "00" * 32], 2),
    ):
        assert run(["extract", "verify", str(bundle), *argv]) == code
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, err
