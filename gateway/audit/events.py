"""Audit event types and the canonical form of an event that becomes a Merkle leaf."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

RefValue = str | int | bool | None
SubjectRef = tuple[str, str]
"""One identifier of a data subject as the log names it: (identifier type, keyed index)."""


class AuditEventType(StrEnum):
    """Everything the gateway logs, as ``scope:resource:action``."""

    PARTNER_ADD = "admin:partner:add"
    PARTNER_REVOKE = "admin:partner:revoke"
    PRINCIPAL_ADD = "admin:principal:add"
    PRINCIPAL_PERSON = "admin:principal:person"
    TOKEN_ISSUE = "admin:token:issue"  # noqa: S105  (an event name, not a secret)
    TOKEN_REVOKE = "admin:token:revoke"  # noqa: S105
    ENROLMENT_ISSUE = "admin:enrolment:issue"
    ENROLMENT_REDEEM = "admin:enrolment:redeem"
    REGISTRY_REFUSE = "admin:registry:refuse"
    OIDC_PROVIDER_SET = "admin:oidc-provider:set"
    OIDC_PERSON_LINK = "admin:oidc-person:link"
    CLIENT_KEY_SET = "admin:client-key:set"
    LOGBOEK_ENDPOINT_SET = "admin:logboek-endpoint:set"
    KEYRING_CREATE = "keys:ring:create"
    KEYRING_REWRAP = "keys:ring:rewrap"
    KEY_ROTATE = "keys:key:rotate"
    KEY_ACTIVATE = "keys:key:activate"
    KEY_SHRED = "keys:key:shred"
    POLICY_DECISION = "policy:decision:record"
    AUDIT_DETAILS_PURGE = "audit:details:purge"
    SIGNAL_SUBMIT = "case:signal:submit"
    PARTICIPANT_ADD = "case:participant:add"
    HOLDINGS_REGISTER = "case:holdings:register"
    HIT_QUERY = "case:hit:query"
    GO_DECISION = "case:decision:record"
    OUTPUT_WRITE = "case:output:write"
    OUTPUT_READ = "case:output:read"
    STEP_TRANSITION = "case:step:transition"
    CASE_CLOSE = "case:case:close"
    CASE_SHRED = "case:case:shred"
    RECORD_SHARE = "case:record:share"
    RECORD_READ = "case:record:read"
    RECORD_DELETE = "case:record:delete"
    RECORD_SHARE_REPLAY = "case:record:share-replay"
    ACCESS_REFUSE = "case:access:refuse"
    SUBJECT_LOG_READ = "subject:processing-log:read"
    POLICY_VERSION_CREATE = "policy:version:create"
    POLICY_VERSION_ACTIVATE = "policy:version:activate"
    POLICY_PROPOSAL_CREATE = "policy:proposal:create"
    POLICY_PROPOSAL_APPROVE = "policy:proposal:approve"
    POLICY_PROPOSAL_REJECT = "policy:proposal:reject"
    POLICY_PROPOSAL_REFUSE = "policy:proposal:refuse"
    WORKBENCH_SIGN_IN = "workbench:session:start"
    WORKBENCH_SIGN_OUT = "workbench:session:end"
    WORKBENCH_SIGN_IN_REFUSE = "workbench:session:refuse"
    RESEARCH_CONSENT_RECORD = "research:consent:record"
    RESEARCH_RECIPIENT_CHANGE = "research:recipient:change"
    RESEARCH_ROWS_SUBMIT = "research:rows:submit"
    RESEARCH_RESPONDENT_WITHDRAW = "research:respondent:withdraw"
    RESEARCH_EXTRACT_RELEASE = "research:extract:release"
    RESEARCH_EXTRACT_DOWNLOAD = "research:extract:download"
    RESEARCH_PROJECT_SHRED = "research:project:shred"


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """What happened, by whom, about what. ``details`` may hold personal data; the rest not.

    ``subjects`` are keyed-hash subject keys (never identifiers); ``parties`` are the ids
    of the partners the event concerns besides the actor (e.g. the provider and the
    recipient of a share), so that each can find it; ``refs`` are ids and outcomes;
    ``details`` is stored beside the leaf and can be deleted after retention;
    ``trace_id`` is the W3C trace id of the request that caused it (``log.append`` fills
    it from the current request when not given). ``persons`` groups the subjects' keys by
    person (see ``persons_of``): a person named by BSN and by name is one person, so one
    line in the processing log. ``foreign`` is the caller's W3C trace context (trace id,
    parent span id) from an incoming ``traceparent`` (the LDV's foreign operation).
    """

    type: AuditEventType
    at: datetime
    actor_principal: str | None = None
    actor_partner: str | None = None
    case_id: str | None = None
    step: int | None = None
    purpose: str | None = None
    legal_basis: str | None = None
    policy_version: str | None = None
    subjects: tuple[str, ...] = ()
    parties: tuple[str, ...] = ()
    refs: dict[str, RefValue] = field(default_factory=dict)
    details: dict[str, Any] | None = None
    trace_id: str | None = None
    persons: tuple[tuple[SubjectRef, ...], ...] = ()
    foreign: tuple[str, str] | None = None


def persons_of(groups: Iterable[Iterable[SubjectRef]]) -> tuple[tuple[SubjectRef, ...], ...]:
    """Return the groups merged where they share a key: one group per person, canonical.

    Two records about one person share an identifier (the BSN), so their identifiers are
    one person's. Each group is sorted, the groups by their first member; empty groups
    are dropped.
    """
    merged: list[set[SubjectRef]] = []
    for group in groups:
        found = set(group)
        if not found:
            continue
        keys = {key for _, key in found}
        rest = []
        for other in merged:
            if keys & {key for _, key in other}:
                found |= other
                keys |= {key for _, key in other}
            else:
                rest.append(other)
        merged = [*rest, found]
    return tuple(sorted(tuple(sorted(group)) for group in merged))


def person_of(document: Mapping[str, Any]) -> dict[str, SubjectRef]:
    """Return, for each key a leaf document groups by person, (person key, identifier type).

    The person key is the first key of the person's sorted group: it stands for the person
    within the entry. Keys the document does not group are left out (persons of their own).
    """
    found: dict[str, SubjectRef] = {}
    for person in document.get("persons") or ():
        refs = [str(item).split(":", 1) for item in person]
        anchor = refs[0][1]
        for id_type, key in refs:
            found[key] = (anchor, id_type)
    return found


def subjects_digest(keys: Iterable[str]) -> str:
    """Return the hex SHA-256 over sorted keys, each followed by a newline.

    An entry naming too many subjects to list (a research release) names this digest
    (``refs.subjects_sha256``) instead; its subject links must hash to it.
    """
    digest = hashlib.sha256()
    for key in keys:
        digest.update(key.encode() + b"\n")
    return digest.hexdigest()


def subject_links(index: int, document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Return the ``audit_subjects`` rows of leaf ``index``: key, person key, identifier type,
    and when the purge deletes them (the leaf's ``subjects_until``, by retention category)."""
    of = person_of(document)
    until = document.get("subjects_until")
    delete_after = None if until is None else datetime.fromisoformat(until)
    return [
        {
            "leaf_index": index,
            "subject_key": key,
            "person": of[key][0] if key in of else None,
            "id_type": of[key][1] if key in of else None,
            "delete_after": delete_after,
        }
        for key in document["subjects"]
    ]


# The encoding of ``json.dumps(value, sort_keys=True, separators=(",", ":"),
# ensure_ascii=False)``, built once: ``dumps`` builds an encoder on every call. Without
# the circular check (its markers would outlive a failed call): a cycle recurses until
# RecursionError, as the float check before it always did.
_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, check_circular=False
)
_PLAIN = frozenset({str, int, bool, type(None)})
"""Types that hold no float and no members to look into."""


