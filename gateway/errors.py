"""Domain errors. Each has a stable ``code``; ``gateway.api.problems`` maps them to HTTP.

Messages and extension members must never contain personal data, secrets or SQL: they
are shown to callers as they are.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:  # the moved names below, for the type checker (re-exported on purpose)
    from gateway.keys.errors import IntegrityCheckFailedError
    from gateway.keys.errors import KeyRingError as KeyRingError
    from gateway.keys.errors import KeyShreddedError as KeyShreddedError
    from gateway.keys.errors import UnknownKeyError as UnknownKeyError

    IntegrityCheckFailed = IntegrityCheckFailedError
    from gateway.policy.decision import Decision

# The key ring's errors live in gateway.keys.errors; these names still resolve here for
# the many callers that import them from gateway.errors (read on first use, so this
# module imports nothing back from gateway.keys).
_MOVED = {
    "IntegrityCheckFailed": "IntegrityCheckFailedError",
    "KeyRingError": "KeyRingError",
    "KeyShreddedError": "KeyShreddedError",
    "UnknownKeyError": "UnknownKeyError",
}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        from gateway.keys import errors

        return getattr(errors, _MOVED[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class GatewayError(Exception):
    """Base of every error the gateway reports to a caller on purpose."""

    code: ClassVar[str] = "gateway-error"
    title: ClassVar[str] = "Gateway error"

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions


class InvalidInputError(GatewayError):
    """The request is well-formed but its content is not acceptable."""

    code = "invalid-input"
    title = "Invalid input"


class InvalidIdentifierError(InvalidInputError):
    """An identifier is malformed; ``id_type`` says which kind, the value is never shown."""

    code = "invalid-identifier"
    title = "Invalid identifier"

    def __init__(self, id_type: StrEnum, problem: str) -> None:
        super().__init__(f"{id_type.value}: {problem}", id_type=id_type.value)
        self.id_type = id_type


class NotFoundError(GatewayError):
    """The named thing does not exist, or the caller may not know that it exists."""

    code = "not-found"
    title = "Not found"


class ConflictError(GatewayError):
    """The request conflicts with the current state (duplicate, wrong state)."""

    code = "conflict"
    title = "Conflict"


class AuthenticationError(GatewayError):
    """No valid credential was presented."""

    code = "unauthenticated"
    title = "Authentication required"


class PermissionDeniedError(GatewayError):
    """The caller is known but its role does not allow this operation."""

    code = "forbidden"
    title = "Forbidden"


class PolicyDeniedError(PermissionDeniedError):
    """The policy does not allow this; the extensions say which rule decided and why."""

    code = "policy-denied"
    title = "Not allowed by policy"

    def __init__(self, decision: Decision, what: str) -> None:
        super().__init__(
            f"{what} is not allowed: {decision.reason}",
            rule_id=decision.rule_id,
            reason=decision.reason,
            source=decision.source,
            policy_version=decision.policy_version,
        )
        self.decision = decision

    @classmethod
    def of(cls, decision: Decision, what: str) -> PolicyDeniedError:
        """Return the error for a refusal: ``LegalBasisNotOwnError`` for a foreign basis."""
        if decision.is_foreign_basis:
            return LegalBasisNotOwnError(decision, what)
        return cls(decision, what)


class LegalBasisNotOwnError(PolicyDeniedError):
    """The legal basis named is not one the partner (or the data's provider) may invoke."""

    code = "legal-basis-not-own"
    title = "Legal basis not the partner's own"


class IdempotencyConflictError(ConflictError):
    """An idempotency key was used before for different content."""

    code = "idempotency-key-reused"
    title = "Idempotency key reused with different content"


class PreflightError(RuntimeError):
    """The gateway must not start; the message says why and what to do.

    Defined here, not in ``gateway.preflight``, so that the command line can report it
    without importing the database layer (``gateway witness`` never opens one).
    """


class SchemaNotCurrentError(GatewayError):
    """The database schema is behind (or ahead of) the migrations of this version."""

    code = "schema-not-current"
    title = "Database schema not current"

    def __init__(self, current: str | None, head: str) -> None:
        super().__init__(
            f"database schema is at {current or 'nothing'}, this gateway needs {head}; "
            "run `gateway init` (which applies migrations) first",
            current=current,
            head=head,
        )
