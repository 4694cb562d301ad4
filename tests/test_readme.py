"""The README's copy-paste walk through the seven steps runs as written against a live gateway."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from gateway.app import create_app
from tests.conftest import ROOT, Gateway
from tests.helpers.live import serving

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])

TOKENS = {
    "GEM": "gemeente-smallingerland.partner-system",
    "BD": "belastingdienst.partner-system",
    "RIEC": "riec-noord-nederland.riec-analyst",
}


def section_block(heading: str) -> str:
    """Return the first ```sh block under the README heading ``heading``."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split(f"\n{heading}\n", 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert match is not None, f"no shell block under {heading}"
    return match.group(1)


def test_the_case_walk_in_the_readme_runs_through_step_7(gateway: Gateway) -> None:
    assert shutil.which("curl") and shutil.which("jq"), "the README walk uses curl and jq"
    block = section_block("## A case, step by step")
    lines = block.splitlines()
    assert lines[0].startswith("GEM=gw_...; BD=gw_...; RIEC=gw_...")
    assert "POL" not in block, "a token the walk never uses"
    with serving(create_app(gateway.settings, db=gateway.database)) as base:
        tokens = "; ".join(f"{var}={gateway.tokens[p]}" for var, p in TOKENS.items())
        script = "\n".join(
            [
                "set -euo pipefail",
                # a refusal anywhere stops the walk: the README shows only what succeeds
                'curl() { command curl --fail-with-body "$@"; }',
                tokens,
                *lines[1:],
            ]
        ).replace("GW=http://127.0.0.1:8080", f"GW={base}")
        result = subprocess.run(
            ["bash", "-c", script], capture_output=True, text=True, timeout=120, check=False
        )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    closed, riec_sees, provider_sees = result.stdout.strip().splitlines()[-3:]
    assert closed.endswith('{"step":7,"status":"closed"}')  # curl prints no newline before it
    assert (riec_sees, provider_sees) == ("[]", '["fiscal"]')
