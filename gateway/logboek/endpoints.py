"""Setting a partner's Logboek endpoint: where the lines about its processing are sent.

An endpoint is an OTLP receiver: ``http/protobuf`` (the full traces URL; a URL without a
path gets the standard ``/v1/traces``) or ``grpc``, with optional TLS files (a CA bundle
to trust, a client certificate and key for mutual TLS) named by their path on the
gateway's host. Plain ``http`` is accepted only in development mode. Every change is
recorded with its audit entry in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

from sqlmodel import Session

from gateway import usecase
from gateway.audit.events import AuditEventType
from gateway.clock import Clock
from gateway.errors import ConflictError, NotFoundError
from gateway.keys.documents import KeyActor
from gateway.logboek.errors import LogboekEndpointInvalidError
from gateway.models.logboek import LogboekEndpoint
from gateway.models.partners import Partner

TRACES_PATH = "/v1/traces"


class LogboekProtocol(StrEnum):
    """The OTLP transports a Logboek endpoint may speak."""

    HTTP_PROTOBUF = "http/protobuf"
    GRPC = "grpc"


@dataclass(frozen=True, slots=True)
class EndpointSpec:
    """A partner's Logboek endpoint as given by an operator."""

    url: str
    protocol: LogboekProtocol = LogboekProtocol.HTTP_PROTOBUF
    ca_file: Path | None = None
    client_cert_file: Path | None = None
    client_key_file: Path | None = None


def checked_url(spec: EndpointSpec, *, allow_http: bool) -> str:
    """Return the URL to send to; raise LogboekEndpointInvalidError if it is not acceptable."""
    parts = urlsplit(spec.url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LogboekEndpointInvalidError(
            "the endpoint must be an http(s) URL, e.g. https://logboek.example/v1/traces"
        )
    if parts.username or parts.password or parts.query or parts.fragment:
        raise LogboekEndpointInvalidError(
            "the endpoint URL must not carry credentials, a query or a fragment"
        )
    if parts.scheme == "http" and not allow_http:
        raise LogboekEndpointInvalidError(
            "a Logboek endpoint must use https in production (plain http only in development)"
        )
    tls = (spec.ca_file, spec.client_cert_file, spec.client_key_file)
    if parts.scheme == "http" and any(f is not None for f in tls):
        raise LogboekEndpointInvalidError("TLS files need an https endpoint")
    if (spec.client_cert_file is None) != (spec.client_key_file is None):
        raise LogboekEndpointInvalidError("give a client certificate and its key together")
    for path in tls:
        if path is not None and not path.is_file():
            raise LogboekEndpointInvalidError(f"no such file: {path}")
    url = spec.url.strip()
    if spec.protocol is LogboekProtocol.HTTP_PROTOBUF and parts.path in ("", "/"):
        url = url.rstrip("/") + TRACES_PATH
    return url


def set_endpoint(
    session: Session,
    clock: Clock,
    actor: KeyActor,
    partner_id: str,
    spec: EndpointSpec,
    *,
    allow_http: bool,
) -> LogboekEndpoint:
    """Store ``partner_id``'s Logboek endpoint with its audit entry; return it.

    Raises NotFoundError (no such partner), ConflictError (partner revoked) and
    LogboekEndpointInvalidError. Lines of entries integrated from now on are queued for it.
    """
    partner = session.get(Partner, partner_id)
    if partner is None:
        raise NotFoundError(f"no partner {partner_id}", partner=partner_id)
    if not partner.active:
        raise ConflictError(f"partner {partner_id} is revoked", partner=partner_id)
    url = checked_url(spec, allow_http=allow_http)
    row = session.get(LogboekEndpoint, partner_id) or LogboekEndpoint(
        partner_id=partner_id, url=url, protocol=spec.protocol.value, updated_at=clock.now()
    )
    row.url, row.protocol, row.updated_at = url, spec.protocol.value, clock.now()
    row.ca_file = None if spec.ca_file is None else str(spec.ca_file)
    row.client_cert_file = None if spec.client_cert_file is None else str(spec.client_cert_file)
    row.client_key_file = None if spec.client_key_file is None else str(spec.client_key_file)
    session.add(row)
    usecase.record_event(
        session,
        clock,
        actor,
        AuditEventType.LOGBOEK_ENDPOINT_SET,
        refs={
            "partner": partner_id,
            "url": url,
            "protocol": spec.protocol.value,
            "mutual_tls": spec.client_cert_file is not None,
        },
    )
    return row


def remove_endpoint(session: Session, clock: Clock, actor: KeyActor, partner_id: str) -> None:
    """Remove ``partner_id``'s endpoint with its audit entry; raise NotFoundError if none.

    Lines already queued for it stay queued (``gateway logboek status`` shows them) and
    are sent once an endpoint is set again; no new lines are queued meanwhile.
    """
    row = session.get(LogboekEndpoint, partner_id)
    if row is None:
        raise NotFoundError(f"partner {partner_id} has no Logboek endpoint", partner=partner_id)
    session.delete(row)
    usecase.record_event(
        session,
        clock,
        actor,
        AuditEventType.LOGBOEK_ENDPOINT_SET,
        refs={"partner": partner_id, "url": None, "protocol": None, "mutual_tls": False},
    )
