"""The authorization matrix: every operation x every role x participant, outsider, other RIEC.

Generated from ``/openapi.json``: every operation must have a scenario in
``tests/authz/scenarios.py``. A caller the scenario does not allow must not get a 2xx;
a caller it requires must get one (the requests are valid, so a refusal there means the
table or the code is wrong). Read-only scenarios share one world; each scenario that
changes state gets its own, and tries the refused callers before the allowed ones.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.authz.scenarios import CALLERS, SCENARIOS, Scenario, World, build_world
from tests.conftest import Gateway

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])


def _call(world: World, scenario: Scenario, caller: str) -> tuple[int, Any]:
    headers = world.headers(caller)
    if scenario.headers is not None:
        headers.update(scenario.headers(world, caller))
    body = scenario.body(world, caller)
    response = world.gateway.client.request(
        scenario.method,
        scenario.target(world),
        headers=headers,
        json=body,
    )
    try:
        payload = response.json()
    except ValueError:
        payload = None
    return response.status_code, payload


def _judge(world: World, scenario: Scenario, caller: str) -> str | None:
    status, payload = _call(world, scenario, caller)
    label = f"{scenario.method} {scenario.target(world)} as {caller}"
    if 200 <= status < 300:
        if caller not in scenario.allowed and caller not in scenario.maybe:
            return f"{label}: unexpected {status}"
        if scenario.check is not None:
            problem = scenario.check(world, caller, payload)
            if problem:
                return f"{label}: {problem}"
        return None
    if status >= 500:
        return f"{label}: server error {status}"
    if caller in scenario.allowed:
        detail = payload.get("detail") if isinstance(payload, dict) else payload
        return f"{label}: expected a 2xx, got {status} ({detail})"
    return None


def _order(scenario: Scenario) -> list[str]:
    """Refused callers first, so that an allowed change does not hide a refusal."""
    allowed = [c for c in CALLERS if c in scenario.allowed]
    maybe = [c for c in CALLERS if c in scenario.maybe and c not in scenario.allowed]
    refused = [c for c in CALLERS if c not in scenario.allowed and c not in scenario.maybe]
    return refused + maybe + allowed


def test_every_operation_of_the_openapi_document_has_a_scenario(gateway: Gateway) -> None:
    spec = gateway.client.get("/openapi.json").json()
    operations = {
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    }
    covered = {s.op for s in SCENARIOS}
    assert operations - covered == set(), "operations without an authorization scenario"
    assert covered - operations == set(), "scenarios for operations that do not exist"


def test_read_only_operations_answer_only_those_entitled(gateway: Gateway) -> None:
    world = build_world(gateway)
    problems = [
        problem
        for scenario in SCENARIOS
        if not scenario.mutates
        for caller in _order(scenario)
        if (problem := _judge(world, scenario, caller))
    ]
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize(
    "scenario",
    [s for s in SCENARIOS if s.mutates],
    ids=lambda s: f"{s.method} {s.url or s.path}",
)
def test_changes_are_made_only_by_those_entitled(gateway: Gateway, scenario: Scenario) -> None:
    world = build_world(gateway)
    problems = [
        problem for caller in _order(scenario) if (problem := _judge(world, scenario, caller))
    ]
    assert problems == [], "\n".join(problems)
