"""The step machine as a table: every allowed move and every refused one, with its reason."""

from __future__ import annotations

import pytest

from gateway.workflow.errors import TransitionNotAllowedError
from gateway.workflow.steps import OutputKind, Step, plan_transition

ALLOWED = [
    (1, 2, {OutputKind.SIGNAL}, None, False),
    (2, 3, {OutputKind.GO}, None, False),
    (3, 4, {OutputKind.ANALYSIS}, None, False),
    (4, 5, {OutputKind.ADVICE}, None, False),
    (5, 6, {OutputKind.RESULTS}, None, False),
    (6, 7, {OutputKind.EVALUATION}, None, True),
    (4, 3, set(), "politie heeft nieuwe informatie", False),
    (5, 3, set(), "nieuwe melding", False),
]

REFUSED = [
    (1, 3, {OutputKind.SIGNAL}, None, "steps cannot be skipped"),
    (2, 4, {OutputKind.GO}, None, "steps cannot be skipped"),
    (2, 3, set(), None, "has no go yet"),
    (2, 3, {OutputKind.NO_GO}, None, "no-go"),
    (3, 4, set(), None, "has no analysis yet"),
    (4, 5, {OutputKind.ANALYSIS}, None, "has no advice yet"),
    (5, 6, set(), None, "has no results yet"),
    (6, 7, set(), None, "has no evaluation yet"),
    (4, 3, set(), None, "needs a reason"),
    (4, 3, set(), "   ", "needs a reason"),
    (6, 3, set(), "x", "only from step 4 or 5"),
    (3, 2, set(), "x", "only from step 4 or 5"),
    (5, 4, set(), "x", "only from step 4 or 5"),
    (3, 3, {OutputKind.ANALYSIS}, None, "already at step 3"),
]


@pytest.mark.parametrize(("source", "target", "outputs", "reason", "closes"), ALLOWED)
def test_allowed_transitions(
    source: int, target: int, outputs: set[OutputKind], reason: str | None, closes: bool
) -> None:
    move = plan_transition(Step(source), Step(target), outputs, reason)
    assert (move.source, move.target, move.closes) == (source, target, closes)
    assert move.backward == (target < source)


@pytest.mark.parametrize(("source", "target", "outputs", "reason", "message"), REFUSED)
def test_refused_transitions_say_why(
    source: int, target: int, outputs: set[OutputKind], reason: str | None, message: str
) -> None:
    with pytest.raises(TransitionNotAllowedError, match=message):
        plan_transition(Step(source), Step(target), outputs, reason)


def test_a_closed_case_never_moves() -> None:
    with pytest.raises(TransitionNotAllowedError, match="closed"):
        plan_transition(Step.AFSLUITEN, Step.INFORMATIE_DELEN_ANALYSEREN, set(), "x", closed=True)


def test_steps_have_their_dutch_names() -> None:
    assert [s.label for s in Step] == [
        "Indienen signaal",
        "Verkennen",
        "Informatie delen & analyseren",
        "Adviseren",
        "Uitvoeren",
        "Evalueren",
        "Afsluiten",
    ]
