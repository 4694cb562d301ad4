"""The data of the brief's worked example: the signal from Smallingerland and the records
the police and the tax authority share, and the providers of the youth-network study.
Every name, number and BSN here is made up."""

from __future__ import annotations

from datetime import date
from typing import Any

GARAGE_KVK = "99123456"
YOUTH = "Jesse de Vries"
YOUTH_BSN = "111222333"
PURPOSE = "integrale-aanpak-ondermijning"

SIGNAL: dict[str, Any] = {
    "process": "casusaanpak",
    "riec": "riec-noord-nederland",
    "legal_basis": "avg-6-1-e",
    "description": (
        "Jongerenwerker: jongeren worden via een chatgroep geworven als geldezel; de "
        "groep lijkt verbonden met een scooterwerkplaats."
    ),
    "subjects": [
        {"type": "kvk", "value": GARAGE_KVK},
        {"type": "name", "value": YOUTH},
        {"type": "name", "value": "Sam Bakker"},
    ],
}

POLICE_RECORD: dict[str, Any] = {
    "category": "police-incident",
    "legal_basis": "wpg-20",
    "purposes": [PURPOSE],
    "onward": "with-provider-consent",
    "retention_days": 365,
    "fields": {
        "incident_id": "PL0100-2026-123",
        "subject_bsn": YOUTH_BSN,
        "subject_name": YOUTH,
        "birth_date": "2008-04-02",
        "postcode": "9203 AB",
        "occurred_at": "2026-10-01T21:15:00+00:00",
        "offence_code": "F-310",
        "description": "Aangehouden bij een pinautomaat met drie bankpassen van anderen.",
    },
    "summary": "Politie kent een jongere uit de chatgroep van een incident met bankpassen.",
}

FISCAL_RECORD: dict[str, Any] = {
    "category": "fiscal",
    "legal_basis": "awr-43c",
    "purposes": [PURPOSE],
    "onward": "never",
    "retention_days": 730,
    "fields": {
        "kvk": GARAGE_KVK,
        "fiscal_year": 2025,
        "turnover": 1_250_000,
        "tax_assessed": 3_100,
        "remarks": "Omzet past niet bij een werkplaats van deze omvang.",
    },
    "summary": "Opvallend hoge omzet bij lage aangifte.",
}

STUDY_PROVIDERS = (
    "gemeente-leeuwarden",
    "gemeente-groningen",
    "gemeente-smallingerland",
    "politie-noord-nederland",
    "om-noord-nederland",
    "voorbeeldbank",
    "voorbeeldtelecom",
    "riec-noord-nederland",
)
STUDY_ROWS = 4_000
STUDY_EVENTS = (date(2025, 1, 1), date(2025, 12, 31))
"""When the demo's study events happened: one year. The example agreement holds an
attacker who knows one event of a person to k; the demo's 1,200 or so people meet that
within its 5 % suppression when their events fall in one year, not over three."""
