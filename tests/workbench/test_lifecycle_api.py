"""The policy lifecycle through the HTTP API, on SQLite and PostgreSQL: versions, proposals,
lint, diff, simulation, four-eyes approval, rejection, staleness and rollback."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import col, select

from gateway.models.audit import AuditEntry
from gateway.models.policy_versions import PolicyActive
from tests.conftest import Gateway
from tests.workbench.helpers import (
    FLIPPING,
    GEMEENTE_ANALYST,
    GEMEENTE_PO,
    OFFICER_A,
    OFFICER_B,
    RULES_30,
    add_officer,
    app_ctx,
    record_decisions,
    second_token,
    shipped,
    widened_rules,
)


@pytest.fixture
def officer_b(gateway: Gateway) -> dict[str, str]:
    """Headers of a second RIEC privacy officer."""
    return {"Authorization": f"Bearer {add_officer(gateway.database, gateway.clock)}"}


def propose(gateway: Gateway, files: dict[str, Any], title: str = "Widen step 5") -> Any:
    return gateway.client.post(
        "/v1/policies/proposals",
        json={"title": title, "description": "why", "files": files},
        headers=gateway.auth(OFFICER_A),
    )


def decide(gateway: Gateway, proposal_id: int, headers: dict[str, str], verb: str) -> Any:
    return gateway.client.post(
        f"/v1/policies/proposals/{proposal_id}/{verb}", json={"note": "ok"}, headers=headers
    )


def ask_flipping(gateway: Gateway) -> dict[str, Any]:
    response = gateway.client.post(
        "/access/v1/evaluation", json=FLIPPING, headers=gateway.auth(GEMEENTE_ANALYST)
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def first_version(gateway: Gateway) -> int:
    """Return the id of the imported version (ids are not reset between PostgreSQL tests)."""
    response = gateway.client.get("/v1/policies/active", headers=gateway.auth(OFFICER_A))
    version_id: int = response.json()["version"]["id"]
    return version_id


def audit_types(gateway: Gateway) -> list[str]:
    with gateway.database.read() as session:
        return list(
            session.exec(select(AuditEntry.event_type).order_by(col(AuditEntry.leaf_index))).all()
        )


def test_the_pack_on_disk_is_the_first_active_version(gateway: Gateway) -> None:
    response = gateway.client.get("/v1/policies/active", headers=gateway.auth("nla.partner-system"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["version"]["state"] == "active"
    assert body["version"]["origin"] == "import"
    assert body["version"]["policy_version"] == app_ctx(gateway.client).policy.version
    assert "vocabulary.yaml" in body["version"]["files"] and RULES_30 in body["version"]["files"]
    rule = next(r for r in body["rules"] if r["id"] == "fiscaal-alleen-43c")
    assert rule["effect"] == "deny" and "43c" in rule["source"] and rule["reason"]
    assert rule["file"] == "rules/00-guardrails.yaml" and rule["line"] > 1
    assert "policy:version:create" in audit_types(gateway)
    assert "policy:version:activate" in audit_types(gateway)


def test_only_privacy_officers_see_versions_and_propose(gateway: Gateway) -> None:
    analyst = gateway.auth(GEMEENTE_ANALYST)
    assert gateway.client.get("/v1/policies/versions", headers=analyst).status_code == 403
    response = gateway.client.post(
        "/v1/policies/proposals",
        json={"title": "x", "files": {RULES_30: widened_rules()}},
        headers=analyst,
    )
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert gateway.client.get("/v1/policies/active").status_code == 401
    versions = gateway.client.get("/v1/policies/versions", headers=gateway.auth(GEMEENTE_PO))
    assert [v["id"] for v in versions.json()] == [first_version(gateway)]


def test_propose_simulate_four_eyes_approve_and_decide_differently(
    gateway: Gateway, officer_b: dict[str, str]
) -> None:
    v1 = first_version(gateway)
    record_decisions(gateway.client, gateway.auth(GEMEENTE_ANALYST), flipping=2)
    before = ask_flipping(gateway)  # a third recorded flipping request
    assert before["decision"] is False and before["context"]["rule_id"] == "default-deny"

    created = propose(gateway, {RULES_30: widened_rules()})
    assert created.status_code == 201, created.text
    proposal = created.json()
    assert proposal["status"] == "open" and proposal["changed_files"] == [RULES_30]
    assert proposal["lint"]["compiles"] is True and proposal["lint"]["rules"] > 40
    [change] = proposal["diff"]["rules"]
    assert change["rule_id"] == "bestuurlijke-interventie" and change["change"] == "changed"
    assert change["fields"] == [
        {
            "field": "when.category",
            "before": ["police-incident", "kmar-observation", "om-case"],
            "after": ["police-incident", "kmar-observation", "om-case", "labour-inspection"],
        }
    ]
    [file_diff] = proposal["diff"]["files"]
    assert file_diff["path"] == RULES_30 and file_diff["added_lines"] == 1
    assert (
        "+      " + "category: [police-incident, kmar-observation, om-case, labour-inspection]"
        in (file_diff["unified"])
    )
    assert proposal["may_approve"] is False
    assert proposal["approve_refusal"]["type"].endswith(":four-eyes-violation")

    pid = proposal["id"]
    simulation = gateway.client.get(
        f"/v1/policies/proposals/{pid}/simulation",
        params={"since": "2026-11-01T00:00:00Z", "until": "2026-12-01T00:00:00Z"},
        headers=officer_b,
    )
    assert simulation.status_code == 200, simulation.text
    sim = simulation.json()
    assert sim["replayed"] == 6
    assert sim["flip_count"] == 3
    assert sim["counts"] == {"allow->deny": 0, "deny->allow": 3, "obligations-changed": 0}
    assert sim["by_partner"] == {"gemeente-smallingerland": {"deny->allow": 3}}
    assert sim["by_step"] == {"5": {"deny->allow": 3}}
    assert sim["by_rule"] == {"default-deny -> bestuurlijke-interventie": {"deny->allow": 3}}
    assert {f["category"] for f in sim["flips"]} == {"labour-inspection"}
    assert sim["flips"][0]["after"]["obligations"] == [{"kind": "summary-only"}]

    own = decide(gateway, pid, gateway.auth(OFFICER_A), "approve")
    assert own.status_code == 403 and own.json()["type"].endswith(":four-eyes-violation")
    other_token = {
        "Authorization": f"Bearer {second_token(gateway.database, gateway.clock, OFFICER_A)}"
    }
    again = decide(gateway, pid, other_token, "approve")
    assert again.status_code == 403 and again.json()["type"].endswith(":four-eyes-violation")
    gemeente = decide(gateway, pid, gateway.auth(GEMEENTE_PO), "approve")
    assert gemeente.status_code == 403 and gemeente.json()["type"].endswith(":not-an-approver")
    assert ask_flipping(gateway)["decision"] is False

    approved = decide(gateway, pid, officer_b, "approve")
    assert approved.status_code == 200, approved.text
    version = approved.json()
    v2 = version["id"]
    assert v2 > v1 and version["state"] == "active" and version["origin"] == "proposal"
    after = ask_flipping(gateway)
    assert after["decision"] is True
    assert after["context"]["rule_id"] == "bestuurlijke-interventie"
    assert after["context"]["obligations"] == [{"kind": "summary-only"}]
    assert after["context"]["policy_version"] == version["policy_version"]
    assert after["context"]["policy_version"] != before["context"]["policy_version"]

    listed = gateway.client.get("/v1/policies/versions", headers=officer_b).json()
    assert [(v["id"], v["state"]) for v in listed] == [(v2, "active"), (v1, "retired")]
    read = gateway.client.get(f"/v1/policies/proposals/{pid}", headers=officer_b).json()
    assert read["status"] == "approved" and read["decided_by_principal_id"] == OFFICER_B
    assert read["result_version_id"] == v2 and read["diff"]["rules"] == []
    repeat = decide(gateway, pid, officer_b, "approve")
    assert repeat.status_code == 409 and repeat.json()["type"].endswith(":proposal-not-open")
    types = audit_types(gateway)
    for event in ("policy:proposal:create", "policy:proposal:approve", "policy:version:create"):
        assert event in types
    assert types.count("policy:version:activate") == 2


def test_a_proposal_that_does_not_compile_is_refused_with_file_and_line(gateway: Gateway) -> None:
    broken = widened_rules().replace("labour-inspection]", "labour-inspectie]")
    response = propose(gateway, {RULES_30: broken})
    assert response.status_code == 422
    body = response.json()
    assert body["type"].endswith(":proposal-not-compilable")
    [problem] = body["problems"]
    line = next(n for n, t in enumerate(broken.splitlines(), 1) if "labour-inspectie" in t)
    assert problem == {
        "file": RULES_30,
        "line": line,
        "message": problem["message"],
    }
    assert "unknown category 'labour-inspectie'" in problem["message"]
    assert body["lint"] == [f"{RULES_30}:{line}: {problem['message']}"]
    listed = gateway.client.get("/v1/policies/proposals", headers=gateway.auth(OFFICER_A))
    assert listed.json() == []


def test_lint_without_storing_and_refusals_of_pointless_or_forbidden_changes(
    gateway: Gateway,
) -> None:
    officer = gateway.auth(OFFICER_A)
    lint = gateway.client.post(
        "/v1/policies/lint", json={"files": {RULES_30: widened_rules()}}, headers=officer
    )
    assert lint.status_code == 200 and lint.json()["compiles"] is True
    unchanged = propose(gateway, {RULES_30: shipped(RULES_30)})
    assert unchanged.status_code == 422
    assert unchanged.json()["type"].endswith(":proposal-unchanged")
    vocabulary = propose(gateway, {"vocabulary.yaml": shipped("vocabulary.yaml") + "\n"})
    assert vocabulary.status_code == 422
    assert vocabulary.json()["type"].endswith(":invalid-input")
    escape = propose(gateway, {"rules/../model.conf": "x"})
    assert escape.status_code == 422
    assert gateway.client.get("/v1/policies/proposals", headers=officer).json() == []


def test_table_mismatches_are_shown_not_blocking(gateway: Gateway) -> None:
    text = shipped(RULES_30).replace(
        "      category: [police-incident, kmar-observation, om-case]\n      relation: other\n"
        "    obligations: [summary-only]",
        "      category: [police-incident, kmar-observation, om-case]\n      relation: other\n"
        "    obligations: [remove-free-text]",
    )
    response = propose(gateway, {RULES_30: text})
    assert response.status_code == 201, response.text
    failures = response.json()["lint"]["table_failures"]
    assert failures and all(f.startswith("tests/") for f in failures)
    assert any("summary-only" in f for f in failures)


def test_rejection_and_who_may_reject(gateway: Gateway, officer_b: dict[str, str]) -> None:
    pid = propose(gateway, {RULES_30: widened_rules()}).json()["id"]
    own = decide(gateway, pid, gateway.auth(OFFICER_A), "reject")
    assert own.status_code == 403 and own.json()["type"].endswith(":four-eyes-violation")
    rejected = decide(gateway, pid, officer_b, "reject")
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    again = decide(gateway, pid, officer_b, "approve")
    assert again.status_code == 409 and again.json()["type"].endswith(":proposal-not-open")
    assert "policy:proposal:reject" in audit_types(gateway)
    assert ask_flipping(gateway)["decision"] is False


def test_a_proposal_made_on_an_older_version_cannot_be_approved(
    gateway: Gateway, officer_b: dict[str, str]
) -> None:
    first = propose(gateway, {RULES_30: widened_rules()}).json()["id"]
    other_text = shipped(RULES_30).replace('step: "6"', 'step: "6"  # evaluatie', 1)
    second = propose(gateway, {RULES_30: other_text}, title="Comment").json()["id"]
    assert decide(gateway, first, officer_b, "approve").status_code == 200
    stale = decide(gateway, second, officer_b, "approve")
    assert stale.status_code == 409 and stale.json()["type"].endswith(":proposal-stale")
    read = gateway.client.get(f"/v1/policies/proposals/{second}", headers=officer_b).json()
    assert read["stale"] is True and read["may_approve"] is False and read["may_reject"] is True
    assert decide(gateway, second, officer_b, "reject").status_code == 200


def test_rollback_goes_through_a_proposal_and_reactivates_the_earlier_version(
    gateway: Gateway, officer_b: dict[str, str]
) -> None:
    v1 = first_version(gateway)
    record_decisions(gateway.client, gateway.auth(GEMEENTE_ANALYST), flipping=1)
    pid = propose(gateway, {RULES_30: widened_rules()}).json()["id"]
    approved_change = decide(gateway, pid, officer_b, "approve")
    assert approved_change.status_code == 200
    v2 = approved_change.json()["id"]
    assert ask_flipping(gateway)["decision"] is True

    same = gateway.client.post(
        f"/v1/policies/versions/{v2}/rollback", json={}, headers=gateway.auth(OFFICER_A)
    )
    assert same.status_code == 409 and same.json()["type"].endswith(":version-already-active")
    created = gateway.client.post(
        f"/v1/policies/versions/{v1}/rollback",
        json={"description": "the change was premature"},
        headers=gateway.auth(OFFICER_A),
    )
    assert created.status_code == 201, created.text
    rollback = created.json()
    assert rollback["kind"] == "rollback" and rollback["rollback_to_version_id"] == v1
    assert rollback["changed_files"] == [RULES_30]
    sim = gateway.client.get(
        f"/v1/policies/proposals/{rollback['id']}/simulation",
        params={"since": "2026-11-01T00:00:00Z", "until": "2026-12-01T00:00:00Z"},
        headers=officer_b,
    ).json()
    assert sim["counts"]["allow->deny"] == 2  # the recorded one and the check above
    own = decide(gateway, rollback["id"], gateway.auth(OFFICER_A), "approve")
    assert own.status_code == 403
    approved = decide(gateway, rollback["id"], officer_b, "approve")
    assert approved.status_code == 200, approved.text
    assert approved.json()["id"] == v1  # the earlier version itself, not a copy
    assert ask_flipping(gateway)["decision"] is False
    listed = gateway.client.get("/v1/policies/versions", headers=officer_b).json()
    assert [(v["id"], v["state"]) for v in listed] == [(v2, "retired"), (v1, "active")]
    with gateway.database.read() as session:
        pointer = session.get(PolicyActive, 1)
        assert pointer is not None and pointer.version_id == v1 and pointer.generation == 3


def test_simulation_period_is_checked(gateway: Gateway) -> None:
    pid = propose(gateway, {RULES_30: widened_rules()}).json()["id"]
    url = f"/v1/policies/proposals/{pid}/simulation"
    officer = gateway.auth(OFFICER_A)
    backwards = gateway.client.get(
        url,
        params={"since": "2026-12-01T00:00:00Z", "until": "2026-11-01T00:00:00Z"},
        headers=officer,
    )
    assert backwards.status_code == 422
    too_long = gateway.client.get(
        url,
        params={"since": "2024-01-01T00:00:00Z", "until": "2026-11-01T00:00:00Z"},
        headers=officer,
    )
    assert too_long.status_code == 422
    default = gateway.client.get(url, headers=officer)
    assert default.status_code == 200 and default.json()["replayed"] == 0
    missing = gateway.client.get("/v1/policies/proposals/999", headers=officer)
    assert missing.status_code == 404
