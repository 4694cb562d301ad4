"""The extract benchmark runs end to end on a small input and prints its figures.

It uses the real key ring, pseudonymises on intake and releases from the stored form.
"""

from __future__ import annotations

import pytest

from bench import extract


@pytest.mark.slow
def test_bench_prints_throughput_ratio_and_memory(capsys: pytest.CaptureFixture[str]) -> None:
    assert extract.main(["--rows", "12000", "--repeat", "2"]) == 0
    out = capsys.readouterr().out
    for expected in (
        "real key ring",
        "intake: pseudonymise identifiers",
        "release to a signed bundle",
        "rows/s",
        "ratio pipeline / bare HMAC",
        "before the pipeline",
        "the pseudonymiser alone",
        "peak memory",
        "rows out",
        "min / median / max",
        "peak memory of the release phase",
    ):
        assert expected in out
    # each run prints its ratio beside the person-level risk of its release
    runs = [line for line in out.splitlines() if line.startswith("  run ")]
    assert len(runs) == 2
    for line in runs:
        assert "prosecutor max 0." in line and "1-event attacker max 0." in line
        # the example agreement holds the one-event attacker to k = 5
        assert "1-event attacker max 1.0" not in line and ", 0.000000 above;" in line
        assert "suppressed" in line and "people /" in line
        # the release runs in a process of its own: its peak is its own memory
        assert "release peak" in line and "MB before the release" in line
