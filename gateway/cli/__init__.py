"""The ``gateway`` command line: one Typer app, one sub-app per area.

Errors end the command with a one-line message on stderr and a non-zero exit code.
Each area's module registers its commands on the root app when imported; ``run``
imports them first, all of them except for ``gateway witness ...``, which a witness
operator runs without the gateway's database, settings or key ring (and which starts a
process per witness, so it imports only what it uses).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from gateway.cli.app import app
from gateway.cli.app import run as run_app

__all__ = ["app", "load_commands", "main", "run"]

COMMANDS = (
    "audit",
    "cases",
    "core",
    "keys",
    "logboek",
    "oidc",
    "partners",
    "extract",
    "policy",
    "researcher",
)
"""The areas' modules in ``gateway.cli``, besides ``witness``."""


def load_commands(argv: Sequence[str] = ()) -> None:
    """Register the commands ``argv`` may name: the witness's alone, or every area's."""
    areas = () if list(argv[:1]) == ["witness"] else COMMANDS
    for area in (*areas, "witness"):
        importlib.import_module(f"{__name__}.{area}")


def run(argv: list[str]) -> int:
    """Run the CLI with ``argv``; return the exit code (see ``gateway.cli.app.run``)."""
    load_commands(argv)
    return run_app(argv)


def main() -> None:
    """Console-script entry point."""
    sys.exit(run(sys.argv[1:]))
