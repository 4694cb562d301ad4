"""Fail early, with the reason, when the Python running the setup is too old."""

import sys

# The point of this script is to run on an older Python and say so, hence the "outdated" check.
if sys.version_info < (3, 11):  # noqa: UP036
    version = sys.version.split()[0]
    sys.exit(f"the gateway needs Python 3.11 or newer; this is {version} (set PYTHON=python3.11)")
