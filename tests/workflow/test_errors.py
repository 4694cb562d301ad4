"""The workflow's errors keep their problem codes and statuses, and their names end in Error."""

from __future__ import annotations

import pytest

from gateway.api.problems import status_for
from gateway.errors import GatewayError
from gateway.workflow import errors

EXPECTED: dict[type[GatewayError], tuple[str, int]] = {
    errors.NotParticipantError: ("not-a-participant", 403),
    errors.RoleNotInCaseError: ("role-not-in-case", 403),
    errors.NotCaseRiecError: ("not-the-case-riec", 403),
    errors.TransitionNotAllowedError: ("transition-not-allowed", 409),
}


@pytest.mark.parametrize("error", list(EXPECTED), ids=[e.__name__ for e in EXPECTED])
def test_each_error_keeps_its_code_and_status(error: type[GatewayError]) -> None:
    assert (error.code, status_for(error("why"))) == EXPECTED[error]


def test_every_workflow_error_is_listed_and_named_as_an_error() -> None:
    assert {getattr(errors, name) for name in errors.__all__} == set(EXPECTED)
    assert all(name.endswith("Error") for name in errors.__all__)
