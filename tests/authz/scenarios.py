"""The authorization matrix's world: who calls, which case they call about, and what.

One case, run by riec-noord-nederland, at step 3 with a police record shared; a policy
proposal by the politie's privacy officer; a second RIEC (riec-oost-nederland) and
operators at a non-operating partner. Every operation of ``/openapi.json`` has one or
more scenarios: a request (path, body) and the callers that must succeed; every other
caller must not get a 2xx.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pyrage import x25519
from sqlmodel import select

from gateway import demo_data
from gateway.identity import oidc, service
from gateway.identity.service import CLI_ACTOR
from gateway.models.oidc import OidcProvider
from gateway.models.partners import ApiToken, Principal
from gateway.vocabulary import Role
from tests.conftest import Gateway
from tests.workbench.helpers import shipped

CASE_RIEC = "riec-noord-nederland"
OTHER_RIEC = "riec-oost-nederland"
AGREEMENT = "jeugdnetwerken-noord-nederland"

# Callers by short name: (partner, role). The case's participants are the RIEC,
# gemeente-smallingerland (the submitter), the politie, the Belastingdienst and the OM.
CALLERS: dict[str, tuple[str, Role]] = {
    "riec.analyst": (CASE_RIEC, Role.RIEC_ANALYST),
    "riec.privacy": (CASE_RIEC, Role.PRIVACY_OFFICER),
    "riec.operator": (CASE_RIEC, Role.OPERATOR),
    "riec.system": (CASE_RIEC, Role.PARTNER_SYSTEM),
    "gemeente.system": ("gemeente-smallingerland", Role.PARTNER_SYSTEM),
    "gemeente.analyst": ("gemeente-smallingerland", Role.ANALYST),
    "gemeente.privacy": ("gemeente-smallingerland", Role.PRIVACY_OFFICER),
    "gemeente.operator": ("gemeente-smallingerland", Role.OPERATOR),
    "politie.system": ("politie-noord-nederland", Role.PARTNER_SYSTEM),
    "politie.analyst": ("politie-noord-nederland", Role.ANALYST),
    "politie.privacy": ("politie-noord-nederland", Role.PRIVACY_OFFICER),
    "leeuwarden.system": ("gemeente-leeuwarden", Role.PARTNER_SYSTEM),
    "leeuwarden.privacy": ("gemeente-leeuwarden", Role.PRIVACY_OFFICER),
    "bank.system": ("voorbeeldbank", Role.PARTNER_SYSTEM),
    "bank.privacy": ("voorbeeldbank", Role.PRIVACY_OFFICER),
    "nscr.researcher": ("nscr", Role.RESEARCHER),
    "nscr.privacy": ("nscr", Role.PRIVACY_OFFICER),
    "oost.analyst": (OTHER_RIEC, Role.RIEC_ANALYST),
    "oost.privacy": (OTHER_RIEC, Role.PRIVACY_OFFICER),
    "oost.operator": (OTHER_RIEC, Role.OPERATOR),
}
PARTICIPANTS = {
    "riec.analyst",
    "riec.privacy",
    "riec.system",
    "gemeente.system",
    "gemeente.analyst",
    "gemeente.privacy",
    "politie.system",
    "politie.analyst",
    "politie.privacy",
}


@dataclass
class World:
    """What the scenarios refer to: tokens by caller, the case, a proposal, token ids."""

    gateway: Gateway
    tokens: dict[str, str] = field(default_factory=dict)
    case_id: str = ""
    proposal_id: int = 0
    counter: int = 0

    def headers(self, caller: str) -> dict[str, str]:
        """Return the Authorization header of a caller."""
        return {"Authorization": f"Bearer {self.tokens[caller]}"}

    def principal(self, caller: str) -> str:
        """Return the principal id of a caller."""
        partner, role = CALLERS[caller]
        return f"{partner}.{role.value}"

    def token_id(self, caller: str) -> str:
        """Return the id of a caller's token (the part between ``gw_`` and the secret)."""
        return self.tokens[caller].split("_")[1]

    def fresh(self) -> int:
        """Return a number no earlier call used (for idempotency keys and labels)."""
        self.counter += 1
        return self.counter


