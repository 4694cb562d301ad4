"""The youth-network study through the API: consents, intake, releases, downloads, proofs.

Providers consent and submit synthetic rows; a researcher asks for a release and opens
it; a provider revokes its consent and a respondent withdraws, and both disappear from
the next release, which keeps the generalisation of the first. Runs on SQLite and on
PostgreSQL (the ``gateway`` fixture).
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlmodel import func, select

from gateway import identifiers
from gateway.cli import run
from gateway.errors import InvalidInputError
from gateway.models.audit import AuditEntry
from gateway.models.research import ResearchGeneralisation, ResearchRelease
from gateway.research import synthetic
from tests.api.test_auth import assert_problem
from tests.research_api.conftest import (
    AGREEMENT,
    EXPIRED,
    HHS,
    NSCR,
    PROVIDERS,
    Study,
    officer,
    system,
)

POLITIE, BANK = "politie-noord-nederland", "voorbeeldbank"


def _bsn_owners(rows: list[dict[str, Any]]) -> dict[str, set[str]]:
    owners: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        if row.get("bsn") and row["provider"] in {POLITIE, BANK}:
            with contextlib.suppress(InvalidInputError):
                owners[identifiers.bsn(row["bsn"])].add(row["provider"])
    return owners


def _withdrawn_rows(
    study: Study, rows: list[dict[str, Any]], respondents: set[str], providers: set[str]
) -> int:
    """The stored rows of the people whose stored answers were withdrawn (synthetic truth)."""
    deliveries = synthetic.as_providers_deliver(study.agreement(), rows)
    stored = [(s.provider, r) for s in deliveries.submissions for r in s.rows]
    gone = {
        (r["name"].casefold(), r["birth_date"])
        for _, r in stored
        if r.get("respondent_id") in respondents
    }
    return sum(
        1
        for provider, r in stored
        if provider in providers and (r["name"].casefold(), r["birth_date"]) in gone
    )


def test_release_walk(study: Study, synthetic_rows: list[dict[str, Any]], tmp_path: Path) -> None:
    study.consent_all()
    stored = study.submit_synthetic(synthetic_rows)
    assert stored["politie-incidenten"] > 500 and stored["vragenlijst-jongeren"] > 50
    assert study.withdrawn, "the synthetic data has respondents who withdrew"

    # a release for the researchers: every provider consented, so every provider is in
    first = study.released(NSCR)
    assert first["consenting_providers"] == sorted(PROVIDERS)
    assert first["recipients"] == ["haagse-hogeschool", "nscr"]
    opened = study.open(first["id"])
    assert opened.manifest["providers"]["consenting"] == sorted(PROVIDERS)
    assert opened.manifest["pseudonymisation"]["computed"] == "on-intake"
    assert opened.manifest["release"]["id"] == first["id"]
    assert len(opened.rows) == first["rows_out"] > 0.9 * sum(stored.values())

    # the same person gets the same pseudonym from the police and the bank
    pseudonymise = study.pseudonymiser()
    both = [b for b, found in _bsn_owners(synthetic_rows).items() if found == {POLITIE, BANK}]
    assert len(both) > 10
    # (people sharing a class with a withdrawn respondent are re-drawn: still one
    # pseudonym per person, but not the BSN's; everybody else keeps the BSN's)
    direct = [pseudonymise("bsn", b) for b in both]
    direct = [p for p in direct if opened.pseudonyms("provider", person=p)]
    assert direct and all(
        {POLITIE, BANK} <= opened.pseudonyms("provider", person=p) for p in direct
    )
    providers: dict[str, set[str]] = {}
    for row in opened.rows:
        if row["person"]:
            providers.setdefault(row["person"], set()).add(row["provider"])
    linked = [p for p, found in providers.items() if {POLITIE, BANK} <= found]
    assert len(linked) > 0.8 * len(both)  # the rest fell into suppressed small classes

    # only the agreement's researchers download; the bundle is theirs alone
    study.download(first["id"], HHS)
    for who in (officer("nscr"), officer(POLITIE), system(POLITIE)):
        response = study.call(who, "GET", f"/v1/research/releases/{first['id']}/bundle")
        assert_problem(response, 403, "not-entitled")

    # the bank revokes; a respondent withdraws: both are gone from the next release
    study.consent(BANK, "revoke")
    questionnaire = [r for r in synthetic_rows if r["category"] == "questionnaire"]
    kept = [r for r in questionnaire if r["respondent_id"] not in study.withdrawn]
    answered = opened.pseudonyms("person_nb", category="questionnaire")

    def plain(row: dict[str, Any]) -> str:
        return str(
            pseudonymise(
                "name_birthdate", identifiers.name_birthdate(row["name"], row["birth_date"])
            )
        )

    # a respondent released under their plain pseudonym (not re-drawn: nobody in their
    # class withdrew before), so that the test can find them
    leaving = next(
        r
        for r in kept
        if r.get("parental_consent") is not False
        and r["birth_date"] < "2009"
        and plain(r) in answered
    )
    person_nb = plain(leaving)
    result = study.withdraw(leaving["respondent_id"])
    assert result["created"] is True and result["rows_excluded"] == 1
    assert study.withdraw(leaving["respondent_id"])["created"] is False

    study.gw.clock.advance(timedelta(days=7))
    second = study.released(HHS)
    assert BANK not in second["consenting_providers"]
    again = study.open(second["id"])
    assert again.manifest["providers"]["consenting"] == sorted(set(PROVIDERS) - {BANK})
    assert again.pseudonyms("provider") == set(opened.pseudonyms("provider")) - {BANK}
    bank_rows = stored["bank-money-mule-signalen"]
    assert again.manifest["counts"]["excluded"]["not-allowed-by-policy"] == bank_rows
    assert person_nb not in again.pseudonyms("person_nb", category="questionnaire")
    # a withdrawal removes the person: their answers and every other provider's rows
    assert person_nb not in again.pseudonyms("person_nb")
    before = set(study.withdrawn) - {leaving["respondent_id"]}
    assert opened.manifest["counts"]["excluded"]["respondent-withdrawn"] == _withdrawn_rows(
        study, synthetic_rows, before, set(PROVIDERS)
    )
    assert again.manifest["counts"]["excluded"]["respondent-withdrawn"] == _withdrawn_rows(
        study, synthetic_rows, {*before, leaving["respondent_id"]}, set(PROVIDERS) - {BANK}
    )

    # the second release reuses the generalisation the first one fixed
    assert second["generalisation_sha256"] == first["generalisation_sha256"]
    assert again.manifest["generalisation"] == opened.manifest["generalisation"]
    with study.gw.database.read() as session:
        assert session.exec(select(func.count()).select_from(ResearchGeneralisation)).one() == 1
        assert session.exec(select(func.count()).select_from(ResearchRelease)).one() == 2
        entry = session.get(AuditEntry, second["audit_index"])
    assert entry is not None and entry.event_type == "research:extract:release"
    assert second["manifest_sha256"] in entry.leaf

    # the researchers and the providers' privacy officers see the releases
    listed = study.ok(officer(BANK), "GET", f"/v1/research/releases?agreement={AGREEMENT}")
    assert [r["id"] for r in listed] == [second["id"], first["id"]]
    assert_problem(
        study.call(system(BANK), "GET", f"/v1/research/releases/{first['id']}"), 403, "not-entitled"
    )

    # the release and its audit proof verify offline; a tampered bundle does not
    bundle = study.download(second["id"])
    proof = tmp_path / "second.tlog-proof"
    proof.write_text(
        study.call(NSCR, "GET", f"/v1/research/releases/{second['id']}/proof").text,
        encoding="utf-8",
    )
    other_proof = tmp_path / "first.tlog-proof"
    other_proof.write_text(
        study.call(NSCR, "GET", f"/v1/research/releases/{first['id']}/proof").text,
        encoding="utf-8",
    )
    key = tmp_path / "gateway.pub"
    key.write_text(study.signing_key().hex(), encoding="utf-8")
    verify = ["extract", "verify", str(bundle), "--public-key", str(key)]
    assert run([*verify, "--proof", str(proof)]) == 0
    assert run([*verify, "--proof", str(other_proof)]) == 1  # the proof of another release
    data = bytearray(bundle.read_bytes())
    data[len(data) // 2] ^= 0x01  # inside an encrypted data file
    bundle.write_bytes(bytes(data))
    assert run([*verify, "--proof", str(proof)]) == 1

    # nothing is released under an agreement whose period ended
    assert_problem(study.release(NSCR, EXPIRED), 409, "agreement-not-in-effect")
