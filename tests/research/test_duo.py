"""DUO conditions are enforced, not only copied: a permission term is required in every
agreement; TS, PS, US, IS, IRB and NCU/NPU are checked on releases and downloads, each
refusal audited; terms no software can check are "attested, not enforced" in the manifest."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from pyrage import x25519

from gateway.audit.events import AuditEventType
from gateway.identity.service import CLI_ACTOR
from gateway.research import duo_checks
from gateway.research.agreements import (
    Agreement,
    AgreementVocabulary,
    DuoCondition,
    ResearcherEntitlement,
    load_agreement,
)
from gateway.research.duo import ATTESTED, DeclaredUse
from gateway.research.duo_checks import add_months, download_unmet, release_unmet, use_ends
from gateway.research.errors import (
    DuoConditionNotMetError,
    DuoUseRestrictedError,
    NoConsentingProviderError,
    ReleaseExpiredError,
)
from gateway.research.recipients import Recipients
from gateway.research.service.reading import bundle
from gateway.research.service.release import release
from gateway.research.service.results import ReleaseView
from gateway.yamlsource import SourceError
from tests.helpers.research import AGREEMENT, HHS, NSCR, officer
from tests.research.conftest import EXAMPLE, NON_COMMERCIAL, Releaser, Service

TEXT = EXAMPLE.read_text(encoding="utf-8")
GRU = "  - term: DUO:0000042   # general research use (the permission)\n"
NCU, NPU, NPUNCU = "DUO:0000046", "DUO:0000045", "DUO:0000018"
LAST_DAY = date(2027, 12, 31)  # TS: 24 months from the period's start, 2026-01-01


def _load(tmp_path: Path, vocabulary: AgreementVocabulary, text: str) -> Agreement:
    path = tmp_path / "agreement.yaml"
    path.write_text(text, encoding="utf-8")
    return load_agreement(path, vocabulary)


def _problems(tmp_path: Path, vocabulary: AgreementVocabulary, text: str) -> str:
    with pytest.raises(SourceError) as info:
        _load(tmp_path, vocabulary, text)
    return str(info.value)


def _with(agreement: Agreement, term: str, **changes: Any) -> Agreement:
    """Return ``agreement`` with the condition ``term`` changed (None removes it)."""
    kept = [c for c in agreement.conditions if c.term != term]
    if changes.get("drop"):
        return agreement.model_copy(update={"conditions": tuple(kept)})
    current = next((c for c in agreement.conditions if c.term == term), DuoCondition(term=term))
    return agreement.model_copy(update={"conditions": (*kept, current.model_copy(update=changes))})


# --- the agreement must carry one permission, and parameters fit their terms -------------


def test_an_agreement_without_a_permission_term_is_refused(
    tmp_path: Path, vocabulary: AgreementVocabulary
) -> None:
    text = TEXT.replace(GRU + '    detail: "criminological research', '    # "criminological')
    assert "DUO:0000042" not in text
    message = _problems(tmp_path, vocabulary, text)
    assert "conditions need one DUO permission term" in message and "GRU (DUO:0000042)" in message


def test_an_agreement_with_two_permission_terms_is_refused(
    tmp_path: Path, vocabulary: AgreementVocabulary
) -> None:
    text = TEXT.replace(GRU, GRU + "  - term: DUO:0000006\n")
    assert "DUO:0000006: only one DUO permission term per agreement" in _problems(
        tmp_path, vocabulary, text
    )


def test_the_shipped_agreement_carries_general_research_use(
    vocabulary: AgreementVocabulary,
) -> None:
    agreement = load_agreement(EXAMPLE, vocabulary)
    assert [c.shorthand for c in agreement.conditions if c.is_permission] == ["GRU"]
    assert use_ends(agreement) == LAST_DAY


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "    project: jeugdnetwerken-noord-nederland\n",
            "    project: een-ander-project\n",
            "names project 'een-ander-project', but this agreement is for project",
        ),
        ("researchers_are: named", "researchers_are: role", "needs researchers_are: named"),
        ("    months: 24\n", "", "(time limit on use) needs months or until"),
        ("    months: 24\n", "    months: 24\n    until: 2027-06-30\n", "needs months or until"),
        (
            "    reference: ECR-NSCR-2025-031",
            "    months: 3",
            "(ethics approval required) takes no",
        ),
    ],
)
def test_duo_parameters_must_fit_their_terms(
    tmp_path: Path, vocabulary: AgreementVocabulary, old: str, new: str, message: str
) -> None:
    assert old in TEXT
    assert message in _problems(tmp_path, vocabulary, TEXT.replace(old, new, 1))


# --- the checks, term by term, with the neighbouring case ------------------------------


def test_months_count_calendar_months_from_the_period_start() -> None:
    assert add_months(date(2026, 1, 1), 24) == date(2028, 1, 1)
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2026, 11, 15), 2) == date(2027, 1, 15)


def test_ts_allows_a_release_on_the_last_day_and_refuses_it_the_day_after(
    agreement: Agreement,
) -> None:
    assert release_unmet(agreement, LAST_DAY, NON_COMMERCIAL) is None
    unmet = release_unmet(agreement, date(2028, 1, 1), NON_COMMERCIAL)
    assert unmet is not None and unmet.shorthand == "TS" and "2027-12-31" in unmet.message
    until = _with(agreement, "DUO:0000025", months=None, until=date(2026, 11, 22))
    assert release_unmet(until, date(2026, 11, 22), NON_COMMERCIAL) is None
    unmet = release_unmet(until, date(2026, 11, 23), NON_COMMERCIAL)
    assert unmet is not None and unmet.term == "DUO:0000025"


def test_irb_needs_the_approval_reference_in_the_agreement(agreement: Agreement) -> None:
    day = date(2026, 11, 23)
    assert release_unmet(agreement, day, NON_COMMERCIAL) is None
    unapproved = _with(agreement, "DUO:0000021", reference=None)
    unmet = release_unmet(unapproved, day, NON_COMMERCIAL)
    assert unmet is not None and unmet.shorthand == "IRB" and not unmet.restricts


@pytest.mark.parametrize(
    ("term", "declared", "met"),
    [
        (NCU, (), False),
        (NCU, (DeclaredUse.NOT_FOR_PROFIT,), False),
        (NCU, (DeclaredUse.NON_COMMERCIAL,), True),
        (NPU, (DeclaredUse.NON_COMMERCIAL,), False),
        (NPU, (DeclaredUse.NOT_FOR_PROFIT,), True),
        (NPUNCU, (DeclaredUse.NON_COMMERCIAL,), False),
        (NPUNCU, (DeclaredUse.NOT_FOR_PROFIT,), False),
        (NPUNCU, tuple(DeclaredUse), True),
    ],
)
def test_ncu_and_npu_need_the_declared_use(
    agreement: Agreement, term: str, declared: tuple[DeclaredUse, ...], met: bool
) -> None:
    only = _with(_with(agreement, NCU, drop=True), term)
    unmet = release_unmet(only, date(2026, 11, 23), declared)
    assert (unmet is None) is met
    if unmet is not None:
        assert unmet.term == term and "declared_use" in unmet.message


def test_without_declared_use_terms_nothing_needs_declaring(agreement: Agreement) -> None:
    assert release_unmet(_with(agreement, NCU, drop=True), date(2026, 11, 23), ()) is None


def _by_role(agreement: Agreement) -> Agreement:
    """The agreement with any researcher of its science partners (no US): PS decides alone."""
    return _with(agreement, "DUO:0000026", drop=True).model_copy(
        update={"researchers_are": ResearcherEntitlement.ROLE}
    )


def test_ps_lets_only_the_projects_researchers_download(agreement: Agreement) -> None:
    day = date(2026, 11, 23)
    assert download_unmet(agreement, day, NSCR, "nscr", {NSCR}) is None
    unmet = download_unmet(agreement, day, HHS, "haagse-hogeschool", {NSCR})
    assert unmet is not None and unmet.shorthand == "PS" and unmet.restricts
    assert download_unmet(agreement, day, HHS, "haagse-hogeschool", {NSCR, HHS}) is None
    unrestricted = _with(agreement, "DUO:0000027", drop=True)
    assert download_unmet(unrestricted, day, HHS, "haagse-hogeschool", {NSCR}) is None


def test_us_lets_only_the_named_researchers_download(agreement: Agreement) -> None:
    day = date(2026, 11, 23)
    other = "nscr.researcher-2"
    unmet = download_unmet(agreement, day, other, "nscr", {NSCR, other})
    assert unmet is not None and unmet.shorthand == "US" and unmet.restricts
    unnamed = _with(agreement, "DUO:0000026", drop=True)
    assert download_unmet(unnamed, day, other, "nscr", {NSCR, other}) is None


def test_is_lets_only_the_science_partners_download(agreement: Agreement) -> None:
    day = date(2026, 11, 23)
    free = _with(_with(agreement, "DUO:0000026", drop=True), "DUO:0000027", drop=True)
    unmet = download_unmet(free, day, "x.researcher", "hanzehogeschool", set())
    assert unmet is not None and unmet.shorthand == "IS"
    assert download_unmet(free, day, "x.researcher", "nscr", set()) is None


def test_ts_also_ends_downloads(agreement: Agreement) -> None:
    assert download_unmet(agreement, LAST_DAY, NSCR, "nscr", {NSCR}) is None
    unmet = download_unmet(agreement, date(2028, 1, 1), NSCR, "nscr", {NSCR})
    assert unmet is not None and unmet.shorthand == "TS" and not unmet.restricts


def test_the_manifest_says_which_terms_are_enforced_and_which_attested(
    releaser: Releaser, rows: list[dict[str, Any]]
) -> None:
    made = releaser.release(rows, "duo-manifest")
    conditions = {c["shorthand"]: c for c in made.manifest["conditions"]}
    for enforced in ("TS", "PS", "US", "IS", "IRB", "NCU"):
        assert conditions[enforced]["enforcement"] == "enforced", enforced
        assert conditions[enforced]["enforced_by_gateway"]
    for attested in ("MOR", "RTN", "GRU"):
        assert conditions[attested]["enforcement"] == ATTESTED, attested
    assert conditions["GRU"]["kind"] == "permission"
    assert conditions["TS"]["use_ends"] == "2027-12-31"
    assert conditions["IRB"]["reference"] == "ECR-NSCR-2025-031"
    assert made.manifest["conditions"] == duo_checks.manifest_conditions(releaser.agreement)


# --- enforced by the release and download use cases, refusals audited (both backends) ---


def _refusals(service: Service) -> list[dict[str, Any]]:
    return [
        leaf
        for leaf in service.leaves(AuditEventType.ACCESS_REFUSE)
        if leaf["refs"].get("duo") is not None
    ]


def test_a_release_without_the_declared_use_is_refused_and_audited(service: Service) -> None:
    with pytest.raises(DuoConditionNotMetError) as info:
        release(service.ctx, CLI_ACTOR, AGREEMENT)
    assert info.value.extensions["duo"] == NCU and info.value.extensions["shorthand"] == "NCU"
    (leaf,) = _refusals(service)
    assert leaf["refs"]["refusal"] == "duo-condition-not-met"
    assert leaf["refs"]["duo"] == NCU and leaf["refs"]["agreement"] == AGREEMENT
    assert leaf["refs"]["action"] == "release"
    # declared, the release passes the DUO checks and stops at the next one (no consent)
    with pytest.raises(NoConsentingProviderError):
        release(service.ctx, CLI_ACTOR, AGREEMENT, declared_use=NON_COMMERCIAL)
    assert len(_refusals(service)) == 1


def test_a_release_after_the_time_limit_is_refused_and_audited(service: Service) -> None:
    clock: Any = service.ctx.clock
    clock.advance(datetime(2027, 12, 31, 23, 0, tzinfo=UTC) - clock.now())
    with pytest.raises(NoConsentingProviderError):  # the last day: past the DUO checks
        release(service.ctx, CLI_ACTOR, AGREEMENT, declared_use=NON_COMMERCIAL)
    clock.advance(datetime(2028, 1, 1, 0, 0, tzinfo=UTC) - clock.now())
    with pytest.raises(DuoConditionNotMetError, match="limits use to 2027-12-31"):
        release(service.ctx, CLI_ACTOR, AGREEMENT, declared_use=NON_COMMERCIAL)
    (leaf,) = _refusals(service)
    assert leaf["refs"]["shorthand"] == "TS"


def test_a_release_without_the_ethics_approval_reference_is_refused(service: Service) -> None:
    agreement = service.ctx.agreements[AGREEMENT]
    service.ctx.agreements[AGREEMENT] = _with(agreement, "DUO:0000021", reference=None)
    with pytest.raises(DuoConditionNotMetError, match="names no approval reference"):
        release(service.ctx, CLI_ACTOR, AGREEMENT, declared_use=NON_COMMERCIAL)
    (leaf,) = _refusals(service)
    assert leaf["refs"]["shorthand"] == "IRB"


def test_only_the_projects_researchers_download_and_only_until_the_time_limit(
    service: Service, released: ReleaseView, identities: list[x25519.Identity]
) -> None:
    nscr = service.caller(NSCR)  # callers authenticated now: tokens do not outlive the clock
    hhs = service.caller(HHS)
    assert bundle(service.ctx, nscr, released.id).is_file()
    assert bundle(service.ctx, hhs, released.id).is_file()  # named in the agreement
    # any researcher of the science partners may enrol (no US): the project's are the key
    # holders, and the HHS researcher holds none
    service.ctx.agreements[AGREEMENT] = _by_role(service.ctx.agreements[AGREEMENT])
    with pytest.raises(DuoUseRestrictedError) as info:
        bundle(service.ctx, hhs, released.id)
    assert info.value.extensions["shorthand"] == "PS"
    (leaf,) = _refusals(service)
    assert leaf["refs"]["refusal"] == "duo-use-restricted"
    assert leaf["refs"]["release"] == released.id and leaf["refs"]["action"] == "download"
    # the NSCR researcher whose key is revoked no longer holds one in the project
    recipients = Recipients(service.ctx)
    agreement = service.ctx.agreements[AGREEMENT]
    assert bundle(service.ctx, nscr, released.id).is_file()
    (held,) = recipients.list(nscr, agreement)
    recipients.revoke(service.caller(officer("nscr")), agreement, held.id)
    with pytest.raises(DuoUseRestrictedError):
        bundle(service.ctx, nscr, released.id)
    added = recipients.register(nscr, agreement, str(identities[1].to_public()))
    recipients.confirm(service.caller(officer("nscr")), agreement, added.id)
    assert bundle(service.ctx, nscr, released.id).is_file()
    # after the time limit nobody downloads, whatever the release's own expiry says
    clock: Any = service.ctx.clock
    clock.advance(datetime(2027, 11, 24, 12, 0, tzinfo=UTC) - clock.now())
    with pytest.raises(ReleaseExpiredError):  # its own retention (365 days) ended first
        bundle(service.ctx, nscr, released.id)
    clock.advance(datetime(2028, 1, 1, 12, 0, tzinfo=UTC) - clock.now())
    with pytest.raises(DuoConditionNotMetError):
        bundle(service.ctx, nscr, released.id)
    assert [leaf["refs"]["shorthand"] for leaf in _refusals(service)] == ["PS", "PS", "TS"]


def test_a_download_by_a_researcher_the_agreement_does_not_name_is_refused_under_us(
    service: Service, released: ReleaseView
) -> None:
    agreement = service.ctx.agreements[AGREEMENT]
    unnamed = tuple(r for r in agreement.researchers if r.principal != HHS)
    service.ctx.agreements[AGREEMENT] = agreement.model_copy(update={"researchers": unnamed})
    with pytest.raises(DuoUseRestrictedError) as info:
        bundle(service.ctx, service.caller(HHS), released.id)
    assert info.value.extensions["shorthand"] == "US"
    assert bundle(service.ctx, service.caller(NSCR), released.id).is_file()
