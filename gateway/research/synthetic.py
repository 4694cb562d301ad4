"""A seeded generator of realistic synthetic people and events for the youth-network study.

Nobody in this data exists. BSNs pass the 11-test (and are unique), IBANs have valid
mod-97 check digits (with the fake bank code ``VBNK``), mobile numbers are ``06``
numbers, postcodes lie in Friesland and Groningen (most in Leeuwarden 8911-8941,
Groningen 9711-9747 and Smallingerland 9200-9209). Most people are youngsters born
2005-2011. One person appears at several providers (gemeente, politie, OM, bank,
telecom, questionnaire), each spelling identifiers its own way, so pipelines must
normalise before they pseudonymise. Free-text fields mention names on purpose: they
must never reach an extract.

``rows()`` is a generator: a million rows never sit in memory.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from gateway.research.agreements import Agreement

QUESTIONNAIRE_CONSENT_VERSION = "jnn-toestemming-2026-v1"
DATA_START = date(2024, 1, 1)
DATA_END = date(2026, 10, 31)

FIRST_NAMES = (
    "Daan",
    "Sem",
    "Lucas",
    "Levi",
    "Finn",
    "Milan",
    "Jesse",
    "Bram",
    "Thijs",
    "Noah",
    "Luuk",
    "Ruben",
    "Sven",
    "Jayden",
    "Mohamed",
    "Rayan",
    "Sietse",
    "Wytse",
    "Jelle",
    "Hidde",
    "Tjeerd",
    "Sjoerd",
    "Emma",
    "Julia",
    "Sophie",
    "Tess",
    "Mila",
    "Sara",
    "Lotte",
    "Fenna",
    "Anna",
    "Eva",
    "Noor",
    "Yara",
    "Fatima",
    "Sanne",
    "Femke",
    "Sytske",
    "Baukje",
    "Jildou",
    "Marrit",
    "Anouk",
    "Jan",
    "Pieter",
    "Klaas",
    "Hendrik",
    "Gerrit",
    "Wiebe",
    "Anke",
    "Ingrid",
    "Marije",
    "Hiltsje",
    "Dirk",
    "Ümit",
    "Zeynep",
)
LAST_NAMES = (
    "de Vries",
    "de Jong",
    "Jansen",
    "Bakker",
    "Visser",
    "Smit",
    "Meijer",
    "Mulder",
    "de Boer",
    "Dijkstra",
    "Bosma",
    "Hoekstra",
    "van der Meer",
    "Postma",
    "Wiersma",
    "Kuipers",
    "Veenstra",
    "Brouwer",
    "Hofstra",
    "Zijlstra",
    "de Haan",
    "Kooistra",
    "van Dijk",
    "Sikkema",
    "Terpstra",
    "Huisman",
    "Jongsma",
    "Bouma",
    "Haagsma",
    "Yilmaz",
    "El Amrani",
    "Bulut",
    "Wolters",
    "Nijboer",
    "Schaafsma",
    "van 't Hof",
    "Boersma",
    "Hielkema",
    "Tuinstra",
    "Koopmans",
    "Groen",
    "Oosterhof",
    "Faber",
)
STUDY_AREAS = (  # (municipality, first PC4, last PC4, weight)
    ("Leeuwarden", 8911, 8941, 35),
    ("Groningen", 9711, 9747, 40),
    ("Smallingerland", 9200, 9209, 25),
)
GEMEENTE_PROVIDER = {
    "Leeuwarden": "gemeente-leeuwarden",
    "Groningen": "gemeente-groningen",
    "Smallingerland": "gemeente-smallingerland",
}
OFFENCES = (
    "oplichting",
    "witwassen",
    "computervredebreuk",
    "phishing",
    "heling",
    "diefstal",
    "bedreiging",
    "drugshandel",
    "identiteitsfraude",
)
ROLES = ("verdachte", "verdachte", "slachtoffer", "getuige")
OUTCOMES = ("sepot", "transactie", "strafbeschikking", "taakstraf", "jeugddetentie", "vrijspraak")
ALERTS = ("money-mule-vermoeden", "rekening-geblokkeerd", "ongebruikelijke-transactie")
REPORTS = ("sim-swap", "nummerporting-fraude", "esim-overname")
REGISTRATIONS = ("jeugdhulp", "leerplicht-verzuim", "halt-afdoening", "jongerenwerk-contact")
ONLINE_HOURS = ("0-1", "1-3", "3-5", "5+")
YES_NO = ("ja", "nee")
YES_NO_UNKNOWN = ("ja", "nee", "weet niet")
_LETTERS = "ABCDEFGHJKLMNPRSTVWXZ"
_BSN_PREFIX_SPACE = 10**8
_BSN_STRIDE = 1 << 24  # up to 16.7 million people, five candidate prefixes each
_BSN_MULTIPLIER = 48_271_171  # odd and not divisible by 5: a bijection on 8-digit prefixes
_CET = timezone(timedelta(hours=1))


@dataclass(frozen=True, slots=True)
class SyntheticPerson:
    """One made-up person with every identifier a provider might know."""

    index: int
    bsn: str
    first_name: str
    last_name: str
    birth_date: date
    postcode: str
    municipality: str
    iban: str
    phone: str

    @property
    def name(self) -> str:
        """The full name, e.g. ``Sietse de Vries``."""
        return f"{self.first_name} {self.last_name}"


def bsn_for(index: int) -> str:
    """Return a unique BSN for person ``index`` that passes the 11-test."""
    if not 0 <= index < _BSN_STRIDE - 1:
        raise ValueError("person index out of range")
    for attempt in range(5):
        # index + 1 keeps the prefix non-zero; distinct (index, attempt) give distinct prefixes
        position = index + 1 + attempt * _BSN_STRIDE
        prefix = (position * _BSN_MULTIPLIER) % _BSN_PREFIX_SPACE
        digits = f"{prefix:08d}"
        total = sum(int(d) * w for d, w in zip(digits, range(9, 1, -1), strict=True))
        check = total % 11
        if check < 10:
            return digits + str(check)
    raise ValueError("no valid BSN for this index")  # (1/11)^5: never seen in practice


def iban_for(bank: str, account: int) -> str:
    """Return the Dutch IBAN of a 4-letter bank code and a 10-digit account number."""
    bban = f"{bank}{account:010d}"
    number = int("".join(str(int(c, 36)) for c in bban + "NL00"))
    return f"NL{98 - number % 97:02d}{bban}"


def _postcode(rng: random.Random) -> tuple[str, str]:
    if rng.random() < 0.85:
        name, low, high, _ = rng.choices(STUDY_AREAS, weights=[a[3] for a in STUDY_AREAS])[0]
        number = rng.randint(low, high)
    else:
        name, number = "", rng.choice((rng.randint(8400, 9199), rng.randint(9210, 9999)))
    while True:
        letters = rng.choice(_LETTERS) + rng.choice(_LETTERS)
        if letters not in {"SA", "SD", "SS"}:
            return f"{number}{letters}", name


def person(rng: random.Random, index: int) -> SyntheticPerson:
    """Return person ``index``, drawing every other attribute from ``rng``."""
    young = rng.random() < 0.7
    year = rng.randint(2005, 2011) if young else rng.randint(1960, 2004)
    born = date(year, 1, 1) + timedelta(days=rng.randrange(365))
    postcode, municipality = _postcode(rng)
    return SyntheticPerson(
        index=index,
        bsn=bsn_for(index),
        first_name=rng.choice(FIRST_NAMES),
        last_name=rng.choice(LAST_NAMES),
        birth_date=born,
        postcode=postcode,
        municipality=municipality,
        iban=iban_for("VBNK", rng.randrange(10**10)),
        phone=f"06{rng.randrange(10**8):08d}",
    )


def _bsn_spelling(rng: random.Random, bsn: str) -> str:
    return bsn if rng.random() < 0.8 else f"{bsn[:4]}.{bsn[4:6]}.{bsn[6:]}"


def _postcode_spelling(rng: random.Random, postcode: str) -> str:
    roll = rng.random()
    if roll < 0.5:
        return f"{postcode[:4]} {postcode[4:]}"
    return postcode if roll < 0.9 else postcode.lower()


def _phone_spelling(rng: random.Random, phone: str) -> str:
    return rng.choice((phone, f"{phone[:2]}-{phone[2:]}", f"+31 6 {phone[2:6]} {phone[6:]}"))


def _iban_spelling(rng: random.Random, iban: str) -> str:
    if rng.random() < 0.5:
        return iban
    return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))


def _broken_bsn(bsn: str) -> str:
    last = (int(bsn[-1]) + 1) % 10
    return bsn[:-1] + str(last)  # changing one digit always fails the 11-test


def _moment(rng: random.Random, start: date, end: date) -> str:
    day = start + timedelta(days=rng.randrange((end - start).days + 1))
    at = datetime(day.year, day.month, day.day, rng.randrange(24), rng.randrange(60), tzinfo=_CET)
    return at.isoformat()


def _age_on(born: date, day: date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def events(
    rng: random.Random, p: SyntheticPerson, *, start: date, end: date, invalid_share: float
) -> list[dict[str, Any]]:
    """Return the rows that the providers hold about person ``p``."""
    young = p.birth_date.year >= 2005
    count = 1
    while count < 12 and rng.random() < (0.72 if young else 0.55):
        count += 1
    kinds = ["police", "gemeente", "bank", "telecom", "om", "questionnaire", "fiscal"]
    weights = [30, 20 if p.municipality else 0, 15, 15, 8, 12 if young else 0, 1]
    out: list[dict[str, Any]] = []
    answered = False
    for _ in range(count):
        kind = rng.choices(kinds, weights=weights)[0]
        if kind == "questionnaire" and answered:
            kind = "police"
        at = _moment(rng, start, end)
        bsn = _bsn_spelling(rng, p.bsn)
        if rng.random() < invalid_share:
            bsn = _broken_bsn(p.bsn)
        base = {"name": p.name, "birth_date": p.birth_date.isoformat(), "occurred_at": at}
        if kind == "police":
            out.append(
                {
                    **base,
                    "provider": "politie-noord-nederland",
                    "category": "research-incident",
                    "bsn": bsn,
                    "postcode": _postcode_spelling(rng, p.postcode),
                    "offence": rng.choice(OFFENCES),
                    "role": rng.choice(ROLES),
                    "notes": f"Melding wijkagent: {p.name} gezien bij scooterwerkplaats, "
                    f"tel. {p.phone}, rekening {p.iban}",
                }
            )
        elif kind == "om":
            out.append(
                {
                    **base,
                    "provider": "om-noord-nederland",
                    "category": "research-om-case",
                    "bsn": bsn,
                    "offence": rng.choice(OFFENCES),
                    "outcome": rng.choice(OUTCOMES),
                    "notes": f"Parketnummer 18/{rng.randrange(10**6):06d}, verdachte {p.name}",
                }
            )
        elif kind == "gemeente":
            out.append(
                {
                    **base,
                    "provider": GEMEENTE_PROVIDER[p.municipality],
                    "category": "youth-registration",
                    "bsn": bsn,
                    "postcode": _postcode_spelling(rng, p.postcode),
                    "registration": rng.choice(REGISTRATIONS),
                }
            )
        elif kind == "bank":
            out.append(
                {
                    **base,
                    "name": p.name.upper(),
                    "provider": "voorbeeldbank",
                    "category": "money-mule-alert",
                    "bsn": bsn,
                    "iban": _iban_spelling(rng, p.iban),
                    "postcode": _postcode_spelling(rng, p.postcode),
                    "alert": rng.choice(ALERTS),
                    "notes": f"Rekeninghouder {p.name.upper()} ontving 14 overboekingen",
                }
            )
        elif kind == "telecom":
            out.append(
                {
                    **base,
                    "provider": "voorbeeldtelecom",
                    "category": "sim-swap",
                    "phone": _phone_spelling(rng, p.phone),
                    "postcode": _postcode_spelling(rng, p.postcode),
                    "report": rng.choice(REPORTS),
                }
            )
        elif kind == "questionnaire":
            answered = True
            day = date.fromisoformat(at[:10])
            minor = _age_on(p.birth_date, day) < 16
            out.append(
                {
                    **base,
                    "provider": "riec-noord-nederland",
                    "category": "questionnaire",
                    "respondent_id": f"R{p.index:07d}",
                    "postcode": _postcode_spelling(rng, p.postcode),
                    "consent_version": QUESTIONNAIRE_CONSENT_VERSION,
                    "consent_date": day.isoformat(),
                    "parental_consent": (rng.random() < 0.9) if minor else None,
                    "consent_withdrawn": rng.random() < 0.03,
                    "q_online_uren": rng.choice(ONLINE_HOURS),
                    "q_benaderd_voor_rekening": rng.choice(YES_NO),
                    "q_kent_simswap": rng.choice(YES_NO_UNKNOWN),
                    "q_slachtoffer_online": rng.choice(YES_NO),
                    "q_toelichting": f"Een vriend van {p.first_name} vroeg om zijn pinpas",
                }
            )
        else:
            out.append(
                {
                    **base,
                    "provider": "belastingdienst",
                    "category": "fiscal",
                    "bsn": bsn,
                    "amount": rng.randrange(100, 100_000),
                }
            )
    return out


def rows(
    n_rows: int,
    *,
    seed: int = 2026,
    start: date = DATA_START,
    end: date = DATA_END,
    invalid_share: float = 0.002,
) -> Iterator[dict[str, Any]]:
    """Yield ``n_rows`` synthetic provider rows, person after person; same seed, same rows.

    Each row is a dict with ``provider`` and ``category`` plus the fields that provider
    delivers (identifiers spelled as that provider would). About ``invalid_share`` of
    the BSNs are mistyped (they fail the 11-test), as in real registrations.
    """
    rng = random.Random(seed)  # noqa: S311  (synthetic data, not secrets)
    produced, index = 0, 0
    while produced < n_rows:
        p = person(rng, index)
        index += 1
        for row in events(rng, p, start=start, end=end, invalid_share=invalid_share):
            yield row
            produced += 1
            if produced == n_rows:
                return


@dataclass(frozen=True, slots=True)
class Submission:
    """The rows one provider sends through one instrument, as it would send them."""

    provider: str
    instrument: str
    rows: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class ProviderDeliveries:
    """Synthetic rows sorted into what each provider submits, and who withdrew afterwards."""

    submissions: list[Submission]
    withdrawn_respondents: list[str]


def as_providers_deliver(
    agreement: Agreement, generated: Iterable[dict[str, Any]]
) -> ProviderDeliveries:
    """Return the synthetic rows as each provider would submit them under ``agreement``.

    Only the instrument's fields are sent (questionnaires add their consent fields);
    rows of partners outside the agreement and questionnaire answers below the
    instrument's age without parental consent are not sent; respondents who withdrew
    are listed, to be withdrawn after the intake.
    """
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    withdrawn: list[str] = []
    for row in generated:
        instrument = agreement.instrument_for(row["provider"], row["category"])
        if instrument is None:
            continue
        accepted = set(instrument.fields)
        if instrument.consent_text_version is not None:
            accepted |= {"consent_version", "consent_date", "parental_consent"}
            if row.get("consent_withdrawn"):
                withdrawn.append(row["respondent_id"])
            born = date.fromisoformat(row["birth_date"])
            if (
                _age_on(born, date.fromisoformat(row["consent_date"]))
                < instrument.parental_consent_below
                and row.get("parental_consent") is not True
            ):
                continue
        groups.setdefault((row["provider"], instrument.id), []).append(
            {k: v for k, v in row.items() if k in accepted and v is not None}
        )
    return ProviderDeliveries(
        submissions=[Submission(p, i, rows) for (p, i), rows in sorted(groups.items())],
        withdrawn_respondents=withdrawn,
    )
