"""DUO conditions over HTTP: a release request declares its use, a refusal is problem+json
naming the DUO term, and the agreement shows which terms the gateway enforces."""

from __future__ import annotations

from gateway.audit.events import AuditEventType
from tests.helpers.problems import assert_problem
from tests.helpers.research import AGREEMENT, NSCR
from tests.research_api.conftest import Study


def test_a_release_request_must_declare_non_commercial_use(study: Study) -> None:
    for declared in ((), ("not-for-profit",)):
        problem = assert_problem(
            study.release(NSCR, declared_use=declared), 409, "duo-condition-not-met"
        )
        assert problem["duo"] == "DUO:0000046" and problem["shorthand"] == "NCU"
        assert "non-commercial" in problem["detail"]
    # declared, the request passes the DUO checks and meets the next one: no consent yet
    assert_problem(study.release(NSCR), 409, "no-consenting-provider")
    bad = study.call(
        NSCR,
        "POST",
        f"/v1/research/agreements/{AGREEMENT}/releases",
        json={"declared_use": ["commercial"]},
    )
    assert_problem(bad, 422, "validation-failed")
    page = study.ok(NSCR, "GET", "/v1/audit/entries?limit=500")
    duo = [
        e["leaf"]["refs"]
        for e in page["entries"]
        if e["leaf"]["type"] == AuditEventType.ACCESS_REFUSE and e["leaf"]["refs"].get("duo")
    ]
    assert [refs["refusal"] for refs in duo] == ["duo-condition-not-met"] * 2


def test_the_agreement_says_which_duo_terms_are_enforced(study: Study) -> None:
    agreement = study.ok(NSCR, "GET", f"/v1/research/agreements/{AGREEMENT}")
    enforcement = {c["shorthand"]: c["enforcement"] for c in agreement["conditions"]}
    assert enforcement["TS"] == enforcement["NCU"] == enforcement["IRB"] == "enforced"
    assert enforcement["MOR"] == enforcement["GRU"] == "attested, not enforced"
    irb = next(c for c in agreement["conditions"] if c["shorthand"] == "IRB")
    assert irb["reference"] == "ECR-NSCR-2025-031"
