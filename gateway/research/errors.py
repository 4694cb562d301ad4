"""Domain errors of research: agreements, consents, intake, recipients and releases.

Each maps to a problem type through its base class (``gateway.api.problems``); each
code is the problem's stable ``type`` suffix.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.errors import ConflictError, GatewayError, InvalidInputError, PermissionDeniedError

MAX_PROBLEMS_SHOWN = 20
"""How many row problems a refusal names; the rest are counted."""


class AgreementNotInEffectError(ConflictError):
    """A release was asked for outside the agreement's period: nothing is released."""

    code = "agreement-not-in-effect"
    title = "Agreement not in effect"


class DisclosureCheckFailedError(ConflictError):
    """The disclosure check would suppress more rows than the agreement allows."""

    code = "disclosure-check-failed"
    title = "Disclosure check failed"


class GeneralisationStateError(InvalidInputError):
    """A stored generalisation state is malformed or does not fit the agreement."""

    code = "generalisation-state-invalid"
    title = "Generalisation state does not fit"


class BundleError(InvalidInputError):
    """A bundle cannot be written or opened for a reason the caller can act on."""

    code = "bundle-error"
    title = "Bundle error"


class ReleaseExpiredError(GatewayError):
    """The release's retention ended: its bundle is no longer handed out (410)."""

    code = "release-expired"
    title = "Release expired"


class NotAProviderError(PermissionDeniedError):
    """The caller's partner does not provide data under this agreement or instrument."""

    code = "not-a-provider"
    title = "Not a provider of this agreement"


class NotEntitledError(PermissionDeniedError):
    """The caller's partner and role have no part in this agreement's releases."""

    code = "not-entitled"
    title = "Not entitled under this agreement"


class NoConsentingProviderError(ConflictError):
    """No providing partner's rows may be released: nothing to release."""

    code = "no-consenting-provider"
    title = "No consenting provider"


class ConsentNotGivenError(ConflictError):
    """Only a consent can be revoked."""

    code = "consent-not-given"
    title = "No consent to revoke"


class SigningKeyNotPinnedError(ConflictError):
    """The gateway's signing key is not the one the agreement pins."""

    code = "signing-key-not-pinned"
    title = "Signing key not pinned"


class AgreementPolicyConflictError(ConflictError):
    """The agreement would release something finer than the policy's obligations allow."""

    code = "agreement-below-policy"
    title = "Agreement conflicts with the policy's obligations"


class NotEnrollableError(PermissionDeniedError):
    """The caller may not enrol, confirm or revoke this recipient."""

    code = "recipient-not-allowed"
    title = "Not allowed for this recipient"


class NoConfirmedRecipientError(ConflictError):
    """A release needs at least one confirmed researcher recipient."""

    code = "no-confirmed-recipient"
    title = "No confirmed recipient"


class RowsRefusedError(InvalidInputError):
    """Rows do not fit their instrument; ``problems`` name rows and fields, never values."""

    code = "rows-refused"
    title = "Rows refused"

    def __init__(self, problems: Sequence[str]) -> None:
        shown = list(problems[:MAX_PROBLEMS_SHOWN])
        more = len(problems) - len(shown)
        super().__init__(
            "nothing was stored: " + "; ".join(shown) + (f"; and {more} more" if more else ""),
            problems=shown,
        )


class DuoConditionNotMetError(ConflictError):
    """A DUO condition of the agreement that the gateway checks is not met (TS, IRB, NCU, NPU)."""

    code = "duo-condition-not-met"
    title = "DUO condition of the agreement not met"


class DuoUseRestrictedError(PermissionDeniedError):
    """A DUO restriction of the agreement (PS, US, IS) excludes the caller from its data."""

    code = "duo-use-restricted"
    title = "Restricted by a DUO condition of the agreement"
