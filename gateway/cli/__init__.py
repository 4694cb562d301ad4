"""The ``gateway`` command line: one Typer app, one sub-app per area.

Errors end the command with a one-line message on stderr and a non-zero exit code.
"""

from __future__ import annotations

import sys

from gateway.cli import audit, cases, core, keys, oidc, partners  # noqa: F401  (registers commands)
from gateway.cli import extract as extract_commands  # noqa: F401  (registers commands)
from gateway.cli import policy as policy_commands  # noqa: F401  (registers commands)
from gateway.cli import researcher as researcher_commands  # noqa: F401  (registers commands)
from gateway.cli import witness as witness_commands  # noqa: F401  (registers commands)
from gateway.cli.app import app, run

__all__ = ["app", "main", "run"]


def main() -> None:
    """Console-script entry point."""
    sys.exit(run(sys.argv[1:]))
