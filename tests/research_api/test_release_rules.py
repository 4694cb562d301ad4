"""When a release is refused, who may ask for one, and the end of a project.

Refused clearly: without a consenting provider, with too much suppression, outside the
agreement's period (see the walk), by anyone but the agreement's researchers or a RIEC
privacy officer it names. A refused release leaves no bundle and no record. Shredding a
project makes its stored rows unreadable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import func, select

from gateway.app import create_app
from gateway.identity import service as identity
from gateway.identity.service import CLI_ACTOR
from gateway.models.policy import PolicyDecisionRecord
from gateway.models.research import ResearchRelease
from gateway.preflight import PreflightError
from gateway.research.service import Research
from gateway.research.service import release as release_module
from tests.api.test_auth import assert_problem
from tests.helpers.research import (
    AGREEMENT,
    HHS,
    NSCR,
    POLICE_ROW,
    POLITIE,
    PROVIDERS,
    officer,
    system,
    write_policies,
)
from tests.research_api.conftest import Study


def _bundles(study: Study) -> list[str]:
    folder = study.gw.settings.resolved_releases_dir
    return sorted(p.name for p in folder.rglob("*.tar")) if folder.exists() else []


def _releases(study: Study) -> int:
    with study.gw.database.read() as session:
        return int(session.exec(select(func.count()).select_from(ResearchRelease)).one())


def test_without_a_consenting_provider_nothing_is_released(
    study: Study, synthetic_rows: list[dict[str, Any]]
) -> None:
    study.submit_synthetic(synthetic_rows)
    problem = assert_problem(study.release(NSCR), 409, "no-consenting-provider")
    assert "consent" in problem["detail"]
    study.consent(POLITIE, "refuse")
    study.consent("voorbeeldbank")
    study.consent("voorbeeldbank", "revoke")
    assert_problem(study.release(HHS), 409, "no-consenting-provider")
    assert _bundles(study) == [] and _releases(study) == 0
    # the policy was asked for every receiving partner and every provider, and said no
    with study.gw.database.read() as session:
        refused = session.exec(
            select(PolicyDecisionRecord).where(
                PolicyDecisionRecord.action == "research:extract:release"
            )
        ).all()
    assert refused and not any(d.allowed for d in refused)
    assert {d.rule_id for d in refused} == {"verder-verstrekken-zonder-toestemming"}
    assert {d.partner_id for d in refused} == {"nscr", "haagse-hogeschool"}

    # with one provider's consent, only that provider's rows go
    study.consent(POLITIE)
    release = study.released()
    assert release["consenting_providers"] == [POLITIE]
    opened = study.open(release["id"])
    assert opened.pseudonyms("provider") == {POLITIE}
    assert opened.manifest["providers"]["in_scope"] == sorted(PROVIDERS)


def test_too_much_suppression_is_refused(study: Study) -> None:
    study.consent(POLITIE)
    # nine people, each alone in their age band and municipality: no class reaches k
    born = ("2015", "2012", "2009", "2006", "2000", "1990", "1980", "1970", "1955")
    places = ("8911 AB", "9711 AB", "9201 AB", "8441 AB", "9401 AB", "8601 AB", "9101 AB",
              "9601 AB", "9931 AB")  # fmt: skip
    rows = [
        {**POLICE_ROW, "name": f"Persoon {i}", "birth_date": f"{year}-01-01", "postcode": place}
        for i, (year, place) in enumerate(zip(born, places, strict=True))
    ]
    for row in rows:
        del row["bsn"]
    assert study.submit(system(POLITIE), "politie-incidenten", rows).status_code == 201
    problem = assert_problem(study.release(NSCR), 409, "disclosure-check-failed")
    assert "suppress" in problem["detail"]
    assert _bundles(study) == [] and _releases(study) == 0


def test_who_may_ask_for_a_release(study: Study, synthetic_rows: list[dict[str, Any]]) -> None:
    study.consent_all()
    study.submit_synthetic(synthetic_rows)
    for who in (
        officer(POLITIE),
        officer("nscr"),
        system(POLITIE),
        "riec-noord-nederland.riec-analyst",
        "riec-noord-nederland.operator",
    ):
        assert_problem(study.release(who), 403, "not-entitled")
    assert_problem(study.release(NSCR, "geen-studie"), 404, "not-found")
    # a RIEC privacy officer the agreement names releases to the agreement's researchers
    release = study.released(officer("riec-noord-nederland"))
    assert release["requested_by"] == officer("riec-noord-nederland")
    assert release["recipients"] == ["haagse-hogeschool", "nscr"]
    # and a release under an agreement whose researchers' partner is gone is refused
    with study.gw.database.write() as session:
        identity.revoke_partner(session, study.gw.clock, CLI_ACTOR, "haagse-hogeschool")
    assert_problem(study.release(NSCR), 409, "conflict")


def test_a_crash_inside_the_release_transaction_leaves_nothing(
    study: Study, synthetic_rows: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    study.consent_all()
    study.submit_synthetic(synthetic_rows)

    def crash(release_id: str) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(release_module, "before_commit", crash)
    response = study.release(NSCR)
    assert_problem(response, 500, "internal-error")
    assert _bundles(study) == [] and _releases(study) == 0
    monkeypatch.undo()
    first = study.released()
    assert _bundles(study) == [first["bundle_name"]] and _releases(study) == 1


def test_shredding_the_project_makes_its_rows_unreadable(study: Study) -> None:
    study.consent(POLITIE)
    assert study.submit(system(POLITIE), "politie-incidenten", [POLICE_ROW]).status_code == 201
    ctx = study.gw.client.app.state.ctx  # type: ignore[attr-defined]  # the running app's
    assert Research(ctx).shred_project(CLI_ACTOR, AGREEMENT) is True
    assert Research(ctx).shred_project(CLI_ACTOR, AGREEMENT) is False
    assert_problem(study.release(NSCR), 410, "key-shredded")
    response = study.submit(system(POLITIE), "politie-incidenten", [POLICE_ROW])
    assert_problem(response, 410, "key-shredded")


def test_agreements_are_public_to_every_principal(study: Study) -> None:
    for who in (system(POLITIE), NSCR, "riec-noord-nederland.operator"):
        listed = study.ok(who, "GET", "/v1/research/agreements")
        assert [a["id"] for a in listed] == [AGREEMENT, "jeugdnetwerken-verlopen"]
    agreement = study.ok(NSCR, "GET", f"/v1/research/agreements/{AGREEMENT}")
    assert agreement["k"] == 5 and agreement["quasi_identifiers"] == ["born", "area"]
    assert [r["recipient"] for r in agreement["researchers"]] == [
        str(i.to_public()) for i in study.identities
    ]
    assert {c["shorthand"] for c in agreement["conditions"]} >= {"PS", "TS", "NCU"}
    text = study.call(NSCR, "GET", f"/v1/research/agreements/{AGREEMENT}").text
    assert ("AGE-SECRET" + "-KEY-") not in text.upper()
    assert_problem(study.call(NSCR, "GET", "/v1/research/agreements/geen-studie"), 404, "not-found")
    assert study.gw.client.get("/v1/research/agreements").status_code == 401


def test_a_broken_agreement_stops_start_up_with_file_and_line(
    settings: Any, tmp_path: Path, identities: list[Any]
) -> None:
    policies = write_policies(tmp_path / "broken", identities)
    path = policies / "agreements" / f"{AGREEMENT}.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("k: 5", "k: 1"), encoding="utf-8")
    broken = type(settings)(**{**settings.model_dump(), "policies_dir": policies})
    with pytest.raises(PreflightError) as raised:
        create_app(broken)
    message = str(raised.value)
    assert "research agreements are not valid" in message
    assert f"{path}:" in message and "k must be at least 2" in message
    line = int(message.split(f"{path}:")[1].split(":")[0])
    assert path.read_text(encoding="utf-8").splitlines()[line - 1].strip() == "k: 1"
    with pytest.raises(PreflightError), TestClient(create_app(broken)):
        pass
