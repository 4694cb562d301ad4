"""The extract benchmark runs end to end on a small input and prints its figures.

It uses the real key ring, pseudonymises on intake and releases from the stored form.
"""

from __future__ import annotations

import pytest

from bench import extract


@pytest.mark.slow
def test_bench_prints_throughput_ratio_and_memory(capsys: pytest.CaptureFixture[str]) -> None:
    assert extract.main(["--rows", "3000"]) == 0
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
    ):
        assert expected in out
