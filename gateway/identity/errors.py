"""The identity package's errors: the partner registry's refusals, enrolment codes and
sign-in through partners' identity providers."""

from __future__ import annotations

from gateway.errors import AuthenticationError, GatewayError, PermissionDeniedError


class RegistryRefusedError(PermissionDeniedError):
    """An operator asked for something outside its authority; the refusal is audited."""

    code = "registry-refused"
    title = "Not within this operator's authority"


class ForeignPartnerError(RegistryRefusedError):
    """The operator acted on another partner's principals or credentials."""

    code = "foreign-partner"
    title = "Another partner's principals and credentials"


class OperatingRiecOnlyError(RegistryRefusedError):
    """Only an operator of the operating RIEC may do this."""

    code = "operating-riec-only"
    title = "Only the operating RIEC's operators"


class EnrolmentRequiredError(RegistryRefusedError):
    """An operator asked for a bearer token of a principal that is not an operator."""

    code = "enrolment-required"
    title = "Operators get no tokens that read records"


class EnrolmentCodeInvalidError(AuthenticationError):
    """The enrolment code is malformed, unknown, wrong, used, expired or superseded.

    Deliberately one error: it never says which.
    """

    code = "enrolment-code-invalid"
    title = "Enrolment code not valid"

    def __init__(self) -> None:
        super().__init__("this enrolment code cannot be redeemed; ask your operator for a new one")


class NotEnrolledError(AuthenticationError):
    """The provider vouched for the person, but no principal here is linked to them."""

    code = "person-not-enrolled"
    title = "Not enrolled at this gateway"


class OidcTokenError(AuthenticationError):
    """A token or sign-in response of an identity provider was refused (which check: ``reason``)."""

    code = "oidc-token-invalid"
    title = "Identity provider token not accepted"

    def __init__(self, detail: str, reason: str) -> None:
        super().__init__(detail, reason=reason)
        self.reason = reason


class ProviderUnavailableError(GatewayError):
    """The identity provider could not be reached or answered nonsense (503)."""

    code = "oidc-provider-unavailable"
    title = "Identity provider unavailable"
