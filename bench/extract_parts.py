"""Parts of the extract benchmark: timers, what a run measured, and how it is printed."""

from __future__ import annotations

import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from gateway.research.release_builder import Release


class PhaseClock:
    """A progress sink that records how long each pipeline phase took."""

    def __init__(self) -> None:
        self.phases: list[tuple[str, float]] = []
        self._current: tuple[str, float] | None = None

    def start(self, phase: str, total: int | None) -> None:
        """Close the running phase and open ``phase``."""
        self.stop()
        self._current = (phase, time.perf_counter())

    def advance(self, rows: int) -> None:
        """Ignore row counts; only phase times matter here."""

    def stop(self) -> None:
        """Close the running phase."""
        if self._current is not None:
            name, began = self._current
            self.phases.append((name, time.perf_counter() - began))
            self._current = None


@dataclass
class Timer:
    """Wall and CPU seconds spent in the timed blocks of one kind of work."""

    wall: float = 0.0
    cpu: float = 0.0
    _began: tuple[float, float] = (0.0, 0.0)

    def __enter__(self) -> Timer:
        self._began = (time.perf_counter(), time.process_time())
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall += time.perf_counter() - self._began[0]
        self.cpu += time.process_time() - self._began[1]


@dataclass
class Intake:
    """What the simulated intake measured and produced."""

    pseudonymise: Timer = field(default_factory=Timer)
    check: Timer = field(default_factory=Timer)
    seal: Timer = field(default_factory=Timer)
    rows_in: int = 0
    rows_stored: int = 0
    not_submitted: int = 0
    invalid: Counter[str] = field(default_factory=Counter)
    withdrawn: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Released:
    """What the release's own process measured: the release, its time, phases and memory."""

    release: Release
    time: Timer
    phases: list[tuple[str, float]]
    peak: float | None
    """The process's peak resident memory (VmHWM) in MB."""
    before: float | None
    """Its resident memory once the key ring was open, before the release (MB)."""


def ratio(part: float, whole: float) -> float:
    return part / whole if whole else float("inf")


@dataclass
class Run:
    """One measured run: intake, release, the bare loop around them, and the release made."""

    intake: Intake
    release: Release
    release_time: Timer
    phases: list[tuple[str, float]]
    bare_before: Timer
    bare_after: Timer
    identifiers: int
    floor: Timer
    release_peak: float | None
    bundle_mb: float
    release_base: float | None = None
    """The release process's resident memory before the release began (MB)."""

    @property
    def bare_seconds(self) -> float:
        return (self.bare_before.wall + self.bare_after.wall) / 2

    @property
    def bare_cpu(self) -> float:
        return (self.bare_before.cpu + self.bare_after.cpu) / 2

    @property
    def measured(self) -> float:
        return self.intake.pseudonymise.wall + self.release_time.wall

    @property
    def measured_cpu(self) -> float:
        return self.intake.pseudonymise.cpu + self.release_time.cpu

    @property
    def ratio(self) -> float:
        return ratio(self.measured, self.bare_seconds)

    @property
    def cpu_ratio(self) -> float:
        return ratio(self.measured_cpu, self.bare_cpu)


def risk_figures(manifest: dict[str, Any]) -> str:
    """Return the person-level risk of a release in a few figures (beside each timing)."""
    d = manifest["disclosure"]
    risk = d["risk"]
    event = risk["event_attacker"]
    return (
        f"prosecutor max {risk['prosecutor_risk_max']}, "
        f"{risk['prosecutor_share_above_1_over_k']} above 1/{d['k']}; "
        f"{event['known_events']}-event attacker max {event['risk_max']}, "
        f"{event['share_above_1_over_k']} above; suppressed {d['people_suppressed']:,} "
        f"people / {d['rows_suppressed']:,} rows"
    )


def spread(values: list[float], unit: str = "") -> str:
    """Return ``min / median / max`` of ``values``."""
    low, mid, high = min(values), statistics.median(values), max(values)
    return f"{low:.2f} / {mid:.2f} / {high:.2f}{unit}"


def report(run: Run) -> None:
    """Print the figures of one run."""
    intake, release, counts = run.intake, run.release, run.release.manifest["counts"]
    bare_seconds, measured = run.bare_seconds, run.measured
    everything = measured + intake.check.wall + intake.seal.wall
    print(
        f"  intake: pseudonymise identifiers     {intake.pseudonymise.wall:8.2f} s  "
        f"{intake.rows_stored / intake.pseudonymise.wall:12,.0f} rows/s"
    )
    print(f"  release to a signed bundle           {run.release_time.wall:8.2f} s  "
          f"{intake.rows_stored / run.release_time.wall:12,.0f} rows/s")  # fmt: skip
    for name, seconds in run.phases:
        print(f"    {name:<48} {seconds:8.2f} s")
    print(
        f"  measured: intake pseudonyms + release {measured:7.2f} s  "
        f"{intake.rows_stored / measured:12,.0f} rows/s"
    )
    print(
        f"  bare HMAC-SHA256 loop (hmac.digest)  {bare_seconds:8.2f} s  "
        f"{run.identifiers / bare_seconds:12,.0f} identifiers/s ({run.identifiers:,} "
        f"identifiers; {run.bare_before.wall:.2f} s before the pipeline, "
        f"{run.bare_after.wall:.2f} s after)"
    )
    print(
        f"  ratio pipeline / bare HMAC           {run.ratio:8.2f}   "
        "wall clock, intake pseudonymisation + release (target <= 3)"
    )
    print(
        f"  ratio in CPU time                    {run.cpu_ratio:8.2f}   "
        f"({run.measured_cpu:.2f} s / {run.bare_cpu:.2f} s; steadier on a shared machine)"
    )
    print(
        f"  for information: the pseudonymiser alone over the same identifiers "
        f"{run.floor.wall:.2f} s ({ratio(run.floor.wall, bare_seconds):.2f} of the bare loop: "
        f"a keyed context per type); the pipeline is {ratio(measured, run.floor.wall):.2f} x that"
    )
    print(
        f"  not in the ratio: row checks {intake.check.wall:.2f} s, sealing and opening "
        f"{intake.seal.wall:.2f} s; whole path without a database "
        f"{ratio(everything, bare_seconds):.2f} x the bare loop"
    )
    print(
        f"  rows in {intake.rows_in:,}; submitted and stored {intake.rows_stored:,} (not "
        f"submitted: {intake.not_submitted:,}, outside the agreement or without "
        f"a parent's consent); identifiers failing their check {sum(intake.invalid.values()):,}"
    )
    print(
        f"  rows out {counts['rows_out']:,} of {counts['rows_in']:,}; suppressed "
        f"{counts['rows_suppressed']:,}; withdrawn {len(intake.withdrawn):,} respondents; "
        f"levels {release.manifest['generalisation']['levels']}; bundle {run.bundle_mb:.1f} MB"
    )
