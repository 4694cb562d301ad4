"""Domain errors of research releases; each maps to a problem type through its base class."""

from __future__ import annotations

from gateway.errors import ConflictError, GatewayError, InvalidInputError


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