def _operator(gw: Gateway, partner: str) -> str:
    """Add an operator to ``partner`` as the host's installer does; return its token."""
    pid = f"{partner}.operator"
    with gw.database.write() as session:
        if session.get(Principal, pid) is None:
            service.add_principal(
                session,
                gw.clock,
                CLI_ACTOR,
                partner_id=partner,
                role=Role.OPERATOR,
                label=f"Operator of {partner} (matrix)",
                principal_id=pid,
            )
        new, _row = service.issue_token(session, gw.clock, CLI_ACTOR, pid, timedelta(days=1))
    return new.plaintext


def build_world(gw: Gateway) -> World:
    """Create the extra principals, the case at step 3 and a proposal; return the world."""
    world = World(gw)
    for name, (partner, role) in CALLERS.items():
        pid = f"{partner}.{role.value}"
        world.tokens[name] = gw.tokens[pid] if pid in gw.tokens else _operator(gw, partner)
    client = gw.client

    def ok(caller: str, method: str, path: str, **kwargs: Any) -> Any:
        response = client.request(method, path, headers=world.headers(caller), **kwargs)
        assert response.status_code in (200, 201), (path, response.text)
        return response.json()

    world.case_id = ok("gemeente.system", "POST", "/v1/signals", json=demo_data.SIGNAL)["id"]
    for partner in ("politie-noord-nederland", "belastingdienst", "om-noord-nederland"):
        ok(
            "riec.analyst",
            "POST",
            f"/v1/cases/{world.case_id}/participants",
            json={"partner_id": partner},
        )
    ok("riec.analyst", "POST", f"/v1/cases/{world.case_id}/transitions", json={"to_step": 2})
    ok(
        "riec.analyst",
        "POST",
        f"/v1/cases/{world.case_id}/decision",
        json={
            "decision": "go",
            "purpose": "integrale-aanpak-ondermijning",
            "legal_basis": "riec-convenant",
            "motivation": "Stuurploeg: integrale aanpak.",
        },
    )
    ok("riec.analyst", "POST", f"/v1/cases/{world.case_id}/transitions", json={"to_step": 3})
    client.post(
        f"/v1/cases/{world.case_id}/records",
        json=demo_data.POLICE_RECORD,
        headers={**world.headers("politie.system"), "Idempotency-Key": "matrix-police-1"},
    ).raise_for_status()
    text = shipped("rules/30-advies-tot-afsluiting.yaml") + "\n# a harmless change\n"
    world.proposal_id = ok(
        "politie.privacy",
        "POST",
        "/v1/policies/proposals",
        json={
            "title": "A harmless change",
            "files": {"rules/30-advies-tot-afsluiting.yaml": text},
        },
    )["id"]
    return world


def stored_token_ids(gw: Gateway, principal_id: str) -> list[str]:
    """Return the ids of a principal's tokens."""
    with gw.database.read() as session:
        return list(
            session.exec(select(ApiToken.id).where(ApiToken.principal_id == principal_id)).all()
        )


Body = Callable[[World, str], Any]
Check = Callable[[World, str, Any], str | None]


def _no_body(_world: World, _caller: str) -> None:
    return None


@dataclass(frozen=True)
class Scenario:
    """One request to one operation: who must get a 2xx, who may, and what to check.

    Callers in neither ``allowed`` nor ``maybe`` must not get a 2xx. ``check`` looks at
    a 2xx body and returns what is wrong with it (e.g. another RIEC's case in a list).
    """

    method: str
    path: str
    allowed: frozenset[str] = frozenset()
    maybe: frozenset[str] = frozenset()
    body: Body = _no_body
    headers: Callable[[World, str], dict[str, str]] | None = None
    mutates: bool = False
    check: Check | None = None
    url: str | None = None

    @property
    def op(self) -> tuple[str, str]:
        """The operation: method and OpenAPI path template."""
        return (self.method, self.path)

    def target(self, world: World) -> str:
        """Return the URL of this scenario's request in ``world``."""
        return (self.url or self.path).format(
            case_id=world.case_id,
            proposal_id=world.proposal_id,
            agreement_id=AGREEMENT,
            gemeente_system_token=world.token_id("gemeente.system"),
        )


ALL = frozenset(CALLERS)
OPERATORS = frozenset({"riec.operator", "gemeente.operator", "oost.operator"})
PRIVACY_OFFICERS = frozenset(c for c, (_p, r) in CALLERS.items() if r is Role.PRIVACY_OFFICER)
CASE_READERS = frozenset(
    {"riec.analyst", "gemeente.system", "gemeente.analyst", "politie.system", "politie.analyst"}
)
"""Participants whose role reads a case's records and outputs."""
SUBMITTERS = frozenset(
    c
    for c, (partner, role) in CALLERS.items()
    if role in (Role.PARTNER_SYSTEM, Role.ANALYST, Role.RIEC_ANALYST)
    and partner not in ("voorbeeldbank", "nscr")
)
"""Systems and analysts of RIEC partners: they may submit signals and register holdings."""


