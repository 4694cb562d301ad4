"""Which agreement a research use case is about, and where the caller stands in it.

Every research use case starts here: it finds the agreement (``NotFoundError`` for an
unknown id) and checks the caller's place in it (a provider, one of its researchers, a
privacy officer of a partner it names). The policy is asked after these checks, through
``gateway.usecase``.
"""

from __future__ import annotations

from gateway.audit.events import RefValue
from gateway.context import AppContext
from gateway.errors import ConflictError, NotFoundError
from gateway.identity.service import Caller
from gateway.research.agreements import Agreement, PartnerRef
from gateway.research.errors import NotAProviderError, NotEntitledError
from gateway.vocabulary import Role


def rows_key_id(project: str) -> str:
    """Return the key ring id of the data key that seals a project's research rows."""
    return f"research.{project}"


def all_agreements(ctx: AppContext) -> list[Agreement]:
    """Return every loaded agreement, by id."""
    return [ctx.agreements[k] for k in sorted(ctx.agreements)]


def find_agreement(ctx: AppContext, agreement_id: str) -> Agreement:
    """Return one agreement; raise NotFoundError if none has that id."""
    found = ctx.agreements.get(agreement_id)
    if found is None:
        raise NotFoundError("no such research agreement", field="agreement_id")
    return found


def named_partners(agreement: Agreement) -> set[str]:
    """Return the ids of every partner the agreement names (providers and science)."""
    return {p.partner for p in (*agreement.providers, *agreement.science_partners)}


def is_researcher(caller: Caller, agreement: Agreement) -> bool:
    """Return True if the caller is a researcher of one of the agreement's science partners."""
    science = {p.partner for p in agreement.science_partners}
    return caller.role is Role.RESEARCHER and caller.partner_id in science


def require_may_see(caller: Caller, agreement: Agreement) -> None:
    """Pass the agreement's researchers and privacy officers of partners it names.

    Raises NotEntitledError for anyone else.
    """
    officer = caller.role is Role.PRIVACY_OFFICER and caller.partner_id in named_partners(agreement)
    if not (officer or is_researcher(caller, agreement)):
        raise NotEntitledError(
            "only the agreement's researchers and the privacy officers of the partners it "
            "names can see this",
            agreement=agreement.id,
        )


def provider_ref(caller: Caller, agreement: Agreement) -> PartnerRef:
    """Return the agreement's entry for the caller's partner as a provider.

    Raises NotAProviderError when the agreement does not name it as a provider, and
    ConflictError when the agreement and the partner registry disagree on its kind.
    """
    for ref in agreement.providers:
        if ref.partner == caller.partner_id:
            if ref.kind != caller.partner_kind:
                raise ConflictError(
                    f"the agreement names {ref.partner} as a {ref.kind}, the partner "
                    f"registry as a {caller.partner_kind}; correct one of them first"
                )
            return ref
    raise NotAProviderError(
        "only partners the agreement names as providers can do this", agreement=agreement.id
    )


def agreement_refs(agreement: Agreement, **refs: RefValue) -> dict[str, RefValue]:
    """Return an audit entry's refs: the agreement and its version, then ``refs``."""
    return {"agreement": agreement.id, "agreement_version": agreement.version, **refs}
