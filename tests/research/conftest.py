"""Fixtures for research releases: the example agreement with test recipients, keys, data."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pyrage import x25519

from gateway.keys.signing import Ed25519Signer
from gateway.research import synthetic
from gateway.research.agreements import Agreement, AgreementVocabulary, load_agreement
from gateway.research.bundle import open_bundle
from gateway.research.extract import ExtractRequest
from gateway.research.generalise import GeneralisationState
from gateway.research.release_builder import Release, make_release
from tests.conftest import POLICIES
from tests.research.doubles import FakeKeyRing

EXAMPLE = POLICIES / "agreements" / "jeugdnetwerken-noord-nederland.yaml"
RELEASE_AT = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
SYNTHETIC_ROWS = 6_000


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
    return list(synthetic.rows(SYNTHETIC_ROWS, seed=2026))


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
