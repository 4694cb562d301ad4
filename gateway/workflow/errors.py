"""The case workflow's errors: who may not act on a case, and moves a case cannot make.

Each maps to a problem response through its ancestor in ``gateway.api.problems``
(``PermissionDeniedError`` is 403, ``ConflictError`` 409); the codes are the problem
types' last part and never change.
"""

from __future__ import annotations

from gateway.errors import ConflictError, PermissionDeniedError

__all__ = [
    "NotCaseRiecError",
    "NotParticipantError",
    "RoleNotInCaseError",
    "TransitionNotAllowedError",
]


class NotParticipantError(PermissionDeniedError):
    """The caller's partner does not take part in the case."""

    code = "not-a-participant"
    title = "Not a participant of this case"


class RoleNotInCaseError(PermissionDeniedError):
    """The caller's role has no business with this case data (e.g. operators, researchers)."""

    code = "role-not-in-case"
    title = "This role has no access to case data"


class NotCaseRiecError(PermissionDeniedError):
    """Another RIEC (or the LIEC) taking part in a case does not steer it."""

    code = "not-the-case-riec"
    title = "Only the RIEC running this case can do this"


class TransitionNotAllowedError(ConflictError):
    """The case cannot move (or change) now; the detail says why."""

    code = "transition-not-allowed"
    title = "Step transition not allowed"
