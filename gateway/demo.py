"""The worked example of the brief, played against a running gateway over HTTP.

A youth worker in Smallingerland reports teenagers recruited as money mules through a
chat group, linked to a scooter garage. The case goes through all seven steps; at each
step the demo prints what every partner sent and what each one could see. Then the
youth-network study makes one research release: the providers' privacy officers
consent, the providers deliver synthetic rows (pseudonymised on arrival), a researcher
of the NSCR asks for the release, downloads it and verifies its signature, checksums
and inclusion in the audit log. Only the gateway's public API is used, with tokens the
demo minted for the demo principals.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from rich.console import Console

from gateway import atomicfile
from gateway.audit.ldv import GATEWAY_NS
from gateway.clock import SystemClock
from gateway.demo_data import (
    FISCAL_RECORD,
    GARAGE_KVK,
    POLICE_RECORD,
    PURPOSE,
    SIGNAL,
    STUDY_EVENTS,
    STUDY_PROVIDERS,
    STUDY_ROWS,
    YOUTH,
    YOUTH_BSN,
)
from gateway.keys import age
from gateway.research import synthetic
from gateway.research.agreements import Agreement
from gateway.research.bundle import verify_bundle
from gateway.research.inclusion import ReleaseInclusion
from gateway.research.opening import open_release
from gateway.workflow.steps import Step

GEMEENTE = "gemeente-smallingerland.partner-system"
POLITIE = "politie-noord-nederland.partner-system"
OM = "om-noord-nederland.partner-system"
BELASTING = "belastingdienst.partner-system"
RIEC = "riec-noord-nederland.riec-analyst"
BANK = "voorbeeldbank.partner-system"
RIEC_PO = "riec-noord-nederland.privacy-officer"
RESEARCHER = "nscr.researcher"
RESEARCHER_PO = "nscr.privacy-officer"
RESEARCHER_KEY = "researcher.key"
SHOWN_ROWS = 3
AGREEMENT = "jeugdnetwerken-noord-nederland"
UPLOAD_CHUNK = 100  # rows per request, well under any body limit of 64 KiB or more
PRINCIPALS = tuple(
    dict.fromkeys(
        (
            GEMEENTE,
            POLITIE,
            OM,
            BELASTING,
            RIEC,
            BANK,
            RIEC_PO,
            RESEARCHER,
            RESEARCHER_PO,
            *(f"{p}.privacy-officer" for p in STUDY_PROVIDERS),
            *(f"{p}.partner-system" for p in STUDY_PROVIDERS),
        )
    )
)

LOG_FACTS = (("stap", "step"), ("doel", "purpose"), ("grondslag", "legal_basis"))
"""The processing-log attributes the demo names, with their Dutch labels (absent ones left out)."""


def shorten_fields(fields: dict[str, Any], *, width: int = 110, value_width: int = 32) -> str:
    """Return ``fields`` as ``name: value`` pairs for a person to read, within ``width``.

    A long value ends in an ellipsis and fields that do not fit are counted, so no value
    is ever cut off without saying so.
    """
    parts: list[str] = []
    used = 0
    for position, (name, value) in enumerate(fields.items()):
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        if len(text) > value_width:
            text = text[: value_width - 1] + "…"
        part = f"{name}: {text}"
        left = len(fields) - position - 1
        if parts and used + len(part) + 2 > width - (12 if left else 0):
            parts.append(f"(+{len(fields) - position} velden)")
            break
        parts.append(part)
        used += len(part) + 2
    return "; ".join(parts)


class Response(Protocol):
    """What the demo needs of an HTTP response (httpx and the test client both fit)."""

    @property
    def status_code(self) -> int:
        """The HTTP status."""
        ...

    @property
    def content(self) -> bytes:
        """The raw body."""
        ...

    def json(self) -> Any:
        """The parsed JSON body."""
        ...


Request = Callable[..., Response]


class DemoFailed(RuntimeError):
    """The gateway answered a demo step differently than the example expects."""


@dataclass
class Demo:
    """Plays the example with ``request(method, path, token, json=..., headers=...)``."""

    request: Request
    tokens: Mapping[str, str]
    console: Console
    case_id: str = ""
    seen: dict[str, Any] = field(default_factory=dict)

    def call(
        self,
        who: str,
        method: str,
        path: str,
        body: Any = None,
        *,
        expect: tuple[int, ...] = (200, 201),
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Send one request as ``who``; raise DemoFailed on an unexpected status."""
        sent = {"Authorization": f"Bearer {self.tokens[who]}", **(headers or {})}
        response = self.request(method, path, json=body, headers=sent)
        if response.status_code not in expect:
            detail = response.json().get("detail", "") if response.status_code >= 400 else ""
            raise DemoFailed(f"{method} {path} as {who}: {response.status_code} {detail}")
        return response.json()

    def raw(self, who: str, path: str) -> bytes:
        """GET ``path`` as ``who`` and return the body's bytes; raise DemoFailed unless 200."""
        response = self.request(
            "GET", path, headers={"Authorization": f"Bearer {self.tokens[who]}"}
        )
        if response.status_code != 200:
            raise DemoFailed(f"GET {path} as {who}: {response.status_code}")
        return response.content

    def step(self, step: Step) -> None:
        """Print the heading of a step."""
        self.console.rule(f"Stap {int(step)}: {step.label}")

    def say(self, who: str, text: str) -> None:
        """Print one line: who did or saw what."""
        self.console.print(f"[bold]{who.split('.')[0]}[/bold]  {text}", highlight=False)

    def case(self, suffix: str = "") -> str:
        """Return the case's path with ``suffix``."""
        return f"/v1/cases/{self.case_id}{suffix}"

    def show_records(self, who: str) -> dict[str, Any]:
        """Read the case's records as ``who`` and print what came back."""
        view: dict[str, Any] = self.call(who, "GET", self.case("/records"))
        if not view["records"] and not view["withheld"]:
            self.say(who, "ziet geen gegevens")
        for record in view["records"]:
            provenance = record["provenance"]
            how = "alleen samenvatting" if record["summary_only"] else "volledig"
            self.say(
                who,
                f"ziet {provenance['category']} van {provenance['provider']} ({how}, "
                f"regel {record['rule_id']}): {shorten_fields(record['fields'])}",
            )
        if view["withheld"]:
            rules = ", ".join(f"{r} x{n}" for r, n in view["withheld_by_rule"].items())
            self.say(who, f"ziet {view['withheld']} gegeven(s) niet ({rules})")
        self.seen[who] = view
        return view

    def move(self, to_step: int, **body: Any) -> None:
        """Move the case to ``to_step`` as the RIEC."""
        case = self.call(RIEC, "POST", self.case("/transitions"), {"to_step": to_step, **body})
        self.say(RIEC, f"zet de casus naar stap {case['step']} ({case['step_label']})")

    def run(self) -> str:
        """Play all seven steps; return the case id. Raises DemoFailed if a step goes wrong."""
        self.step(Step.INDIENEN_SIGNAAL)
        case = self.call(GEMEENTE, "POST", "/v1/signals", SIGNAL)
        self.case_id = case["id"]
        self.say(GEMEENTE, f"dient een signaal in met {len(SIGNAL['subjects'])} betrokkenen")
        for partner in ("politie-noord-nederland", "belastingdienst", "om-noord-nederland"):
            self.call(RIEC, "POST", self.case("/participants"), {"partner_id": partner})
        self.say(RIEC, "voegt politie, Belastingdienst en OM toe aan de casus")
        for who in (RIEC, POLITIE):
            outputs = self.call(who, "GET", self.case("/outputs"))
            self.say(
                who,
                f"kan het signaal {'lezen' if outputs['outputs'] else 'niet lezen'}",
            )
        self.call(
            POLITIE,
            "POST",
            "/v1/holdings",
            {"category": "police-incident", "identifiers": [{"type": "name", "value": YOUTH}]},
        )
        self.call(
            BELASTING,
            "POST",
            "/v1/holdings",
            {"category": "fiscal", "identifiers": [{"type": "kvk", "value": GARAGE_KVK}]},
        )
        self.move(2)

        self.step(Step.VERKENNEN)
        hits: dict[str, bool] = {}
        for identifier in SIGNAL["subjects"][:2]:
            result = self.call(RIEC, "POST", self.case("/hits"), {"identifier": identifier})
            for partner, hit in result["hits"].items():
                hits[partner] = hits.get(partner, False) or hit
        for partner, hit in sorted(hits.items()):
            self.say(RIEC, f"hit/no-hit bij {partner}: {'HIT' if hit else 'geen hit'}")
        self.call(
            RIEC,
            "POST",
            self.case("/decision"),
            {
                "decision": "go",
                "purpose": PURPOSE,
                "legal_basis": "riec-convenant",
                "motivation": "Stuurploeg: integrale aanpak van ondermijning.",
            },
        )
        self.say(RIEC, f"legt 'go' vast: doel {PURPOSE}, grondslag riec-convenant")
        self.move(3)

        self.step(Step.INFORMATIE_DELEN_ANALYSEREN)
        # A partner's idempotency keys are its own across all cases: name the case in them,
        # so that running the demo again starts a new share instead of replaying this one.
        for who, record, key in (
            (POLITIE, POLICE_RECORD, f"{self.case_id}-incident-1"),
            (BELASTING, FISCAL_RECORD, f"{self.case_id}-fiscal-1"),
        ):
            self.call(who, "POST", self.case("/records"), record, headers={"Idempotency-Key": key})
            self.say(who, f"deelt {record['category']} onder {record['legal_basis']}")
        for who in (RIEC, GEMEENTE, OM):
            self.show_records(who)
        self.call(BANK, "GET", self.case("/records"), expect=(403,))
        self.say(BANK, "is geen casuspartner en krijgt niets (403)")
        self.call(RIEC, "POST", self.case("/outputs"), {"kind": "analysis", "text": "Netwerk."})
        self.say(RIEC, "schrijft de integrale analyse")
        self.move(4)

        self.step(Step.ADVISEREN)
        self.call(
            RIEC,
            "POST",
            self.case("/outputs"),
            {
                "kind": "advice",
                "text": "Sluiting van de werkplaats en een boekenonderzoek.",
                "interventions": [
                    {
                        "partner_id": "gemeente-smallingerland",
                        "purpose": "interventie-bestuurlijk",
                        "description": "Sluiting (Wet Bibob / APV)",
                    },
                    {
                        "partner_id": "belastingdienst",
                        "purpose": "interventie-fiscaal",
                        "description": "Boekenonderzoek",
                    },
                ],
            },
        )
        self.say(RIEC, "adviseert: sluiting (gemeente) en boekenonderzoek (Belastingdienst)")
        self.move(5)

        self.step(Step.UITVOEREN)
        for who in (GEMEENTE, BELASTING):
            self.show_records(who)
        self.call(GEMEENTE, "POST", self.case("/outputs"), {"kind": "results", "text": "Gesloten."})
        self.call(
            BELASTING, "POST", self.case("/outputs"), {"kind": "results", "text": "Naheffing."}
        )
        self.say(GEMEENTE, "meldt resultaat: werkplaats gesloten")
        self.say(BELASTING, "meldt resultaat: naheffing opgelegd")
        self.move(6)

        self.step(Step.EVALUEREN)
        self.call(RIEC, "POST", self.case("/outputs"), {"kind": "evaluation", "text": "Geslaagd."})
        self.say(RIEC, "evalueert de aanpak")
        self.move(7, closure="Casus afgesloten na evaluatie.")

        self.step(Step.AFSLUITEN)
        for who in (RIEC, GEMEENTE, POLITIE, BELASTING):
            self.show_records(who)
        log = self.call(
            RIEC_PO,
            "POST",
            "/v1/subjects/processing-log",
            {"identifiers": [{"type": "bsn", "value": YOUTH_BSN}]},
        )
        self.console.rule("Verwerkingenlogboek van de jongere (AVG art. 15)")
        for line in log["lines"]:
            own = {k.removeprefix(GATEWAY_NS): v for k, v in line["attributes"].items()}
            facts = [f"{label} {own[key]}" for label, key in LOG_FACTS if key in own]
            facts.append(f"audit #{own['audit_index']}")
            self.say(
                own.get("actor_partner") or "gateway",
                f"{own['processing_activity_name']} ({', '.join(facts)})",
            )
        return self.case_id

    def enrol_researcher(self, agreement: Agreement, key_dir: Path) -> Path:
        """Give the NSCR researcher an age key in ``key_dir`` and have it confirmed.

        The key is made once (mode 0600) and reused by later runs; the researcher
        registers its public half and the NSCR's privacy officer confirms it. Returns the
        identity file. Raises DemoFailed if the gateway refuses a step.
        """
        key_file = key_dir / RESEARCHER_KEY
        if not key_file.exists():
            key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            age.write_identity_file(key_file, age.generate(), SystemClock().now())
        recipient = age.recipient_of(key_file)
        path = f"/v1/research/agreements/{agreement.id}/recipients"
        known = [r for r in self.call(RESEARCHER, "GET", path) if r["recipient"] == recipient]
        live = [r for r in known if r["status"] != "revoked"]
        entry = live[0] if live else self.call(RESEARCHER, "POST", path, {"recipient": recipient})
        if entry["status"] == "pending":
            entry = self.call(RESEARCHER_PO, "POST", f"{path}/{entry['id']}/confirm")
            self.say(
                RESEARCHER,
                f"maakt een eigen age-sleutel ({key_file}, alleen voor de onderzoeker leesbaar) "
                f"en registreert de publieke sleutel {recipient[:16]}…",
            )
            self.say(
                RESEARCHER_PO,
                "bevestigt de sleutel van de onderzoeker (versie "
                f"{entry['version']}); releases worden alleen daarheen versleuteld",
            )
        else:
            self.say(RESEARCHER, f"gebruikt de eerder bevestigde sleutel {key_file}")
        return key_file

    def open_release(self, bundle: Path, key_file: Path, manifest: Mapping[str, Any]) -> Path:
        """Open ``bundle`` as the researcher would (``research.opening``); print the first
        rows and return the CSV's path. Raises IntegrityCheckFailed on a mismatch."""
        opened = open_release(bundle, key_file, manifest, shown_rows=SHOWN_ROWS)
        self.say(
            RESEARCHER, f"opent de release met {opened.how}; de eerste rijen van {opened.csv.name}:"
        )
        for line in opened.first_lines:
            self.console.print(f"    {line}", highlight=False, markup=False, soft_wrap=True)
        return opened.csv

    def run_research(
        self, agreement: Agreement, out_dir: Path, *, key_dir: Path | None = None
    ) -> Path:
        """Make one release of the youth-network study; return the verified bundle's path.

        The researcher's key lives in ``key_dir`` (default: ``demo-researcher`` beside
        ``out_dir``). Raises DemoFailed if a step goes wrong, IntegrityCheckFailed if the
        bundle does not verify or open.
        """
        self.console.rule("Onderzoek: jeugdnetwerken Noord-Nederland (NSCR, De Haagse Hogeschool)")
        path = f"/v1/research/agreements/{agreement.id}"
        terms = self.call(RESEARCHER, "GET", path)
        self.say(
            RESEARCHER,
            f"leest de overeenkomst: {terms['title']} ({terms['period_start']} tot "
            f"{terms['period_end']}, k = {terms['k']}, {len(terms['conditions'])} DUO-voorwaarden)",
        )
        for provider in STUDY_PROVIDERS:
            self.call(
                f"{provider}.privacy-officer",
                "POST",
                f"{path}/consents",
                {"decision": "consent", "note": "demo"},
            )
        self.say(RIEC_PO, f"toestemming vastgelegd voor {len(STUDY_PROVIDERS)} leveranciers")
        deliveries = synthetic.as_providers_deliver(
            agreement,
            synthetic.rows(STUDY_ROWS, seed=2026, start=STUDY_EVENTS[0], end=STUDY_EVENTS[1]),
        )
        for number, submission in enumerate(deliveries.submissions):
            stored = repeated = 0
            for start in range(0, len(submission.rows), UPLOAD_CHUNK):
                result = self.call(
                    f"{submission.provider}.partner-system",
                    "POST",
                    f"{path}/rows",
                    {
                        "instrument": submission.instrument,
                        "rows": submission.rows[start : start + UPLOAD_CHUNK],
                    },
                    headers={"Idempotency-Key": f"demo-{agreement.id}-{number}-{start}"},
                )
                if result["created"]:
                    stored += result["rows"]
                else:
                    repeated += result["rows"]
            if stored:
                self.say(
                    f"{submission.provider}.partner-system",
                    f"levert {stored} rijen ({submission.instrument}); identificerende gegevens "
                    "zijn bij aankomst gepseudonimiseerd",
                )
            if repeated:
                self.say(
                    f"{submission.provider}.partner-system",
                    f"levert {repeated} rijen ({submission.instrument}) opnieuw met dezelfde "
                    "Idempotency-Key: niets nieuws opgeslagen",
                )
        for respondent in deliveries.withdrawn_respondents:
            self.call(
                "riec-noord-nederland.partner-system",
                "POST",
                f"{path}/withdrawals",
                {"respondent_id": respondent},
            )
        self.say(
            "riec-noord-nederland.partner-system",
            f"registreert {len(deliveries.withdrawn_respondents)} ingetrokken toestemming(en)",
        )
        key_file = self.enrol_researcher(agreement, key_dir or out_dir.parent / "demo-researcher")
        # The agreement allows non-commercial use only (DUO NCU): the request declares it.
        release = self.call(
            RESEARCHER, "POST", f"{path}/releases", {"declared_use": ["non-commercial"]}
        )
        self.say(
            RESEARCHER,
            f"krijgt release {release['id']}: {release['rows_out']} van {release['rows_in']} "
            f"rijen, {release['rows_suppressed']} onderdrukt (k-anonimiteit), van "
            f"{', '.join(release['consenting_providers'])}",
        )
        bundle = out_dir / str(release["bundle_name"])
        bundle.parent.mkdir(parents=True, exist_ok=True)
        atomicfile.write_file(
            bundle, self.raw(RESEARCHER, f"/v1/research/releases/{release['id']}/bundle")
        )
        proof = self.raw(RESEARCHER, f"/v1/research/releases/{release['id']}/proof").decode()
        published = self.call(RESEARCHER, "GET", "/v1/keys/signing")["keys"]
        keys = [base64.b64decode(k["public_key"]) for k in published]
        active = next(base64.b64decode(k["public_key"]) for k in published if k["active"])
        verified = verify_bundle(
            bundle,
            active,
            audit_inclusion=ReleaseInclusion(proof, keys),
        )
        self.say(
            RESEARCHER,
            f"controleert {bundle.name}: handtekening, checksums en opname in de auditlog "
            f"(regel {release['audit_index']}) kloppen; manifest {verified.manifest_sha256[:16]}",
        )
        self.open_release(bundle, key_file, verified.manifest)
        return bundle
