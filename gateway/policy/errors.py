"""The policy's errors: unknown terms, versions, and proposals that cannot be stored or decided.

Each has its own problem code; ``gateway.api.problems`` maps them to HTTP.
"""

from __future__ import annotations

from typing import Any

from gateway.errors import ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError
from gateway.yamlsource import SourceError

__all__ = [
    "ActivityNotFoundError",
    "FourEyesViolationError",
    "NoActiveVersionError",
    "NotAnApproverError",
    "ProposalNotCompilableError",
    "ProposalNotOpenError",
    "ProposalStaleError",
    "ProposalUnchangedError",
    "UnknownTermError",
    "VersionAlreadyActiveError",
    "problems_json",
]


def problems_json(exc: SourceError) -> list[dict[str, Any]]:
    """Return the problems of ``exc`` as ``{file, line, message}`` mappings."""
    return [{"file": p.path.as_posix(), "line": p.line, "message": p.message} for p in exc.problems]


class UnknownTermError(InvalidInputError):
    """A decision request names something the vocabulary does not define."""

    code = "unknown-term"
    title = "Unknown policy term"


class ActivityNotFoundError(NotFoundError):
    """No activity of the register in force has this id, or covers this processing."""

    code = "processing-activity-not-found"
    title = "Processing activity not found"


class NoActiveVersionError(NotFoundError):
    """The database holds no policy version yet (``gateway init`` imports the first)."""

    code = "no-active-policy"
    title = "No active policy version"

    def __init__(self) -> None:
        super().__init__("no policy version is stored yet; run `gateway init` first")


class VersionAlreadyActiveError(ConflictError):
    """The version asked for is the one in force already."""

    code = "version-already-active"
    title = "Version already active"


class ProposalNotCompilableError(InvalidInputError):
    """The proposed pack does not compile or lint; nothing was stored."""

    code = "proposal-not-compilable"
    title = "Proposal does not compile"

    def __init__(self, exc: SourceError) -> None:
        super().__init__(
            f"the proposed policy has {len(exc.problems)} problem(s) and was not stored; "
            "fix them and propose again",
            problems=problems_json(exc),
            lint=[str(p) for p in exc.problems],
        )


class ProposalUnchangedError(InvalidInputError):
    """The proposal would change nothing: its files equal the active version's."""

    code = "proposal-unchanged"
    title = "Proposal changes nothing"


class FourEyesViolationError(PermissionDeniedError):
    """The proposer tried to approve or reject their own proposal."""

    code = "four-eyes-violation"
    title = "Four-eyes principle"


class NotAnApproverError(PermissionDeniedError):
    """The caller is a privacy officer, but not one who may decide on proposals."""

    code = "not-an-approver"
    title = "Not an approver"


class ProposalNotOpenError(ConflictError):
    """The proposal was already approved or rejected."""

    code = "proposal-not-open"
    title = "Proposal not open"


class ProposalStaleError(ConflictError):
    """Another version became active after the proposal was made; approving it would undo that."""

    code = "proposal-stale"
    title = "Proposal out of date"