def canonical_json(value: Any) -> bytes:
    """Return the canonical UTF-8 JSON of ``value``: sorted keys, no spaces, no floats.

    Raises TypeError for floats and other values without one exact encoding.
    """
    text = _ENCODER.encode(value)  # first: what it encodes has no cycle to walk round
    _reject_floats(value)
    return text.encode()


def _reject_floats(value: Any) -> None:
    """Raise TypeError if a float is among the values of ``value``'s dicts, lists and tuples.

    Iterative, and a container whose members are all of ``_PLAIN`` types (most are) is
    passed by one C-level test instead of a Python call per member.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            members: Iterable[Any] = item.values()
        elif isinstance(item, list | tuple):
            members = item
        elif isinstance(item, float):
            raise TypeError("floats have no canonical form in audit events")
        else:
            continue
        if not _PLAIN.issuperset(map(type, members)):
            stack.extend(m for m in members if type(m) not in _PLAIN)


def _refuse_number(text: str) -> Any:
    raise ValueError(f"a float ({text}) has no canonical form")


_DECODER = json.JSONDecoder(parse_float=_refuse_number, parse_constant=_refuse_number)


def parse_canonical(text: str) -> Any:
    """Return JSON written by ``canonical_json`` parsed; raises ValueError for a float in it.

    What it returns holds no float, so ``encode_parsed`` writes it back without looking.
    """
    return _DECODER.decode(text)


def encode_parsed(value: Any) -> bytes:
    """Return ``canonical_json`` of a value built from ``parse_canonical`` output and
    ints, strings, booleans and None: the same bytes, without the walk for floats."""
    return _ENCODER.encode(value).encode()


def format_time(value: datetime) -> str:
    """Return an aware datetime as RFC 3339 UTC with microseconds, e.g. ``...T12:00:00.000001Z``."""
    if value.tzinfo is None:
        raise ValueError("audit times must be timezone-aware")
    utc = value.astimezone(UTC)
    if utc.year < 1000:  # strftime writes such a year unpadded; isoformat would pad it
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def details_commitment(salt: bytes, body: bytes) -> str:
    """Return the hex SHA-256 commitment of salted details."""
    return hashlib.sha256(salt + body).hexdigest()


def leaf_document(
    event: AuditEvent,
    index: int,
    commitment: str | None,
    details_until: datetime | None = None,
    subjects_until: datetime | None = None,
    *,
    trace_id: str | None = None,
    foreign: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """Return the leaf's JSON document: ids, hashes and outcomes, no personal data.

    ``commitment`` is the salted hash of the details and ``details_until`` the end of
    their retention (both None without details); ``subjects_until`` is the end of the
    retention of the entry's data-subject index rows (the key is there only when the
    entry names subjects, so the leaves of entries about nobody are unchanged).
    ``trace_id`` and ``foreign`` stand in for the event's own when it has none (the
    current request's, as ``log.pending_values`` passes them).
    """
    if event.trace_id is not None:
        trace_id = event.trace_id
    if event.foreign is not None:
        foreign = event.foreign
    document: dict[str, Any] = {
        "v": 1,
        "index": index,
        "type": str(event.type),
        "at": format_time(event.at),
        "actor": {"principal": event.actor_principal, "partner": event.actor_partner},
        "case": event.case_id,
        "step": event.step,
        "purpose": event.purpose,
        "legal_basis": event.legal_basis,
        "policy_version": event.policy_version,
        "subjects": sorted(set(event.subjects)),
        "parties": sorted(set(event.parties)),
        "refs": dict(event.refs),
        "details_sha256": commitment,
        "details_until": None if details_until is None else format_time(details_until),
        "trace": trace_id,
    }
    # Only when present, so that the documents (and hashes) of earlier entries keep their form.
    if event.persons:
        document["persons"] = [[f"{t}:{k}" for t, k in person] for person in event.persons]
    if foreign is not None:
        document["foreign"] = {"trace": foreign[0], "span": foreign[1]}
    if subjects_until is not None:
        document["subjects_until"] = format_time(subjects_until)
    return document
