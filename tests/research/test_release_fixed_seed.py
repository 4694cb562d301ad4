"""A release with a fixed shuffle seed and key is byte for byte what it was.

The extract's memory and speed work changes how a release is computed, never what it
contains: the decrypted CSV bytes, the Parquet file's values and the manifest's figures
(counts, disclosure check, risk, generalisation) of three fixed-seed releases are
compared with the known answers in ``vectors/release_fixed_seed.json``, recorded from
the release code as it stood before that work. A mismatch names the release and part.

To record the vectors again after an intended change of the output, run this module
as a script (``.venv/bin/python -m tests.research.test_release_fixed_seed``) and say
why in the commit.
"""

from __future__ import annotations

import hashlib
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from pyrage import x25519

from gateway.demo_data import STUDY_EVENTS
from gateway.keys.signing import Ed25519Signer
from gateway.research import extract_output, synthetic
from gateway.research.agreements import (
    Agreement,
    AgreementVocabulary,
    Withdrawal,
    WithdrawalScope,
    load_agreement,
)
from gateway.research.bundle import open_bundle
from gateway.research.extract import ExtractRequest
from gateway.research.release_builder import make_release
from tests.conftest import POLICIES
from tests.research.doubles import HmacPseudonymiser

VECTORS = Path(__file__).parent / "vectors" / "release_fixed_seed.json"
EXAMPLE = POLICIES / "agreements" / "jeugdnetwerken-noord-nederland.yaml"
ROWS = 6_000
RELEASE_AT = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
SEED = bytes(range(32))
SECRET = b"fixed-seed release test secret!!"
FIGURES = ("counts", "disclosure", "generalisation")
"""The manifest's sections that say what was released (not keys, files or signature)."""


def _rows() -> list[dict[str, Any]]:
    start, end = STUDY_EVENTS
    return list(synthetic.rows(ROWS, seed=2026, start=start, end=end))


def _respondents(rows: list[dict[str, Any]], count: int) -> frozenset[str]:
    """The first ``count`` respondent ids of the rows (a fixed choice)."""
    found = list(dict.fromkeys(r["respondent_id"] for r in rows if r.get("respondent_id")))
    return frozenset(found[:count])


def _case(name: str, folder: Path, identity: x25519.Identity) -> dict[str, Any]:
    """Make the release ``name`` in ``folder`` and return its fingerprint."""
    vocabulary = AgreementVocabulary.from_policies(POLICIES)
    agreement: Agreement = load_agreement(EXAMPLE, vocabulary)
    agreement = agreement.with_recipients([str(identity.to_public())] * len(agreement.researchers))
    rows = _rows()
    withdrawn: frozenset[str] = frozenset()
    if name == "questionnaire-rows-withdrawn":
        agreement = agreement.model_copy(
            update={"withdrawal": Withdrawal(removes=WithdrawalScope.QUESTIONNAIRE_ROWS)}
        )
        withdrawn = _respondents(rows, 3)
    elif name == "persons-withdrawn":
        withdrawn = _respondents(rows, 3)
    request = ExtractRequest(
        agreement=agreement,
        release_id=name,
        at=RELEASE_AT,
        policy_version="policy-fixed-1",
        consenting_providers=agreement.provider_ids,
        withdrawn_respondents=withdrawn,
        shuffle_seed=SEED,
    )
    signer = Ed25519Signer.generate()
    release = make_release(
        request,
        iter(rows),
        pseudonymiser=HmacPseudonymiser(agreement.project, SECRET, "test-fixed"),
        signer=signer,
        out_dir=folder / "out",
    )
    opened = folder / f"opened-{name}"
    open_bundle(release.bundle, signer.public_key, [identity], opened)
    table = pq.read_table(opened / "data.parquet")
    values = json.dumps(
        {"schema": str(table.schema), "rows": table.to_pylist()}, sort_keys=True
    ).encode()
    return {
        "csv_sha256": hashlib.sha256((opened / "data.csv").read_bytes()).hexdigest(),
        "parquet_values_sha256": hashlib.sha256(values).hexdigest(),
        **{part: release.manifest[part] for part in FIGURES},
    }


CASES = ("synthetic", "persons-withdrawn", "questionnaire-rows-withdrawn")
"""The releases compared; the last two re-draw pseudonyms after withdrawals."""
SMALL_BUCKETS = "synthetic-small-buckets"
"""The first case again with spill buckets re-scattered (as in a release of millions)."""


@pytest.mark.parametrize("name", [*CASES, SMALL_BUCKETS])
def test_a_fixed_seed_release_is_what_it_was(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = json.loads(VECTORS.read_text(encoding="utf-8"))[name]
    identity = x25519.Identity.generate()
    if name == SMALL_BUCKETS:
        monkeypatch.setattr(extract_output, "BUCKET_BYTES", 24 << 10)
        case = _case("synthetic", tmp_path, identity)
    else:
        case = _case(name, tmp_path, identity)
    for part, value in expected.items():
        assert case[part] == value, f"{name}: {part} differs"


def record(path: Path = VECTORS) -> None:
    """Write the fingerprints of every case to ``path`` (run only for an intended change)."""
    import tempfile

    identity = x25519.Identity.generate()
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in CASES:
            out[name] = _case(name, Path(tmp) / name, identity)
        original = extract_output.BUCKET_BYTES
        extract_output.BUCKET_BYTES = 24 << 10
        try:
            out[SMALL_BUCKETS] = _case("synthetic", Path(tmp) / SMALL_BUCKETS, identity)
        finally:
            extract_output.BUCKET_BYTES = original
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    record()
    sys.exit(0)
