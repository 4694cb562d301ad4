"""Fail early, with the reason, when the Python running the setup is too old."""

import sys

if sys.version_info < (3, 11):
    sys.exit(f"the gateway needs Python 3.11 or newer; this is {sys.version.split()[0]} (set PYTHON=python3.11)")
