"""The demo partners of the worked example: created by ``gateway init`` in development only.

Their OIN and KvK numbers are made up (prefix 99) and belong to no real organisation.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta

from gateway.clock import Clock
from gateway.db import Database
from gateway.identity import service
from gateway.identity.people import SYSTEM_ROLES, PersonKeyer, person_key
from gateway.identity.service import CLI_ACTOR
from gateway.models.partners import Partner, Principal
from gateway.vocabulary import IdentifierType, Role


@dataclass(frozen=True, slots=True)
class DemoPartner:
    """A demo organisation and the roles that act for it."""

    id: str
    kind: str
    name: str
    identifier_type: IdentifierType
    identifier: str
    roles: tuple[Role, ...]


def _oin(n: int) -> str:
    return f"0000009900{n:07d}000"


PS, AN, PO = Role.PARTNER_SYSTEM, Role.ANALYST, Role.PRIVACY_OFFICER

DEMO_PARTNERS: tuple[DemoPartner, ...] = (
    DemoPartner(
        "riec-noord-nederland",
        "riec",
        "RIEC Noord-Nederland",
        IdentifierType.OIN,
        _oin(1),
        (Role.RIEC_ANALYST, PO, Role.OPERATOR, PS),
    ),
    DemoPartner(
        "gemeente-smallingerland",
        "gemeente",
        "Gemeente Smallingerland",
        IdentifierType.OIN,
        _oin(2),
        (PS, AN, PO),
    ),
    DemoPartner(
        "gemeente-leeuwarden",
        "gemeente",
        "Gemeente Leeuwarden",
        IdentifierType.OIN,
        _oin(3),
        (PS, PO),
    ),
    DemoPartner(
        "gemeente-groningen",
        "gemeente",
        "Gemeente Groningen",
        IdentifierType.OIN,
        _oin(4),
        (PS, PO),
    ),
    DemoPartner(
        "politie-noord-nederland",
        "politie",
        "Politie Eenheid Noord-Nederland",
        IdentifierType.OIN,
        _oin(5),
        (PS, AN, PO),
    ),
    DemoPartner(
        "om-noord-nederland",
        "om",
        "Openbaar Ministerie, arrondissement Noord-Nederland",
        IdentifierType.OIN,
        _oin(6),
        (PS, PO),
    ),
    DemoPartner(
        "belastingdienst",
        "belastingdienst",
        "Belastingdienst",
        IdentifierType.OIN,
        _oin(7),
        (PS, PO),
    ),
    DemoPartner("nla", "nla", "Nederlandse Arbeidsinspectie", IdentifierType.OIN, _oin(8), (PS,)),
    DemoPartner("kmar", "kmar", "Koninklijke Marechaussee", IdentifierType.OIN, _oin(9), (PS,)),
    DemoPartner("uwv", "uwv", "UWV", IdentifierType.OIN, _oin(10), (PS,)),
    DemoPartner(
        "voorbeeldbank",
        "bank",
        "Voorbeeldbank N.V. (demo)",
        IdentifierType.KVK,
        "99000001",
        (PS, PO),
    ),
    DemoPartner(
        "voorbeeldtelecom",
        "telecom",
        "Voorbeeld Telecom B.V. (demo)",
        IdentifierType.KVK,
        "99000002",
        (PS, PO),
    ),
    DemoPartner("nscr", "science", "NSCR", IdentifierType.KVK, "99000003", (Role.RESEARCHER, PO)),
    DemoPartner(
        "haagse-hogeschool",
        "science",
        "De Haagse Hogeschool",
        IdentifierType.KVK,
        "99000004",
        (Role.RESEARCHER,),
    ),
    # A second RIEC on the same gateway: it sees only the cases it runs itself.
    DemoPartner(
        "riec-oost-nederland",
        "riec",
        "RIEC Oost-Nederland",
        IdentifierType.OIN,
        _oin(11),
        (Role.RIEC_ANALYST, PO, PS),
    ),
)


def principal_id(partner_id: str, role: Role) -> str:
    """Return the fixed id of a demo principal, e.g. ``politie-noord-nederland.analyst``."""
    return f"{partner_id}.{role.value}"


def demo_person(partner_id: str, role: Role) -> str:
    """Return the made-up person identifier of a demo principal that is a person.

    Every demo person is someone else, so the privacy officers of different partners
    are different people for the four-eyes check.
    """
    return f"{principal_id(partner_id, role)}@demo.invalid"


def create_demo_partners(
    database: Database,
    clock: Clock,
    known_kinds: Collection[str],
    ttl: timedelta,
    *,
    keyer: PersonKeyer,
) -> list[tuple[str, str]]:
    """Create the demo partners and principals that do not exist yet, in one transaction.

    ``keyer`` is the key ring's ``person_key``: demo people get distinct person keys.
    Returns (principal id, token) for each principal created now; tokens of principals
    that already existed are never shown again. As the installer's own bootstrap, it
    issues tokens directly, also for people.
    """
    issued: list[tuple[str, str]] = []
    with database.write() as session:
        for demo in DEMO_PARTNERS:
            if session.get(Partner, demo.id) is None:
                service.add_partner(
                    session,
                    clock,
                    CLI_ACTOR,
                    partner_id=demo.id,
                    kind=demo.kind,
                    name=demo.name,
                    identifier_type=demo.identifier_type,
                    identifier=demo.identifier,
                    known_kinds=known_kinds,
                    is_demo=True,
                )
            for role in demo.roles:
                pid = principal_id(demo.id, role)
                if session.get(Principal, pid) is not None:
                    continue
                service.add_principal(
                    session,
                    clock,
                    CLI_ACTOR,
                    partner_id=demo.id,
                    role=role,
                    label=f"Demo {role.value} of {demo.name}",
                    principal_id=pid,
                    person_key=None
                    if role in SYSTEM_ROLES
                    else person_key(demo_person(demo.id, role), keyer),
                )
                new, _row = service.issue_token(session, clock, CLI_ACTOR, pid, ttl)
                issued.append((pid, new.plaintext))
    return issued
