"""A research release's audit proof carries the witness cosignatures ``extract verify`` demands."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from gateway.audit.cosignature import CosignerKey
from gateway.cli import run
from gateway.keys.signing import Ed25519Signer
from gateway.models.research import ResearchRelease
from tests.research_api.conftest import (  # noqa: F401  (fixtures)
    AGREEMENT,
    Study,
    identities,
    settings,
    study,
    synthetic_rows,
)
from tests.witness.conftest import WitnessProcess, init_witness


def test_extract_verify_checks_the_witness_quorum_on_the_release_proof(
    study: Study,  # noqa: F811
    synthetic_rows: list[dict[str, Any]],  # noqa: F811
    signer: Ed25519Signer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    gw_settings = study.gw.settings
    folder = tmp_path / "witness"
    name = "witness.politie.test/riec"
    key = init_witness(folder, name, signer, capsys, origin=gw_settings.log_origin)
    witness = WitnessProcess(folder, key)
    witness.start()
    try:
        for var in list(os.environ):
            if var.startswith("GATEWAY_"):
                monkeypatch.delenv(var)
        monkeypatch.setenv("GATEWAY_DATABASE_URL", str(gw_settings.database_url))
        monkeypatch.setenv("GATEWAY_DATA_DIR", str(gw_settings.data_dir))
        monkeypatch.setenv("GATEWAY_KEYS_DIR", str(gw_settings.keys_dir))
        monkeypatch.setenv("GATEWAY_POLICIES_DIR", str(gw_settings.policies_dir))
        monkeypatch.setenv("GATEWAY_RELEASES_DIR", str(gw_settings.resolved_releases_dir))
        monkeypatch.setenv("GATEWAY_WITNESSES", json.dumps([witness.setting]))
        study.consent_all()
        study.submit_synthetic(synthetic_rows)
        study.enrol_all()  # releases go only to confirmed researcher keys
        out = tmp_path / "handover"
        argv = ["extract", "run", "--agreement", AGREEMENT, "--declare-use", "non-commercial"]
        assert run([*argv, "--out", str(out)]) == 0
        with study.gw.database.read() as session:
            release = session.exec(select(ResearchRelease)).one()
        bundle, proof = out / release.bundle_name, out / f"{release.id}.tlog-proof"
        verify = [
            "extract",
            "verify",
            str(bundle),
            "--public-key",
            str(out / "gateway-signing-key.pub"),
        ]
        capsys.readouterr()
        assert run([*verify, "--proof", str(proof), "--witness", key.vkey()]) == 0
        assert f"audit log: cosigned by {name}" in capsys.readouterr().out
        stranger = CosignerKey("witness.stranger.test/x", Ed25519Signer.generate().public_key)
        assert run([*verify, "--proof", str(proof), "--witness", stranger.vkey()]) == 1
        assert "lacks a quorum" in capsys.readouterr().err
        assert run([*verify, "--witness", key.vkey()]) == 1
        assert "--witness needs --proof" in capsys.readouterr().err
    finally:
        witness.stop()
