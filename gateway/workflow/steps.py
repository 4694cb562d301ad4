"""The seven steps, their outputs, and which transitions are allowed (pure functions).

A case moves one step forward at a time, and only when the step it leaves has produced
its output. From steps 4 and 5 a case may go back to step 3 when new information comes
in, with a reason. A no-go at step 2 closes the case.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from enum import IntEnum, StrEnum

from gateway.workflow.errors import TransitionNotAllowedError


class Step(IntEnum):
    """The seven steps of the RIEC-LIEC way of working."""

    INDIENEN_SIGNAAL = 1
    VERKENNEN = 2
    INFORMATIE_DELEN_ANALYSEREN = 3
    ADVISEREN = 4
    UITVOEREN = 5
    EVALUEREN = 6
    AFSLUITEN = 7

    @property
    def label(self) -> str:
        """Return the Dutch name of the step, as partners know it."""
        return STEP_LABELS[self]


STEP_LABELS: dict[Step, str] = {
    Step.INDIENEN_SIGNAAL: "Indienen signaal",
    Step.VERKENNEN: "Verkennen",
    Step.INFORMATIE_DELEN_ANALYSEREN: "Informatie delen & analyseren",
    Step.ADVISEREN: "Adviseren",
    Step.UITVOEREN: "Uitvoeren",
    Step.EVALUEREN: "Evalueren",
    Step.AFSLUITEN: "Afsluiten",
}


class Process(StrEnum):
    """The work processes the seven steps apply to."""

    CASUSAANPAK = "casusaanpak"
    HANDHAVINGSKNELPUNT = "handhavingsknelpunt"
    GEBIEDSSCAN = "gebiedsscan"


class OutputKind(StrEnum):
    """The documents the steps produce."""

    SIGNAL = "signal"
    GO = "go"
    NO_GO = "no-go"
    ANALYSIS = "analysis"
    ADVICE = "advice"
    RESULTS = "results"
    EVALUATION = "evaluation"
    CLOSURE = "closure"


# The output a step must have produced before the case may leave it going forward.
REQUIRED_OUTPUT: dict[Step, OutputKind] = {
    Step.INDIENEN_SIGNAAL: OutputKind.SIGNAL,
    Step.VERKENNEN: OutputKind.GO,
    Step.INFORMATIE_DELEN_ANALYSEREN: OutputKind.ANALYSIS,
    Step.ADVISEREN: OutputKind.ADVICE,
    Step.UITVOEREN: OutputKind.RESULTS,
    Step.EVALUEREN: OutputKind.EVALUATION,
}

# The step at which each output is written.
OUTPUT_STEP: dict[OutputKind, Step] = {
    OutputKind.SIGNAL: Step.INDIENEN_SIGNAAL,
    OutputKind.GO: Step.VERKENNEN,
    OutputKind.NO_GO: Step.VERKENNEN,
    OutputKind.ANALYSIS: Step.INFORMATIE_DELEN_ANALYSEREN,
    OutputKind.ADVICE: Step.ADVISEREN,
    OutputKind.RESULTS: Step.UITVOEREN,
    OutputKind.EVALUATION: Step.EVALUEREN,
    OutputKind.CLOSURE: Step.AFSLUITEN,
}

BACKWARD_TO_SHARING = frozenset({Step.ADVISEREN, Step.UITVOEREN})


@dataclass(frozen=True, slots=True)
class Transition:
    """An allowed move: from, to, whether it goes back, and whether it closes the case."""

    source: Step
    target: Step
    backward: bool
    closes: bool


def plan_transition(
    current: Step,
    target: Step,
    outputs: Collection[OutputKind],
    reason: str | None,
    *,
    closed: bool = False,
) -> Transition:
    """Return the transition from ``current`` to ``target`` or raise TransitionNotAllowedError.

    ``outputs`` are the output kinds recorded at ``current`` since the case last entered
    it. Forward moves go exactly one step and need the step's output; going back is
    allowed only from step 4 or 5 to step 3, with a reason.
    """
    if closed:
        raise TransitionNotAllowedError("the case is closed; it cannot change step")
    if target == current:
        raise TransitionNotAllowedError(f"the case is already at step {int(current)}")
    if target < current:
        if current in BACKWARD_TO_SHARING and target == Step.INFORMATIE_DELEN_ANALYSEREN:
            if not reason or not reason.strip():
                raise TransitionNotAllowedError(
                    "going back to step 3 needs a reason (new information)"
                )
            return Transition(current, target, backward=True, closes=False)
        raise TransitionNotAllowedError(
            f"a case can go back only from step 4 or 5 to step 3, not from {int(current)} "
            f"to {int(target)}"
        )
    if target != current + 1:
        raise TransitionNotAllowedError(
            f"steps cannot be skipped: from step {int(current)} the next step is "
            f"{int(current) + 1} ({Step(current + 1).label}), not {int(target)}"
        )
    needed = REQUIRED_OUTPUT[current]
    if needed not in outputs:
        if current == Step.VERKENNEN and OutputKind.NO_GO in outputs:
            raise TransitionNotAllowedError("the exploration ended in a no-go; the case is closed")
        raise TransitionNotAllowedError(
            f"step {int(current)} ({current.label}) has no {needed.value} yet; "
            f"record it before moving to step {int(target)}"
        )
    return Transition(current, target, backward=False, closes=target == Step.AFSLUITEN)
