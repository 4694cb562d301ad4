"""Fixtures for research releases: the example agreement with test recipients, keys, data."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pyrage import x25519
from sqlalchemy import func
from sqlmodel import SQLModel, col, select

from gateway.app import build_context
from gateway.audit.events import AuditEventType
from gateway.clock import FixedClock
from gateway.config import Settings
from gateway.context import AppContext
from gateway.db import Database
from gateway.demo_data import STUDY_EVENTS
from gateway.identity.service import CLI_ACTOR, Caller, authenticate
from gateway.keys.signing import Ed25519Signer
from gateway.models.audit import AuditEntry
from gateway.research import synthetic
from gateway.research.agreements import Agreement, AgreementVocabulary, load_agreement
from gateway.research.bundle import open_bundle
from gateway.research.consent_states import ConsentDecision
from gateway.research.duo import DeclaredUse
from gateway.research.extract import ExtractRequest
from gateway.research.generalise import GeneralisationState
from gateway.research.recipients import Recipients
from gateway.research.release_builder import Release, make_release
from gateway.research.service.consent import record_consent
from gateway.research.service.release import release
from gateway.research.service.results import ReleaseView
from gateway.research.service.rows import submit_rows
from gateway.research.service.withdrawal import withdraw
from tests.conftest import POLICIES, demo_partners
from tests.helpers.research import (
    AGREEMENT,
    NSCR,
    PROVIDERS,
    RIEC_INTAKE,
    officer,
    system,
    write_policies,
)
from tests.research.doubles import FakeKeyRing

EXAMPLE = POLICIES / "agreements" / "jeugdnetwerken-noord-nederland.yaml"
RELEASE_AT = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
SYNTHETIC_ROWS = 6_000
NON_COMMERCIAL = (DeclaredUse.NON_COMMERCIAL,)
"""What a release of the study declares: its DUO condition NCU needs it."""


@pytest.fixture(scope="session")
def vocabulary() -> AgreementVocabulary:
    """The shipped vocabulary, as agreements see it."""
    return AgreementVocabulary.from_policies(POLICIES)


@pytest.fixture(scope="session")
def identities() -> list[x25519.Identity]:
    """One fresh age identity per researcher of the example agreement."""
    return [x25519.Identity.generate() for _ in range(3)]


@pytest.fixture(scope="session")
def agreement(vocabulary: AgreementVocabulary, identities: list[x25519.Identity]) -> Agreement:
    """The example agreement, its recipients replaced in memory by the test identities."""
    loaded = load_agreement(EXAMPLE, vocabulary)
    return loaded.with_recipients([str(i.to_public()) for i in identities])


@pytest.fixture(scope="session")
def rows() -> list[dict[str, Any]]:
    """A few thousand synthetic provider rows (seed 2026)."""
    start, end = STUDY_EVENTS  # one year: a small population meets k against one event
    return list(synthetic.rows(SYNTHETIC_ROWS, seed=2026, start=start, end=end))


@pytest.fixture
def ring() -> FakeKeyRing:
    """A key ring double holding one pseudonymisation secret per project."""
    return FakeKeyRing()


@pytest.fixture(scope="session")
def signer() -> Ed25519Signer:
    """The gateway's manifest signing key for this test session."""
    return Ed25519Signer.generate()


@dataclass
class Opened:
    """A released bundle and its decrypted files."""

    release: Release
    folder: Path

    @property
    def csv_text(self) -> str:
        """The decrypted CSV file's text."""
        return (self.folder / "data.csv").read_text(encoding="utf-8")


def csv_rows(opened: Opened) -> list[dict[str, str]]:
    """Return the rows of a released bundle's decrypted CSV file."""
    return list(csv.DictReader(io.StringIO(opened.csv_text)))


@dataclass
class Releaser:
    """Makes releases of the example agreement into one folder and opens them."""

    agreement: Agreement
    ring: FakeKeyRing
    signer: Ed25519Signer
    identity: x25519.Identity
    out: Path

    def release(
        self,
        rows: Any,
        release_id: str,
        *,
        agreement: Agreement | None = None,
        consenting: frozenset[str] | None = None,
        withdrawn: frozenset[str] = frozenset(),
        state: GeneralisationState | None = None,
        at: datetime = RELEASE_AT,
        seed: bytes | None = None,
    ) -> Release:
        """Release ``rows`` (an iterable of rows) and return the release."""
        chosen = agreement or self.agreement
        request = ExtractRequest(
            agreement=chosen,
            release_id=release_id,
            at=at,
            policy_version="policy-test-1",
            consenting_providers=chosen.provider_ids if consenting is None else consenting,
            withdrawn_respondents=withdrawn,
            state=state,
            shuffle_seed=seed,
        )
        return make_release(
            request,
            iter(rows),
            pseudonymiser=self.ring.pseudonymiser(chosen.project),
            signer=self.signer,
            out_dir=self.out,
        )

    def open(self, release: Release) -> Opened:
        """Verify and decrypt ``release`` with the first researcher's identity."""
        folder = self.out / f"opened-{release.manifest['release']['id']}"
        open_bundle(release.bundle, self.signer.public_key, [self.identity], folder)
        return Opened(release, folder)


