"""The shipped pack's tables of expected decisions run in the suite, one test per decision."""

from __future__ import annotations

import pytest

from gateway.policy import tables
from gateway.policy.engine import PolicyEngine
from tests.conftest import POLICIES

ENGINE = PolicyEngine.from_directory(POLICIES)
EXPECTED = tables.load_tables(POLICIES)


def test_the_tables_are_big_enough_and_deny_enough() -> None:
    denies = sum(1 for e in EXPECTED if not e.allowed)
    assert len(EXPECTED) >= 150
    assert denies * 3 >= len(EXPECTED)


@pytest.mark.parametrize(
    "expected", EXPECTED, ids=[f"{e.path.name}:{e.line}:{e.name}" for e in EXPECTED]
)
def test_expected_decision(expected: tables.ExpectedDecision) -> None:
    (outcome,) = tables.run(ENGINE, [expected])
    assert outcome.passed, outcome.describe()


def test_every_rule_of_the_pack_is_exercised_by_some_table() -> None:
    used = {o.actual.rule_id for o in tables.run(ENGINE, EXPECTED)}
    unused = {r.id for r in ENGINE.compiled.rules} - used
    assert unused == set()


def test_a_wrong_expectation_is_reported_with_file_line_and_diff() -> None:
    e = EXPECTED[0]
    wrong = tables.ExpectedDecision(
        e.path, e.line, e.name, e.request, not e.allowed, "some-other-rule", []
    )
    (outcome,) = tables.run(ENGINE, [wrong])
    assert not outcome.passed
    text = outcome.describe()
    assert text.startswith(f"{e.path}:{e.line}: {e.name}")
    assert "expected deny, got allow" in text or "expected allow, got deny" in text
    assert "expected rule some-other-rule" in text
