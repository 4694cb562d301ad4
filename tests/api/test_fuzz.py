"""Schemathesis over every operation of ``/openapi.json``, in-process, with valid tokens.

Each operation is called with a token of a role that may call it, with data that fits its
schema and data that does not. It fails on any 5xx, any response that does not match the
OpenAPI document (status, content type, schema), and any 4xx or 5xx that is not
``application/problem+json``. Bounded and derandomized: the same cases every run.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.test_auth import OPERATOR, PROBLEM
from tests.conftest import Gateway

pytestmark = pytest.mark.slow

RIEC = "riec-noord-nederland.riec-analyst"
RIEC_PO = "riec-noord-nederland.privacy-officer"
GEMEENTE = "gemeente-smallingerland.partner-system"
RESEARCHER = "nscr.researcher"
EXAMPLES = 8

# Path prefix -> the demo principal whose role may call the operations under it.
ROLE_BY_PREFIX = (
    ("/v1/partners", OPERATOR),
    ("/v1/principals", OPERATOR),
    ("/v1/tokens", OPERATOR),
    ("/v1/policies", RIEC_PO),
    ("/v1/subjects", RIEC_PO),
    ("/v1/audit", RIEC_PO),
    ("/v1/research/releases", RESEARCHER),
    ("/v1/research", RIEC_PO),
    ("/v1/holdings", GEMEENTE),
    ("/v1/signals", GEMEENTE),
    ("/access", GEMEENTE),
    ("/v1", RIEC),
)


def principal_for(path: str) -> str | None:
    """Return the demo principal that calls ``path`` (None: public operations)."""
    for prefix, principal in ROLE_BY_PREFIX:
        if path.startswith(prefix):
            return principal
    return None


def errors_are_problems(_ctx: Any, response: Any, _case: Any) -> bool | None:
    """Fail when a 4xx or 5xx response is not ``application/problem+json``."""
    if response.status_code >= 400:
        content_type = response.headers.get("content-type", [""])
        if isinstance(content_type, list):
            content_type = content_type[0] if content_type else ""
        assert content_type.startswith(PROBLEM), (
            f"{response.status_code} answered as {content_type!r}, not {PROBLEM}"
        )
    return None


def not_a_server_error(_ctx: Any, response: Any, _case: Any) -> bool | None:
    """Fail on any 5xx: input must never break the gateway."""
    assert response.status_code < 500, f"server error {response.status_code}"
    return None


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    errors_are_problems,
]


def _send(gateway: Gateway, case: schemathesis.Case[Any]) -> Any:
    """Make the case's request with the test's client (the app is already running)."""
    kwargs = case.as_transport_kwargs(base_url="http://testserver")
    body: dict[str, Any] = {}
    if "json" in kwargs:
        body["json"] = kwargs["json"]
    elif isinstance(kwargs.get("data"), bytes | str):
        body["content"] = kwargs["data"]
    elif kwargs.get("data") is not None:
        body["data"] = kwargs["data"]
    headers = {k: str(v) for k, v in (kwargs.get("headers") or {}).items()}
    return gateway.client.request(
        kwargs["method"],
        kwargs["url"],
        params=kwargs.get("params"),
        headers=headers,
        cookies=kwargs.get("cookies") or None,
        follow_redirects=False,
        **body,
    )


@pytest.mark.parametrize("backend", ["sqlite"])
def test_no_operation_breaks_or_leaves_its_documented_shape(gateway: Gateway) -> None:
    document = gateway.client.get("/openapi.json").json()
    schema = schemathesis.openapi.from_dict(document)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"the OpenAPI document is not valid: {result}"
        operation = result.ok()
        operations += 1
        principal = principal_for(operation.path)
        headers = gateway.auth(principal) if principal else {}
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(generation_mode=mode, headers=headers)

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy)
            def run(case: schemathesis.Case[Any]) -> None:
                response = _send(gateway, case)
                case.validate_response(response, checks=CHECKS)

            try:
                run()
            except Unsatisfiable:
                # nothing to negate: no parameters, or only unconstrained text ones
                assert mode == schemathesis.GenerationMode.NEGATIVE, operation.label
            except (Exception, FailureGroup) as exc:  # one report per operation and mode
                first = str(exc).strip().splitlines()[:12]
                failures.append(f"{operation.label} [{mode}]: " + "\n    ".join(first))
    assert operations > 30
    assert not failures, "\n\n".join(failures)