@pytest.fixture
def releaser(
    agreement: Agreement,
    ring: FakeKeyRing,
    signer: Ed25519Signer,
    identities: list[x25519.Identity],
    tmp_path: Path,
) -> Releaser:
    """Releases of the example agreement into this test's folder."""
    return Releaser(agreement, ring, signer, identities[0], tmp_path / "releases")


@dataclass
class Service:
    """The research use cases on a test database with the demo partners, called directly."""

    ctx: AppContext
    tokens: dict[str, str]

    def caller(self, who: str) -> Caller:
        """Return the authenticated caller of the demo principal ``who``."""
        with self.ctx.db.read() as session:
            return authenticate(session, self.tokens[who], self.ctx.clock)

    def leaves(self, event_type: AuditEventType) -> list[dict[str, Any]]:
        """Return the leaf documents of the audit entries of ``event_type``, in order."""
        with self.ctx.db.read() as session:
            rows = session.exec(
                select(AuditEntry)
                .where(AuditEntry.event_type == event_type.value)
                .order_by(col(AuditEntry.leaf_index))
            ).all()
        return [json.loads(r.leaf) for r in rows]

    def count(self, table: type[SQLModel]) -> int:
        """Return how many rows ``table`` holds."""
        with self.ctx.db.read() as session:
            return int(session.exec(select(func.count()).select_from(table)).one())

    def consent(self, *providers: str) -> None:
        """Each of ``providers`` consents through its privacy officer."""
        for provider in providers:
            record_consent(
                self.ctx, self.caller(officer(provider)), AGREEMENT, ConsentDecision.CONSENT, None
            )

    def deliver(self, rows: list[dict[str, Any]]) -> int:
        """Submit synthetic rows as the providers would, then the withdrawals; return the count."""
        deliveries = synthetic.as_providers_deliver(self.ctx.agreements[AGREEMENT], rows)
        stored = 0
        for n, submission in enumerate(deliveries.submissions):
            caller = self.caller(system(submission.provider))
            stored += submit_rows(
                self.ctx,
                caller,
                AGREEMENT,
                f"synthetic-{n:04d}",
                submission.instrument,
                submission.rows,
            ).rows
        intake = self.caller(RIEC_INTAKE)
        for respondent in deliveries.withdrawn_respondents:
            withdraw(self.ctx, intake, AGREEMENT, respondent)
        return stored

    def enrol(self, identity: x25519.Identity) -> None:
        """Register the NSCR researcher's key; the NSCR privacy officer confirms it."""
        recipients = Recipients(self.ctx)
        agreement = self.ctx.agreements[AGREEMENT]
        added = recipients.register(self.caller(NSCR), agreement, str(identity.to_public()))
        recipients.confirm(self.caller(officer("nscr")), agreement, added.id)


@pytest.fixture
def service(
    settings: Settings,
    database: Database,
    clock: FixedClock,
    tmp_path: Path,
    identities: list[x25519.Identity],
    request: pytest.FixtureRequest,
) -> Service:
    """The study's agreement (test recipients, period to 2099) on the test database."""
    policies = write_policies(tmp_path / "policies", identities)
    study_settings = Settings(
        **{
            **settings.model_dump(),
            "policies_dir": policies,
            "releases_dir": tmp_path / "releases",
        }
    )
    issued = demo_partners(request, study_settings, database, clock)
    return Service(build_context(study_settings, clock=clock, db=database), dict(issued))


@pytest.fixture
def released(
    service: Service, rows: list[dict[str, Any]], identities: list[x25519.Identity]
) -> ReleaseView:
    """The study after every provider consented, delivered and the NSCR key was confirmed,
    and one release made by the host's CLI actor."""
    service.consent(*PROVIDERS)
    service.deliver(rows)
    service.enrol(identities[0])
    return release(service.ctx, CLI_ACTOR, AGREEMENT, declared_use=NON_COMMERCIAL)
