"""``gateway extract run`` releases from the database; ``verify --proof`` checks it offline.

The command runs on the host as the CLI actor: the policy is still asked for every
receiving science partner and every provider. ``--out`` hands over the bundle, its
audit proof and the gateway's public key, which is all a researcher needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from gateway.cli import run
from gateway.models.research import ResearchRelease
from tests.research_api.conftest import AGREEMENT, Study


def test_extract_run_verify_and_open(
    cli_env: Study,
    synthetic_rows: list[dict[str, Any]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    study = cli_env
    assert run(["extract", "run", "--agreement", AGREEMENT, "--declare-use", "non-commercial"]) == 1
    assert "no provider of agreement" in capsys.readouterr().err
    assert run(["extract", "run", "--agreement", "geen-studie"]) == 1
    assert "no such research agreement" in capsys.readouterr().err

    study.consent_all()
    study.submit_synthetic(synthetic_rows)
    assert run(["extract", "run", "--agreement", AGREEMENT, "--declare-use", "non-commercial"]) == 1
    assert "no confirmed researcher key" in capsys.readouterr().err
    study.enrol_all()
    out = tmp_path / "handover"
    assert (
        run(
            [
                "extract",
                "run",
                "--agreement",
                AGREEMENT,
                "--declare-use",
                "non-commercial",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    with study.gw.database.read() as session:
        release = session.exec(select(ResearchRelease)).one()
    assert release.requested_by == "system:cli" and release.requested_by_partner is None
    assert f"release {release.id}" in printed and release.manifest_sha256 in printed
    # the person-level risk and utility report, beside the counts
    assert "risk: people:" in printed and "prosecutor risk max 0." in printed
    assert "attacker knowing 1 event(s)" in printed and "information loss" in printed
    bundle = out / release.bundle_name
    proof = out / f"{release.id}.tlog-proof"
    key = out / "gateway-signing-key.pub"
    assert (
        bundle.read_bytes()
        == (study.gw.settings.resolved_releases_dir / release.bundle_name).read_bytes()
    )

    verify = ["extract", "verify", str(bundle), "--public-key", str(key)]
    assert run([*verify, "--proof", str(proof)]) == 0
    printed = capsys.readouterr().out
    assert f"the release is entry {release.audit_leaf_index} of" in printed
    assert run(verify) == 0
    assert "inclusion not checked" in capsys.readouterr().out

    identity = tmp_path / "researcher.key"
    identity.write_text(str(study.identities[0]) + "\n", encoding="utf-8")
    opened = tmp_path / "opened"
    argv_open = ["--public-key", str(key), "--identity", str(identity), "--out", str(opened)]
    assert run(["extract", "open", str(bundle), *argv_open, "--proof", str(proof)]) == 0
    assert (opened / "data.csv").read_text(encoding="utf-8").count("\n") == release.rows_out + 1

    # a proof that is not a proof, or a proof under another key, is refused
    junk = tmp_path / "junk.tlog-proof"
    junk.write_text("not a proof\n", encoding="utf-8")
    capsys.readouterr()
    assert run([*verify, "--proof", str(junk)]) == 1
    assert "not a proof bundle" in capsys.readouterr().err
    other_key = tmp_path / "other.pub"
    other_key.write_text("00" * 32, encoding="utf-8")
    assert run([*verify, "--proof", str(proof), "--log-key", str(other_key)]) == 1
    assert "integrity check failed" in capsys.readouterr().err

    # the end of the project: its rows can no longer be read, so nothing more is released
    assert run(["extract", "shred", "--agreement", AGREEMENT, "--yes"]) == 0
    assert "destroyed the keys of research project" in capsys.readouterr().out
    assert run(["extract", "run", "--agreement", AGREEMENT, "--declare-use", "non-commercial"]) == 1
    assert "destroyed" in capsys.readouterr().err