def _own_partner_evaluation(world: World, caller: str) -> dict[str, Any]:
    partner, _role = CALLERS[caller]
    return {
        "subject": {"type": "partner", "id": partner},
        "action": {"name": "case:record:read"},
        "resource": {
            "type": "record",
            "id": "matrix-1",
            "properties": {"category": "police-incident", "provider": "politie-noord-nederland"},
        },
        "context": {
            "process": "casusaanpak",
            "step": 3,
            "purpose": "integrale-aanpak-ondermijning",
        },
    }


def _case_not_listed(world: World, caller: str, body: Any) -> str | None:
    """Outsiders' case lists must not name the case."""
    ids = [c["id"] for c in body]
    if caller not in PARTICIPANTS and world.case_id in ids:
        return f"{caller} sees the case in GET /v1/cases"
    return None


def _entries_of_case_only_for_participants(world: World, caller: str, body: Any) -> str | None:
    """Audit entries about the case are visible to its participants only."""
    entries = body if isinstance(body, list) else body.get("entries", [])
    leaked = [e for e in entries if world.case_id in str(e.get("refs", e))]
    if caller not in PARTICIPANTS and caller not in OPERATORS and leaked:
        return f"{caller} sees {len(leaked)} audit entries of another RIEC's case"
    return None


def _no_lines_for_outsiders(world: World, caller: str, body: Any) -> str | None:
    """A privacy officer outside the case gets no processing-log line about it."""
    leaked = [line for line in body.get("lines", []) if world.case_id in str(line)]
    if caller not in PARTICIPANTS and leaked:
        return f"{caller} gets {len(leaked)} processing-log lines of another RIEC's case"
    return None


def _no_activities_for_outsiders(world: World, caller: str, body: Any) -> str | None:
    """A privacy officer outside the case gets no read-extension processing about it."""
    leaked = [a for a in body.get("processingActivities", []) if world.case_id in str(a)]
    if caller not in PARTICIPANTS and leaked:
        return f"{caller} gets {len(leaked)} processings of another RIEC's case"
    return None


def _subject_headers(_world: World, _caller: str) -> dict[str, str]:
    return {"Data-Subject-Id": demo_data.YOUTH, "Data-Subject-Id-Type": "name"}


def _activities_body(_world: World, _caller: str) -> dict[str, Any]:
    return {"dpl.core.data_subject_id": demo_data.YOUTH, "dpl.core.data_subject_id_type": "name"}


def _idempotent(world: World, _caller: str) -> dict[str, str]:
    return {"Idempotency-Key": f"matrix-{world.fresh():06d}"}


def _processing_log_body(_world: World, _caller: str) -> dict[str, Any]:
    return {"identifiers": [{"type": "name", "value": demo_data.YOUTH}]}


def _proposal(_world: World, _caller: str) -> dict[str, Any]:
    text = shipped("rules/30-advies-tot-afsluiting.yaml") + "\n# another harmless change\n"
    return {"title": "Another change", "files": {"rules/30-advies-tot-afsluiting.yaml": text}}


def _signal(_world: World, _caller: str) -> dict[str, Any]:
    return demo_data.SIGNAL


def _fresh_recipient(_world: World, _caller: str) -> dict[str, Any]:
    return {"recipient": str(x25519.Identity.generate().to_public())}


CLIENT_JWK = {  # a public P-256 key (RFC 7517 appendix A.1)
    "kty": "EC",
    "crv": "P-256",
    "x": "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
    "y": "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM",
}
OIDC_ISSUER = "https://login.gemeente-smallingerland.example"
OIDC_PROVIDER = {
    "issuer": OIDC_ISSUER,
    "client_id": "riec-gateway",
    "client_credential": "matrix-client-secret-0123456789",
    "acr_values": ["urn:gateway:loa:substantial"],
}


