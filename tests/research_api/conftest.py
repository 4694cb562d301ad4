"""Fixtures for research through the API: the example agreement with test keys, and a study.

The policy pack is copied so that the example agreement's researchers get age keys whose
identities the tests hold, and its period runs to 2099 (so tests that use the real clock
do not expire). A second agreement, ``jeugdnetwerken-verlopen``, ended in 2025.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from pyrage import x25519

from gateway.demo_data import STUDY_EVENTS
from gateway.keys import KeyRing
from gateway.research import synthetic
from gateway.research.agreements import Agreement, AgreementVocabulary, load_agreement
from gateway.research.bundle import open_bundle
from tests.conftest import Gateway
from tests.helpers.research import (
    AGREEMENT,
    CHUNK,
    EXPIRED,
    HHS,
    NSCR,
    PROJECT,
    PROVIDERS,
    RIEC_INTAKE,
    SYNTHETIC_ROWS,
    officer,
    system,
    write_policies,
)

__all__ = [
    "AGREEMENT",
    "CHUNK",
    "EXPIRED",
    "HHS",
    "NSCR",
    "PROJECT",
    "PROVIDERS",
    "RIEC_INTAKE",
    "Opened",
    "Study",
    "officer",
    "system",
]


@pytest.fixture(scope="session")
def identities() -> list[x25519.Identity]:
    """One age identity per researcher of the example agreement."""
    return [x25519.Identity.generate() for _ in range(3)]


@pytest.fixture
def settings(settings: Any, tmp_path: Path, identities: list[x25519.Identity]) -> Any:
    """The shared test settings with the copied pack, a releases folder and a 1 MiB body limit."""
    policies = write_policies(tmp_path / "policies", identities)
    return type(settings)(
        **{
            **settings.model_dump(),
            "policies_dir": policies,
            "releases_dir": tmp_path / "releases",
            "max_body_bytes": 1_048_576,
        }
    )


@pytest.fixture(scope="session")
def synthetic_rows() -> list[dict[str, Any]]:
    """Synthetic provider rows (seed 2026) as generated, before a provider cleans them."""
    start, end = STUDY_EVENTS
    return list(synthetic.rows(SYNTHETIC_ROWS, seed=2026, start=start, end=end))


@dataclass
class Opened:
    """A downloaded and decrypted release."""

    manifest: dict[str, Any]
    rows: list[dict[str, str]]

    def pseudonyms(self, column: str, **where: str) -> set[str]:
        """Return the values of ``column`` in the rows matching ``where``."""
        return {
            r[column] for r in self.rows if r[column] and all(r[k] == v for k, v in where.items())
        }


@dataclass
class Study:
    """The youth-network study driven through the API of one test gateway."""

    gw: Gateway
    identities: list[x25519.Identity]
    tmp: Path
    keys: int = 0
    withdrawn: list[str] = field(default_factory=list)
    enrolled: set[str] = field(default_factory=set)

    # -- HTTP helpers -----------------------------------------------------------------

    def call(self, who: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send a request as the demo principal ``who``."""
        headers = {**self.gw.auth(who), **kwargs.pop("headers", {})}
        return self.gw.client.request(method, path, headers=headers, **kwargs)

    def ok(self, who: str, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request that must succeed; return its JSON."""
        response = self.call(who, method, path, **kwargs)
        assert response.status_code in (200, 201), response.text
        return response.json()

    def consent(self, provider: str, decision: str = "consent", agreement: str = AGREEMENT) -> Any:
        """Record ``provider``'s decision through its privacy officer."""
        return self.ok(
            officer(provider),
            "POST",
            f"/v1/research/agreements/{agreement}/consents",
            json={"decision": decision},
        )

    def consent_all(self, agreement: str = AGREEMENT) -> None:
        """Every provider of the agreement consents."""
        for provider in PROVIDERS:
            self.consent(provider, agreement=agreement)

    def submit(
        self,
        who: str,
        instrument: str,
        rows: list[dict[str, Any]],
        *,
        key: str | None = None,
        agreement: str = AGREEMENT,
    ) -> httpx.Response:
        """Submit rows of one instrument; return the response."""
        self.keys += 1
        return self.call(
            who,
            "POST",
            f"/v1/research/agreements/{agreement}/rows",
            json={"instrument": instrument, "rows": rows},
            headers={"Idempotency-Key": key or f"intake-{self.keys:08d}"},
        )

    def enrol(self, who: str, recipient: str, agreement: str = AGREEMENT) -> dict[str, Any]:
        """Register a researcher's key and have their partner's privacy officer confirm it."""
        added = self.ok(
            who,
            "POST",
            f"/v1/research/agreements/{agreement}/recipients",
            json={"recipient": recipient},
        )
        partner = who.split(".", 1)[0]
        confirmed: dict[str, Any] = self.ok(
            officer(partner),
            "POST",
            f"/v1/research/agreements/{agreement}/recipients/{added['id']}/confirm",
        )
        return confirmed

    def enrol_all(self, agreement: str = AGREEMENT) -> None:
        """Enrol the NSCR researcher's key (the first identity); the demo HHS has no officer."""
        self.enrol(NSCR, str(self.identities[0].to_public()), agreement)
        self.enrolled.add(agreement)

    def release(
        self,
        who: str = NSCR,
        agreement: str = AGREEMENT,
        declared_use: tuple[str, ...] = ("non-commercial",),
    ) -> httpx.Response:
        """Ask for a release (the researchers' keys are enrolled before the first one).

        The request declares non-commercial use, as the study's DUO condition NCU needs.
        """
        if agreement in (AGREEMENT, EXPIRED) and agreement not in self.enrolled:
            self.enrol_all(agreement)
        return self.call(
            who,
            "POST",
            f"/v1/research/agreements/{agreement}/releases",
            json={"declared_use": list(declared_use)},
        )

    def released(self, who: str = NSCR) -> dict[str, Any]:
        """Ask for a release that must succeed; return its record."""
        response = self.release(who)
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    def download(self, release_id: str, who: str = NSCR) -> Path:
        """Download a release's bundle into the test folder; return its path."""
        response = self.call(who, "GET", f"/v1/research/releases/{release_id}/bundle")
        assert response.status_code == 200, response.text
        path = self.tmp / "downloads" / f"{release_id}.tar"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(response.content)
        return path

    def open(self, release_id: str) -> Opened:
        """Download, verify and decrypt a release with the first researcher's identity."""
        bundle = self.download(release_id)
        folder = self.tmp / "opened" / release_id
        open_bundle(bundle, self.signing_key(), [self.identities[0]], folder)
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        text = (folder / "data.csv").read_text(encoding="utf-8")
        return Opened(manifest, list(csv.DictReader(io.StringIO(text))))

    def signing_key(self) -> bytes:
        """Return the gateway's active signing public key, as published by the API."""
        keys = self.ok(NSCR, "GET", "/v1/keys/signing")["keys"]
        active = next(k for k in keys if k["active"])
        return base64.b64decode(active["public_key"])

    # -- the study's data -------------------------------------------------------------

    def pseudonymiser(self) -> Any:
        """The project's pseudonymiser, from the gateway's own key ring (for expectations)."""
        return KeyRing.open(self.gw.settings, clock=self.gw.clock).pseudonymiser(PROJECT)

    def agreement(self) -> Agreement:
        """The agreement as the test gateway loaded it."""
        policies = self.gw.settings.policies_dir
        return load_agreement(
            policies / "agreements" / f"{AGREEMENT}.yaml",
            AgreementVocabulary.from_policies(policies),
        )

    def submit_synthetic(self, rows: list[dict[str, Any]]) -> dict[str, int]:
        """Submit synthetic rows as each provider would: only agreed fields, consent given.

        Rows of partners outside the agreement are not sent; questionnaire rows without
        the consent they need are not sent; respondents who withdrew are withdrawn through
        the API afterwards. Returns how many rows each instrument stored.
        """
        deliveries = synthetic.as_providers_deliver(self.agreement(), rows)
        stored: dict[str, int] = defaultdict(int)
        for submission in deliveries.submissions:
            who = system(submission.provider)
            for start in range(0, len(submission.rows), CHUNK):
                chunk = submission.rows[start : start + CHUNK]
                response = self.submit(who, submission.instrument, chunk)
                assert response.status_code == 201, response.text
                stored[submission.instrument] += response.json()["rows"]
        withdrawn = deliveries.withdrawn_respondents
        for respondent in withdrawn:
            self.withdraw(respondent)
        self.withdrawn += withdrawn
        return dict(stored)

    def withdraw(self, respondent: str, who: str = RIEC_INTAKE) -> Any:
        """Record a respondent's withdrawal through the questionnaire's intake partner."""
        return self.ok(
            who,
            "POST",
            f"/v1/research/agreements/{AGREEMENT}/withdrawals",
            json={"respondent_id": respondent},
        )


@pytest.fixture
def study(gateway: Gateway, identities: list[x25519.Identity], tmp_path: Path) -> Study:
    """The study on a fresh gateway (the RIEC's partner system takes the questionnaires in)."""
    return Study(gateway, identities, tmp_path)


@pytest.fixture
def cli_env(study: Study, monkeypatch: pytest.MonkeyPatch) -> Study:
    """The environment of a gateway host pointing at the test gateway's store and keys."""
    for name in list(os.environ):
        if name.startswith("GATEWAY_"):
            monkeypatch.delenv(name)
    settings = study.gw.settings
    monkeypatch.setenv("GATEWAY_DATABASE_URL", str(settings.database_url))
    monkeypatch.setenv("GATEWAY_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("GATEWAY_KEYS_DIR", str(settings.keys_dir))
    monkeypatch.setenv("GATEWAY_POLICIES_DIR", str(settings.policies_dir))
    monkeypatch.setenv("GATEWAY_RELEASES_DIR", str(settings.resolved_releases_dir))
    return study
