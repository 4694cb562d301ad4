"""Every research error lives in gateway/research/errors.py, with a unique code and a status."""

from __future__ import annotations

import inspect

import gateway.research.errors as research_errors
from gateway.api.problems import status_for
from gateway.errors import GatewayError


def test_research_errors_are_named_coded_once_and_mapped_to_a_status() -> None:
    found = [
        cls
        for _, cls in inspect.getmembers(research_errors, inspect.isclass)
        if issubclass(cls, GatewayError) and cls.__module__ == research_errors.__name__
    ]
    assert len(found) >= 13
    assert all(cls.__name__.endswith("Error") for cls in found)
    codes = [cls.code for cls in found]
    assert len(set(codes)) == len(codes)
    base_codes = {cls.code for cls in GatewayError.__subclasses__() if cls not in found} | {
        GatewayError.code
    }
    assert not set(codes) & base_codes
    for cls in found:
        assert 400 <= status_for(cls("x")) < 500, cls.__name__