def _person_link(world: World, _caller: str) -> dict[str, Any]:
    """Give the gemeente a provider (as the installer could), then name a new person."""
    gw = world.gateway
    with gw.database.write() as session:
        if session.get(OidcProvider, "gemeente-smallingerland") is None:
            oidc.store_provider(
                session,
                gw.clock,
                CLI_ACTOR,
                gw.client.app.state.ctx.keys,  # type: ignore[attr-defined]
                "gemeente-smallingerland",
                oidc.ProviderSpec(
                    issuer=OIDC_ISSUER,
                    client_id="riec-gateway",
                    client_auth=oidc.OidcClientAuth.CLIENT_SECRET_BASIC,
                    credential="matrix-client-secret-0123456789",
                ),
                allow_http=False,
            )
    return {"subject": f"matrix-person-{world.fresh()}"}


def _body(value: Any) -> Body:
    def body(_world: World, _caller: str) -> Any:
        return value

    return body


S = Scenario
SCENARIOS: tuple[Scenario, ...] = (
    # Health, metrics and discovery are for everyone (metrics carry no personal data).
    S("GET", "/healthz", allowed=ALL),
    S("GET", "/readyz", allowed=ALL),
    S("GET", "/metrics", allowed=ALL),
    S("GET", "/.well-known/authzen-configuration", allowed=ALL),
    S("GET", "/v1/me", allowed=ALL),
    S("GET", "/v1/keys/signing", allowed=ALL),
    S("GET", "/v1/audit/checkpoint", allowed=ALL),
    S("GET", "/v1/audit/verifier-keys", allowed=ALL),
    S(
        "GET",
        "/v1/audit/proofs/consistency",
        url="/v1/audit/proofs/consistency?first=1&second=2",
        allowed=ALL,
    ),
    S(
        "GET",
        "/v1/audit/entries",
        url="/v1/audit/entries?limit=500",
        maybe=ALL,
        check=_entries_of_case_only_for_participants,
    ),
    S(
        "GET",
        "/v1/audit/entries",
        url="/v1/audit/entries?case={case_id}&limit=500",
        maybe=ALL,
        check=_entries_of_case_only_for_participants,
    ),
    S(
        "GET",
        "/v1/audit/proofs/inclusion",
        url="/v1/audit/proofs/inclusion?index=0&size=1",
        maybe=ALL,
    ),
    # Where an action's entry id landed: anyone who may see that entry (404 otherwise).
    S(
        "GET",
        "/v1/audit/entry-ids/{entry_id}",
        url="/v1/audit/entry-ids/1",
        maybe=ALL,
    ),
    # The partner registry: operators, each of its own partner; the operating RIEC's
    # operators register partners and revoke them.
    S("GET", "/v1/partners", maybe=OPERATORS),
    S(
        "POST",
        "/v1/partners",
        mutates=True,
        allowed=frozenset({"riec.operator"}),
        body=_body(
            {
                "id": "gemeente-heerenveen",
                "kind": "gemeente",
                "name": "Gemeente Heerenveen",
                "identifier_type": "oin",
                "identifier": "00000099000009990000",
            }
        ),
    ),
    S(
        "GET",
        "/v1/partners/{partner_id}",
        url="/v1/partners/gemeente-smallingerland",
        maybe=OPERATORS,
    ),
    S(
        "POST",
        "/v1/partners/{partner_id}/revoke",
        url="/v1/partners/gemeente-leeuwarden/revoke",
        mutates=True,
        allowed=frozenset({"riec.operator"}),
    ),
    S(
        "POST",
        "/v1/partners/{partner_id}/revoke",
        url="/v1/partners/riec-noord-nederland/revoke",
        mutates=True,
        maybe=frozenset({"riec.operator"}),
    ),
    S(
        "GET",
        "/v1/partners/{partner_id}/principals",
        url="/v1/partners/gemeente-smallingerland/principals",
        allowed=frozenset({"gemeente.operator", "riec.operator"}),
    ),
    S(
        "POST",
        "/v1/partners/{partner_id}/principals",
        url="/v1/partners/gemeente-smallingerland/principals",
        mutates=True,
        allowed=frozenset({"gemeente.operator"}),
        body=_body({"role": "partner-system", "label": "Zaaksysteem (matrix)"}),
    ),
    S(
        "POST",
        "/v1/partners/{partner_id}/principals",
        url="/v1/partners/politie-noord-nederland/principals",
        mutates=True,
        body=_body({"role": "operator", "label": "Impostor (matrix)"}),
    ),
    # A partner's identity provider: the operating RIEC registers it; the partner's own
    # operators link its people.
    S(
        "PUT",
        "/v1/partners/{partner_id}/oidc-provider",
        url="/v1/partners/gemeente-smallingerland/oidc-provider",
        mutates=True,
        allowed=frozenset({"riec.operator"}),
        body=_body(OIDC_PROVIDER),
    ),
    S(
        "POST",
        "/v1/principals/{principal_id}/oidc-person",
        url="/v1/principals/gemeente-smallingerland.analyst/oidc-person",
        mutates=True,
        allowed=frozenset({"gemeente.operator"}),
        body=_person_link,
    ),
    # A partner system's key for client credentials: its own partner's operator only. The
    # token endpoint takes a client assertion, never a bearer token: nobody gets one here.
    S(
        "PUT",
        "/v1/principals/{principal_id}/client-key",
        url="/v1/principals/gemeente-smallingerland.partner-system/client-key",
        mutates=True,
        allowed=frozenset({"gemeente.operator"}),
        body=_body({"jwk": CLIENT_JWK}),
    ),
    S("POST", "/oauth/token"),
    # Nobody obtains a token for someone else's analyst; an operator renews its own.
    S(
        "POST",
        "/v1/principals/{principal_id}/tokens",
        url="/v1/principals/politie-noord-nederland.analyst/tokens",
        mutates=True,
    ),
    S(
        "POST",
        "/v1/principals/{principal_id}/tokens",
        url="/v1/principals/gemeente-smallingerland.partner-system/tokens",
        mutates=True,
    ),
    S(
        "POST",
        "/v1/principals/{principal_id}/tokens",
        url="/v1/principals/gemeente-smallingerland.operator/tokens",
        mutates=True,
        allowed=frozenset({"gemeente.operator"}),
    ),
    S(
        "POST",
        "/v1/tokens/{token_id}/revoke",
        url="/v1/tokens/{gemeente_system_token}/revoke",
        mutates=True,
        allowed=frozenset({"gemeente.operator"}),
    ),
    # Anyone else's credential is an enrolment code, issued by the partner's own operator.
    S(
        "POST",
        "/v1/principals/{principal_id}/enrolments",
        url="/v1/principals/gemeente-smallingerland.partner-system/enrolments",
        mutates=True,
        allowed=frozenset({"gemeente.operator"}),
    ),
    S(
        "POST",
        "/v1/principals/{principal_id}/enrolments",
        url="/v1/principals/politie-noord-nederland.analyst/enrolments",
        mutates=True,
    ),
    S(
        "POST",
        "/v1/enrolments",
        mutates=True,
        body=_body({"code": "gwe_0123456789abcdef_x" + "y" * 42}),
    ),
    # AuthZEN: a partner asks about itself; operators hold no case role.
    S("POST", "/access/v1/evaluation", body=_own_partner_evaluation, maybe=ALL),
    S(
        "POST",
        "/access/v1/evaluations",
        body=lambda w, c: {"evaluations": [_own_partner_evaluation(w, c)]},
        maybe=ALL,
    ),
    # Cases: visibility follows the case; records and outputs only for roles that read them.
    S(
        "POST",
        "/v1/signals",
        mutates=True,
        body=_signal,
        allowed=frozenset({"gemeente.system"}),
        maybe=SUBMITTERS,
    ),
    S("GET", "/v1/cases", maybe=ALL - OPERATORS - {"nscr.researcher"}, check=_case_not_listed),
    S(
        "GET",
        "/v1/cases/{case_id}",
        allowed=CASE_READERS | {"riec.system"},
        maybe=frozenset({"riec.privacy", "gemeente.privacy", "politie.privacy"}),
    ),
    S(
        "POST",
        "/v1/cases/{case_id}/participants",
        mutates=True,
        allowed=frozenset({"riec.analyst"}),
        body=_body({"partner_id": "kmar"}),
    ),
    S(
        "POST",
        "/v1/cases/{case_id}/participants",
        mutates=True,
        body=_body({"partner_id": "voorbeeldbank"}),
    ),
    S("POST", "/v1/cases/{case_id}/participants", mutates=True, body=_body({"partner_id": "nscr"})),
    S(
        "POST",
        "/v1/holdings",
        mutates=True,
        body=_body(
            {"category": "police-incident", "identifiers": [{"type": "name", "value": "X Y"}]}
        ),
        allowed=frozenset({"politie.system"}),
        maybe=SUBMITTERS | {"bank.system"},
    ),
    S(
        "POST",
        "/v1/cases/{case_id}/hits",
        mutates=True,
        body=_body({"identifier": {"type": "name", "value": demo_data.YOUTH}}),
        maybe=frozenset({"riec.analyst"}),
    ),
    S(
        "POST",
        "/v1/cases/{case_id}/decision",
        mutates=True,
        body=_body(
            {
                "decision": "go",
                "purpose": "integrale-aanpak-ondermijning",
                "legal_basis": "riec-convenant",
                "motivation": "again",
            }
        ),
        maybe=frozenset({"riec.analyst"}),
    ),
    S(
        "POST",
        "/v1/cases/{case_id}/outputs",
        mutates=True,
        body=_body({"kind": "analysis", "text": "Integrale analyse (matrix)."}),
        allowed=frozenset({"riec.analyst"}),
    ),
    S("GET", "/v1/cases/{case_id}/outputs", allowed=CASE_READERS | {"riec.system"}),
    S(
        "POST",
        "/v1/cases/{case_id}/transitions",
        mutates=True,
        body=_body({"to_step": 4}),
        maybe=frozenset({"riec.analyst"}),
    ),
    S(
        "POST",
        "/v1/cases/{case_id}/records",
        mutates=True,
        body=_body(demo_data.POLICE_RECORD),
        headers=_idempotent,
        allowed=frozenset({"politie.system"}),
        maybe=frozenset({"politie.analyst"}),
    ),
    S("GET", "/v1/cases/{case_id}/records", allowed=CASE_READERS | {"riec.system"}),
    S(
        "POST",
        "/v1/subjects/processing-log",
        body=_processing_log_body,
        allowed=frozenset({"riec.privacy", "gemeente.privacy", "politie.privacy"}),
        maybe=PRIVACY_OFFICERS,
        check=_no_lines_for_outsiders,
    ),
    # The register of processing activities: open to every partner principal, not operators.
    S("GET", "/v1/register/activities", allowed=ALL - OPERATORS),
    S(
        "GET",
        "/v1/register/activities/{activity_id}",
        url="/v1/register/activities/casus-politiegegevens",
        allowed=ALL - OPERATORS,
    ),
    # The read extension of the Logboek Dataverwerkingen: by activity, by subject, in a body.
    S(
        "GET",
        "/v1/processing-activities",
        url="/v1/processing-activities?processingActivityId="
        "urn:riec-gateway:verwerkingsactiviteit:signaal-indienen",
        allowed=frozenset({"riec.privacy", "gemeente.privacy", "politie.privacy"}),
        maybe=PRIVACY_OFFICERS,
        check=_no_activities_for_outsiders,
    ),
    S(
        "GET",
        "/v1/processing-activities",
        headers=_subject_headers,
        allowed=frozenset({"riec.privacy", "gemeente.privacy", "politie.privacy"}),
        maybe=PRIVACY_OFFICERS,
        check=_no_activities_for_outsiders,
    ),
    S(
        "POST",
        "/v1/processing-activities",
        body=_activities_body,
        allowed=frozenset({"riec.privacy", "gemeente.privacy", "politie.privacy"}),
        maybe=PRIVACY_OFFICERS,
        check=_no_activities_for_outsiders,
    ),
    # Policies: privacy officers read, lint and propose; the pack's owner RIEC approves.
    S("GET", "/v1/policies/active", maybe=ALL),
    S("GET", "/v1/policies/versions", maybe=PRIVACY_OFFICERS),
    S(
        "GET",
        "/v1/policies/versions/{version_id}",
        url="/v1/policies/versions/1",
        maybe=PRIVACY_OFFICERS,
    ),
    S(
        "POST",
        "/v1/policies/versions/{version_id}/rollback",
        url="/v1/policies/versions/1/rollback",
        mutates=True,
        body=_body({"title": "Back to 1"}),
        maybe=PRIVACY_OFFICERS,
    ),
    S(
        "POST",
        "/v1/policies/lint",
        body=_body({"files": {"rules/30-advies-tot-afsluiting.yaml": "rules: []\n"}}),
        maybe=PRIVACY_OFFICERS,
    ),
    S("GET", "/v1/policies/proposals", maybe=PRIVACY_OFFICERS),
    S(
        "POST",
        "/v1/policies/proposals",
        mutates=True,
        body=_proposal,
        allowed=frozenset({"riec.privacy"}),
        maybe=PRIVACY_OFFICERS,
    ),
    S(
        "GET",
        "/v1/policies/proposals/{proposal_id}",
        url="/v1/policies/proposals/{proposal_id}",
        maybe=PRIVACY_OFFICERS,
    ),
    S(
        "GET",
        "/v1/policies/proposals/{proposal_id}/simulation",
        url="/v1/policies/proposals/{proposal_id}/simulation",
        maybe=PRIVACY_OFFICERS,
    ),
    S(
        "POST",
        "/v1/policies/proposals/{proposal_id}/approve",
        url="/v1/policies/proposals/{proposal_id}/approve",
        mutates=True,
        body=_body({"note": "ok"}),
        allowed=frozenset({"riec.privacy"}),
    ),
    S(
        "POST",
        "/v1/policies/proposals/{proposal_id}/reject",
        url="/v1/policies/proposals/{proposal_id}/reject",
        mutates=True,
        body=_body({"note": "no"}),
        allowed=frozenset({"riec.privacy"}),
    ),
    # Research: agreements are public to callers; consents by each provider's privacy
    # officer; rows need consent first (none here); releases need consents (none here).
    S("GET", "/v1/research/agreements", maybe=ALL),
    S(
        "GET",
        "/v1/research/agreements/{agreement_id}",
        url="/v1/research/agreements/{agreement_id}",
        maybe=ALL,
    ),
    S(
        "POST",
        "/v1/research/agreements/{agreement_id}/consents",
        url="/v1/research/agreements/{agreement_id}/consents",
        mutates=True,
        body=_body({"decision": "consent"}),
        allowed=frozenset({"gemeente.privacy", "politie.privacy", "bank.privacy"}),
        maybe=frozenset({"riec.privacy", "leeuwarden.privacy"}),
    ),
    S(
        "GET",
        "/v1/research/agreements/{agreement_id}/consents",
        url="/v1/research/agreements/{agreement_id}/consents",
        maybe=ALL - OPERATORS,
    ),
    S(
        "POST",
        "/v1/research/agreements/{agreement_id}/rows",
        url="/v1/research/agreements/{agreement_id}/rows",
        mutates=True,
        headers=_idempotent,
        body=_body({"instrument": "politie-incidenten", "rows": [{"x": 1}]}),
    ),
    S(
        "POST",
        "/v1/research/agreements/{agreement_id}/withdrawals",
        url="/v1/research/agreements/{agreement_id}/withdrawals",
        mutates=True,
        body=_body({"respondent_id": "R-0001"}),
        maybe=frozenset({"riec.system", "riec.analyst", "riec.privacy"}),
    ),
    S(
        "POST",
        "/v1/research/agreements/{agreement_id}/releases",
        url="/v1/research/agreements/{agreement_id}/releases",
        mutates=True,
    ),
    S("GET", "/v1/research/releases", maybe=ALL - OPERATORS),
    S("GET", "/v1/research/releases/{release_id}", url="/v1/research/releases/rel-none"),
    S(
        "GET",
        "/v1/research/releases/{release_id}/bundle",
        url="/v1/research/releases/rel-none/bundle",
    ),
    S(
        "GET",
        "/v1/research/releases/{release_id}/proof",
        url="/v1/research/releases/rel-none/proof",
    ),
    # Researchers' keys: the named researcher registers their own; the science partner's
    # people see them; confirm and revoke name no existing key here (404 for everyone).
    S(
        "GET",
        "/v1/research/agreements/{agreement_id}/recipients",
        url="/v1/research/agreements/{agreement_id}/recipients",
        allowed=frozenset({"nscr.researcher", "nscr.privacy"}),
    ),
    S(
        "POST",
        "/v1/research/agreements/{agreement_id}/recipients",
        url="/v1/research/agreements/{agreement_id}/recipients",
        mutates=True,
        body=_fresh_recipient,
        allowed=frozenset({"nscr.researcher"}),
    ),
    S(
        "POST",
        "/v1/research/agreements/{agreement_id}/recipients/{recipient_id}/confirm",
        url="/v1/research/agreements/{agreement_id}/recipients/rcp-none/confirm",
        mutates=True,
    ),
    S(
        "POST",
        "/v1/research/agreements/{agreement_id}/recipients/{recipient_id}/revoke",
        url="/v1/research/agreements/{agreement_id}/recipients/rcp-none/revoke",
        mutates=True,
    ),
)
