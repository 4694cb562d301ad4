"""The register of processing activities over HTTP and in the workbench, on SQLite and
PostgreSQL: read by partners, changed only through an approved proposal, and named (with
the version in force) by every line of the processing log."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import col, select

from gateway.audit.ldv import GATEWAY_NS as GATEWAY
from gateway.demo import RIEC
from gateway.models.audit import AuditEntry, AuditSubject
from gateway.policy.register import ACTIVITY_PREFIX, SUBJECT_EVENTS
from tests.conftest import Gateway
from tests.helpers.cases import POLICE_RECORD, go, start_case
from tests.helpers.problems import assert_problem
from tests.workbench.helpers import OFFICER_A, add_officer, shipped
from tests.workbench.test_web import Browser, browser, signed_in  # noqa: F401

REGISTER = "register.yaml"
POLICE_ACTIVITY = "casus-politiegegevens"
POLITIE = "politie-noord-nederland.partner-system"
BUMPED = (
    "    version: 1\n    name: Politiegegevens verstrekken, ontvangen en vernietigen in een casus",
    "    version: 2\n    name: Politiegegevens verstrekken, ontvangen en vernietigen (herzien)",
)
LOOKUP_BUMPED = (
    "    version: 1\n    name: Inzage in het verwerkingenlogboek",
    "    version: 3\n    name: Inzage in het verwerkingenlogboek",
)


@pytest.fixture
def officer_b(gateway: Gateway) -> dict[str, str]:
    """Headers of a second RIEC privacy officer."""
    return {"Authorization": f"Bearer {add_officer(gateway.database, gateway.clock)}"}


def get(gateway: Gateway, path: str, who: str = "nla.partner-system") -> Any:
    response = gateway.client.get(path, headers=gateway.auth(who))
    assert response.status_code == 200, response.text
    return response.json()


def propose_register(gateway: Gateway, text: str) -> Any:
    return gateway.client.post(
        "/v1/policies/proposals",
        json={"title": "Register herzien", "description": "art. 30", "files": {REGISTER: text}},
        headers=gateway.auth(OFFICER_A),
    )


def share(walk: Any, key: str) -> None:
    response = walk.share(POLITIE, POLICE_RECORD, key)
    assert response.status_code == 201, response.text


def lines(gateway: Gateway, name: str) -> list[dict[str, Any]]:
    body = {"identifiers": [{"type": "bsn", "value": "111 222 333"}]}
    response = gateway.client.post(
        "/v1/subjects/processing-log", json=body, headers=gateway.auth(OFFICER_A)
    )
    assert response.status_code == 200, response.text
    return [
        {
            "name": line["name"],
            "processing_activity_id": line["attributes"]["dpl.core.processing_activity_id"],
            **{
                key.removeprefix(GATEWAY): value
                for key, value in line["attributes"].items()
                if key.startswith(GATEWAY)
            },
        }
        for line in response.json()["lines"]
        if line["name"] == name
    ]


def test_every_partner_reads_the_register_in_force_and_operators_do_not(
    gateway: Gateway,
) -> None:
    index = get(gateway, "/v1/register/activities")
    ids = [a["id"] for a in index["activities"]]
    assert POLICE_ACTIVITY in ids and len(ids) == len(set(ids))
    active = get(gateway, "/v1/policies/active", OFFICER_A)["version"]
    assert index["policy_version_id"] == active["id"]
    one = get(gateway, f"/v1/register/activities/{POLICE_ACTIVITY}", "voorbeeldbank.partner-system")
    assert one["uri"] == ACTIVITY_PREFIX + POLICE_ACTIVITY and one["version"] == 1
    assert one["transfers"] == "none" and one["art6"] == [{"ground": "niet-avg", "dpv": None}]
    by_uri = get(gateway, f"/v1/register/activities/{ACTIVITY_PREFIX}{POLICE_ACTIVITY}")
    assert by_uri == one
    assert_problem(
        gateway.client.get("/v1/register/activities/bestaat-niet", headers=gateway.auth(OFFICER_A)),
        404,
        "processing-activity-not-found",
    )
    assert_problem(
        gateway.client.get(
            "/v1/register/activities", headers=gateway.auth("riec-noord-nederland.operator")
        ),
        403,
        "forbidden",
    )
    assert_problem(gateway.client.get("/v1/register/activities"), 401, "unauthenticated")


def test_a_register_change_goes_through_approval_and_lines_name_the_version_in_force(
    gateway: Gateway, officer_b: dict[str, str]
) -> None:
    walk = start_case(gateway)
    go(walk)
    share(walk, "incident-before")
    lines(gateway, "case:record:share")  # a lookup, itself logged, that names no policy version
    proposal = propose_register(gateway, shipped(REGISTER).replace(*BUMPED).replace(*LOOKUP_BUMPED))
    assert proposal.status_code == 201, proposal.text
    assert proposal.json()["changed_files"] == [REGISTER]
    # an open proposal changes nothing yet
    assert get(gateway, f"/v1/register/activities/{POLICE_ACTIVITY}")["version"] == 1
    approved = gateway.client.post(
        f"/v1/policies/proposals/{proposal.json()['id']}/approve",
        json={"note": "ok"},
        headers=officer_b,
    )
    assert approved.status_code == 200, approved.text
    after = get(gateway, f"/v1/register/activities/{POLICE_ACTIVITY}")
    assert after["version"] == 2 and after["name"].endswith("(herzien)")
    share(walk, "incident-after")
    before_line, after_line = lines(gateway, "case:record:share")
    assert before_line["processing_activity_id"] == ACTIVITY_PREFIX + POLICE_ACTIVITY
    assert after_line["processing_activity_id"] == ACTIVITY_PREFIX + POLICE_ACTIVITY
    assert before_line["processing_activity_version"] == 1
    assert after_line["processing_activity_version"] == 2
    assert after_line["processing_activity_name"].endswith("(herzien)")
    assert before_line["policy_version"] != after_line["policy_version"]
    # lookups name no policy version: theirs is the version activated last before them
    lookups = lines(gateway, "subject:processing-log:read")
    assert [line["processing_activity_version"] for line in lookups] == [1, 3]
    assert {line["processing_activity_id"] for line in lookups} == {
        ACTIVITY_PREFIX + "inzage-verwerkingenlogboek"
    }


def test_a_broken_register_is_refused_as_a_proposal_with_file_and_line(gateway: Gateway) -> None:
    text = shipped(REGISTER).replace("  transfers: none", "  transfers: [verenigde-staten]")
    response = propose_register(gateway, text)
    problem = assert_problem(response, 422, "proposal-not-compilable")
    assert any(
        p["file"] == REGISTER and p["line"] > 0 and "transfers" in p["message"]
        for p in problem["problems"]
    ), problem
    art89 = propose_register(
        gateway,
        shipped(REGISTER).replace("legal_bases: [wjsg-39f]", "legal_bases: [avg-89-uavg-24]"),
    )
    assert "not an art. 6 basis" in str(assert_problem(art89, 422, "proposal-not-compilable"))


def test_every_logged_processing_of_a_person_names_a_registered_activity(
    gateway: Gateway,
) -> None:
    walk = start_case(gateway)
    go(walk)
    share(walk, "incident-0001")
    walk.records(RIEC)
    lines = [
        line
        for key in ("111 222 333",)
        for line in gateway.client.post(
            "/v1/subjects/processing-log",
            json={
                "identifiers": [
                    {"type": "bsn", "value": key},
                    {"type": "name", "value": "Jesse de Vries"},
                ]
            },
            headers=gateway.auth(OFFICER_A),
        ).json()["lines"]
    ]
    assert lines
    registered = {a["id"] for a in get(gateway, "/v1/register/activities")["activities"]}
    for line in lines:
        attributes = line["attributes"]
        activity = attributes["dpl.core.processing_activity_id"].removeprefix(ACTIVITY_PREFIX)
        assert activity in registered, line["name"]
        assert attributes[GATEWAY + "processing_activity_version"] == 1
    with gateway.database.read() as session:
        kinds = set(
            session.exec(
                select(AuditEntry.event_type).join(
                    AuditSubject, col(AuditSubject.leaf_index) == col(AuditEntry.leaf_index)
                )
            ).all()
        )
    assert kinds and kinds <= {e.value for e in SUBJECT_EVENTS}


def test_the_workbench_shows_the_register(
    gateway: Gateway,
    browser: Browser,  # noqa: F811
) -> None:
    client = signed_in(browser, gateway.tokens[OFFICER_A])
    page = client.get("/workbench/register")
    assert page.status_code == 200
    section = page.text.split(f'id="activity-{POLICE_ACTIVITY}"')[1].split("</section>")[0]
    assert ACTIVITY_PREFIX + POLICE_ACTIVITY in section
    assert "wpg-20" in section and "Bewaartermijn" in section and "convenantpartners" in section
    assert 'href="/workbench/register"' in page.text
