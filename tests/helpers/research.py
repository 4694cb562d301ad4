"""The youth-network study's names, sample rows and test policy pack, shared by the research
tests (service level in tests/research, HTTP in tests/research_api)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from pyrage import x25519

from tests.conftest import POLICIES

AGREEMENT = "jeugdnetwerken-noord-nederland"
EXPIRED = "jeugdnetwerken-verlopen"
PROJECT = AGREEMENT
RIEC_INTAKE = "riec-noord-nederland.partner-system"
NSCR = "nscr.researcher"
HHS = "haagse-hogeschool.researcher"
SYNTHETIC_ROWS = 4_000
CHUNK = 1_500

PROVIDERS = (
    "gemeente-leeuwarden",
    "gemeente-groningen",
    "gemeente-smallingerland",
    "politie-noord-nederland",
    "om-noord-nederland",
    "voorbeeldbank",
    "voorbeeldtelecom",
    "riec-noord-nederland",
)


# Sample rows of one young person as three providers and a questionnaire deliver them.
POLITIE, BANK, TELECOM = "politie-noord-nederland", "voorbeeldbank", "voorbeeldtelecom"
NAME = "Wiebren Zwartbroek-Hiemstra"
BSN = "123456782"
IBAN = "NL91 ABNA 0417 1643 00"
PHONE = "06-48271936"

POLICE_ROW: dict[str, Any] = {
    "bsn": "1234.56.782",
    "name": NAME,
    "birth_date": "2008-04-02",
    "postcode": "9203 AB",
    "occurred_at": "2026-10-01T21:15:00+02:00",
    "offence": "witwassen",
    "role": "verdachte",
}
BANK_ROW: dict[str, Any] = {
    "bsn": BSN,
    "name": NAME.upper(),
    "birth_date": "2008-04-02",
    "iban": IBAN,
    "postcode": "9203AB",
    "occurred_at": "2026-09-12T10:00:00+02:00",
    "alert": "money-mule-vermoeden",
}
TELECOM_ROW: dict[str, Any] = {
    "name": NAME,
    "birth_date": "2008-04-02",
    "phone": PHONE,
    "postcode": "9203 AB",
    "occurred_at": "2026-09-20T15:00:00+02:00",
    "report": "sim-swap",
}
ANSWERS: dict[str, Any] = {
    "respondent_id": "R-000417",
    "name": NAME,
    "birth_date": "2011-06-01",
    "postcode": "9203 AB",
    "occurred_at": "2026-10-03T12:00:00+02:00",
    "consent_version": "jnn-toestemming-2026-v1",
    "consent_date": "2026-10-03",
    "parental_consent": True,
    "q_online_uren": "5+",
    "q_benaderd_voor_rekening": "ja",
    "q_kent_simswap": "nee",
    "q_slachtoffer_online": "nee",
}


def officer(partner: str) -> str:
    """Return the demo privacy officer of ``partner``."""
    return f"{partner}.privacy-officer"


def system(partner: str) -> str:
    """Return the demo partner system of ``partner`` (the RIEC's is added by the fixture)."""
    return f"{partner}.partner-system"


def write_policies(target: Path, identities: list[x25519.Identity]) -> Path:
    """Copy the shipped policy pack to ``target`` with test recipients; return its folder."""
    shutil.copytree(POLICIES, target)
    path = target / "agreements" / f"{AGREEMENT}.yaml"
    text = path.read_text(encoding="utf-8")
    keys = iter(str(i.to_public()) for i in identities)
    text = re.sub(r"recipient: age1\w+", lambda _m: f"recipient: {next(keys)}", text)
    text = text.replace("end: 2027-12-31", "end: 2099-12-31")
    path.write_text(text, encoding="utf-8")
    expired = (
        text.replace(f"id: {AGREEMENT}", f"id: {EXPIRED}")
        .replace(f"project: {AGREEMENT}", f"project: {EXPIRED}")
        .replace("start: 2026-01-01", "start: 2024-01-01")
        .replace("end: 2099-12-31", "end: 2025-12-31")
    )
    (target / "agreements" / f"{EXPIRED}.yaml").write_text(expired, encoding="utf-8")
    return target
