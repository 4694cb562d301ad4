"""Every problem a caller can get is one error class with one code, a status, and a line
in the README's error table; each package keeps its errors in its own ``errors.py``."""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

import gateway
from gateway.api.problems import HTTP_CODES, STATUS_BY_ERROR
from gateway.errors import GatewayError

README = Path(__file__).resolve().parents[1] / "README.md"
# Modules that cannot be imported on their own: Alembic's scripts, and the ASGI entry
# point (which opens the configured key ring at import).
NOT_IMPORTED = ("gateway.migrations", "gateway.asgi")
# Problems not raised as an error class: the token endpoint answers RFC 6749's errors as
# problems (400, or 401 for a client whose assertion failed).
ENDPOINT_PROBLEMS = {"token-request-refused": 400}
ROW = re.compile(r"^\| `([a-z0-9-]+)` \| (\d{3}) \| (.+) \|$")


def _subclasses(cls: type[GatewayError]) -> Iterator[type[GatewayError]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def error_classes() -> list[type[GatewayError]]:
    """Every GatewayError subclass defined anywhere in the package (the base is abstract)."""
    for module in pkgutil.walk_packages(gateway.__path__, "gateway."):
        if not module.name.startswith(NOT_IMPORTED):
            importlib.import_module(module.name)
    found = set(_subclasses(GatewayError))
    return sorted(found, key=lambda c: (c.__module__, c.__name__))


def status_of(cls: type[GatewayError]) -> int:
    return next(STATUS_BY_ERROR[k] for k in cls.__mro__ if k in STATUS_BY_ERROR)


def readme_rows() -> dict[str, int]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Errors\n") :]
    section = section[: section.index("\n## ", 1)]
    rows: dict[str, int] = {}
    for line in section.splitlines():
        match = ROW.match(line)
        if match:
            assert match[1] not in rows, f"README lists {match[1]} twice"
            rows[match[1]] = int(match[2])
    return rows


ERRORS = error_classes()


def test_every_error_class_has_its_own_code() -> None:
    by_code: dict[str, list[str]] = defaultdict(list)
    for cls in ERRORS:
        assert "code" in cls.__dict__, f"{cls.__qualname__} inherits its code"
        by_code[cls.code].append(f"{cls.__module__}.{cls.__qualname__}")
    shared = {code: names for code, names in by_code.items() if len(names) > 1}
    assert shared == {}


def test_error_names_end_in_error() -> None:
    assert [c.__qualname__ for c in ERRORS if not c.__name__.endswith("Error")] == []


def test_errors_live_in_their_packages_errors_module() -> None:
    """``gateway/errors.py`` holds the shared ones; a package's own in ``<package>/errors.py``."""
    elsewhere = [
        f"{c.__module__}.{c.__qualname__}"
        for c in ERRORS
        if c.__module__ != "gateway.errors" and not c.__module__.endswith(".errors")
    ]
    assert elsewhere == []


@pytest.mark.parametrize("cls", ERRORS, ids=lambda c: c.code)
def test_each_code_has_a_status_and_a_readme_line(cls: type[GatewayError]) -> None:
    status = status_of(cls)
    assert 400 <= status <= 599
    assert readme_rows().get(cls.code) == status, f"README's error table: `{cls.code}` {status}"


def test_the_readme_table_lists_nothing_that_is_not_a_problem() -> None:
    known = {c.code: status_of(c) for c in ERRORS}
    known.update(ENDPOINT_PROBLEMS)
    for status, (code, _title) in HTTP_CODES.items():
        assert known.setdefault(code, status) == status, f"{code} has two statuses"
    assert readme_rows() == known
