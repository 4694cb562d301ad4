"""Partners' Logboeken receive the lines about their processing over OTLP, none lost, none twice.

The receiver is a real OTLP/HTTP endpoint in the test, decoding each request with the
official ``opentelemetry-proto`` types; it can be killed and restarted on the same port.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select

from gateway.config import Mode, Settings
from gateway.db import Database
from gateway.demo import GEMEENTE, POLITIE, RIEC
from gateway.identity.service import CLI_ACTOR
from gateway.logboek import endpoints, outbox
from gateway.logboek.errors import LogboekEndpointInvalidError
from gateway.logboek.exporter import ExportSettings, LogboekExporter, flush
from gateway.logboek.lines import lines_for
from gateway.models.audit import AuditEntry
from gateway.models.logboek import LogboekOutboxRow
from tests.conftest import Gateway
from tests.helpers.cases import POLICE_RECORD, go, start_case
from tests.helpers.otlp import Received, Receiver

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
POLITIE_ID = "politie-noord-nederland"
GEMEENTE_ID = "gemeente-smallingerland"
FAST = ExportSettings(
    batch=2, timeout=0.5, first_delay=timedelta(seconds=30), max_delay=timedelta(minutes=5)
)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    found.start()
    yield found
    found.kill()


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """No background exporter: the test drives every delivery itself."""
    return settings.model_copy(update={"logboek_export": False})


def connect(gateway: Gateway, receiver: Receiver, *partners: str) -> None:
    with gateway.database.write() as session:
        for partner in partners:
            endpoints.set_endpoint(
                session,
                gateway.clock,
                CLI_ACTOR,
                partner,
                endpoints.EndpointSpec(receiver.url(partner)),
                allow_http=True,
            )


def expected(gateway: Gateway, partner: str) -> Counter[tuple[str, str]]:
    """Every line of every entry about ``partner``'s processing, from the audit log itself."""
    wanted: Counter[tuple[str, str]] = Counter()
    with gateway.database.read() as session:
        entries = session.exec(select(AuditEntry).order_by(col(AuditEntry.leaf_index))).all()
        for entry in entries:
            concerned = {entry.actor_partner_id, *json.loads(entry.leaf)["parties"]}
            if partner in concerned:
                lines = lines_for(session, entry)
                wanted.update((line.trace_id, line.span_id) for line in lines)
    return wanted


def got(receiver: Receiver, partner: str) -> Counter[tuple[str, str]]:
    return Counter((s.trace_id, s.span_id) for s in receiver.spans.get(partner, []))


def waiting(gateway: Gateway) -> int:
    with gateway.database.read() as session:
        return len(session.exec(select(LogboekOutboxRow)).all())


def share_and_read(gateway: Gateway, walk_key: str, trace: str | None = None) -> None:
    walk = start_case(gateway)
    go(walk)
    headers = {**gateway.auth(POLITIE), "Idempotency-Key": walk_key}
    if trace:
        headers["traceparent"] = f"00-{trace}-00f067aa0ba902b7-01"
    response = gateway.client.post(walk.case("/records"), json=POLICE_RECORD, headers=headers)
    assert response.status_code == 201, response.text
    walk.records(GEMEENTE)
    walk.records(RIEC)


def test_each_partners_logboek_gets_exactly_its_lines_through_an_outage(
    gateway: Gateway, receiver: Receiver
) -> None:
    connect(gateway, receiver, POLITIE_ID, GEMEENTE_ID)
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    share_and_read(gateway, "incident-0001", trace)
    assert waiting(gateway) > 4  # queued with the entries, before any export

    receiver.die_after = 2  # killed mid-stream: after two of several small batches
    first = flush(gateway.database, gateway.clock, FAST)
    assert first.failed and waiting(gateway) > 0

    share_and_read(gateway, "incident-0002")  # more processing while the Logboek is down
    with gateway.database.read() as session:
        down = {s.partner_id: s for s in outbox.status(session)}
    assert down[POLITIE_ID].pending > 0 and down[GEMEENTE_ID].pending > 0
    assert any(s.failed for s in down.values())

    receiver.die_after = None
    receiver.start()  # back, on the same port
    # a partner a failed attempt holds back waits out its delay; one whose batches all
    # went through before the receiver died (which, depends on the order) need not
    backing_off = {partner for partner, status in down.items() if status.failed}
    assert backing_off
    delivered = flush(gateway.database, gateway.clock, FAST).delivered
    assert not backing_off & set(delivered)
    gateway.clock.advance(timedelta(minutes=10))
    again = flush(gateway.database, gateway.clock, FAST)
    assert again.failed == {}

    assert waiting(gateway) == 0
    for partner in (POLITIE_ID, GEMEENTE_ID):
        want = expected(gateway, partner)
        assert want and got(receiver, partner) == want  # every line, once each
        assert max(got(receiver, partner).values()) == 1
    assert set(receiver.spans) == {POLITIE_ID, GEMEENTE_ID}  # the RIEC named no endpoint
    politie = receiver.spans[POLITIE_ID]
    assert {s.name for s in politie} >= {"case:record:share", "case:record:read"}
    shared = [s for s in politie if s.name == "case:record:share" and s.trace_id == trace]
    assert shared and all(s.parent_span_id and len(s.span_id) == 16 for s in shared)
    with gateway.database.read() as session:
        lines = {
            line.span_id: line
            for entry in session.exec(select(AuditEntry)).all()
            for line in lines_for(session, entry)
        }
    for span in politie:  # the line's own ids, times, status and attributes
        line = lines[span.span_id]
        assert (span.trace_id, span.parent_span_id) == (line.trace_id, line.parent_span_id)
        assert span.start_ns == (line.start_time - EPOCH) // timedelta(microseconds=1) * 1000
        assert span.end_ns == (line.end_time - EPOCH) // timedelta(microseconds=1) * 1000
        assert span.status == {"UNSET": 0, "OK": 1, "ERROR": 2}[line.status_code]
        assert json.loads(span.attributes) == line.otel_attributes()
    gemeente_reads = [s for s in receiver.spans[GEMEENTE_ID] if s.name == "case:record:read"]
    assert all(
        json.loads(s.attributes)["nl.riec.gateway.actor_partner"] == GEMEENTE_ID
        for s in gemeente_reads
    )


def test_a_batch_answered_too_late_is_sent_again_with_the_same_ids(
    gateway: Gateway, receiver: Receiver
) -> None:
    connect(gateway, receiver, GEMEENTE_ID)
    share_and_read(gateway, "incident-0003")
    receiver.slow = 1.5  # longer than the exporter waits: it cannot know the batch arrived
    late = ExportSettings(batch=500, timeout=0.3, first_delay=timedelta(seconds=1))
    assert flush(gateway.database, gateway.clock, late).failed
    assert waiting(gateway) > 0  # not acknowledged, so kept
    receiver.slow = 0.0
    gateway.clock.advance(timedelta(seconds=5))
    assert flush(gateway.database, gateway.clock, late).failed == {}
    assert waiting(gateway) == 0
    spans = receiver.spans[GEMEENTE_ID]
    # at least once: the resent spans are identical, ids included, so a Logboek keyed on
    # (trace id, span id) keeps one of each
    assert set(got(receiver, GEMEENTE_ID)) == set(expected(gateway, GEMEENTE_ID))
    by_id: dict[tuple[str, str], set[Received]] = {}
    for span in spans:
        by_id.setdefault((span.trace_id, span.span_id), set()).add(span)
    assert all(len(versions) == 1 for versions in by_id.values())
    assert max(got(receiver, GEMEENTE_ID).values()) == 2


def test_the_serving_process_exports_in_the_background(
    gateway: Gateway, receiver: Receiver, settings: Settings
) -> None:
    connect(gateway, receiver, POLITIE_ID)
    exporter = LogboekExporter(gateway.database, gateway.clock, FAST, poll=0.05)
    exporter.start()
    try:
        share_and_read(gateway, "incident-0004")
        for _ in range(200):
            if waiting(gateway) == 0:
                break
            threading.Event().wait(0.05)
    finally:
        exporter.stop()
    assert waiting(gateway) == 0
    assert got(receiver, POLITIE_ID) == expected(gateway, POLITIE_ID)


def test_nothing_is_queued_for_partners_without_an_endpoint(gateway: Gateway) -> None:
    share_and_read(gateway, "incident-0005")
    assert waiting(gateway) == 0


@pytest.mark.parametrize(
    ("url", "mode", "files", "message"),
    [
        ("http://logboek.example/v1/traces", Mode.PRODUCTION, {}, "https in production"),
        ("https://user:pw@logboek.example/", Mode.PRODUCTION, {}, "credentials"),
        ("ftp://logboek.example/", Mode.DEVELOPMENT, {}, r"http\(s\) URL"),
        ("https://logboek.example/", Mode.PRODUCTION, {"ca_file": "missing.pem"}, "no such file"),
        ("http://logboek.example/", Mode.DEVELOPMENT, {"ca_file": "ca.pem"}, "https endpoint"),
        ("https://logboek.example/", Mode.PRODUCTION, {"client_cert_file": "ca.pem"}, "together"),
    ],
)
def test_endpoints_that_would_leak_or_cannot_work_are_refused(
    gateway: Gateway, tmp_path: Path, url: str, mode: Mode, files: dict[str, str], message: str
) -> None:
    (tmp_path / "ca.pem").write_text("not checked here\n")
    spec = endpoints.EndpointSpec(url, **{k: tmp_path / v for k, v in files.items()})  # type: ignore[arg-type]
    with pytest.raises(LogboekEndpointInvalidError, match=message), gateway.database.write() as s:
        endpoints.set_endpoint(
            s, gateway.clock, CLI_ACTOR, POLITIE_ID, spec, allow_http=mode is Mode.DEVELOPMENT
        )


def test_an_https_base_url_gets_the_traces_path_and_the_change_is_audited(
    gateway: Gateway,
) -> None:
    with gateway.database.write() as session:
        row = endpoints.set_endpoint(
            session,
            gateway.clock,
            CLI_ACTOR,
            POLITIE_ID,
            endpoints.EndpointSpec("https://logboek.politie.example"),
            allow_http=False,
        )
    assert row.url == "https://logboek.politie.example/v1/traces"
    with gateway.database.read() as session:
        last = session.exec(select(AuditEntry).order_by(col(AuditEntry.leaf_index).desc())).first()
    assert last is not None and last.event_type == "admin:logboek-endpoint:set"


def test_exporters_in_several_processes_never_send_a_line_twice(
    gateway: Gateway, receiver: Receiver
) -> None:
    connect(gateway, receiver, POLITIE_ID, GEMEENTE_ID)
    share_and_read(gateway, "incident-0007")
    share_and_read(gateway, "incident-0008")
    exporters = [
        LogboekExporter(Database(gateway.database.url), gateway.clock, FAST, poll=0.01)
        for _ in range(3)
    ]
    for exporter in exporters:
        exporter.start()
    try:
        for _ in range(400):
            if waiting(gateway) == 0:
                break
            threading.Event().wait(0.025)
    finally:
        for exporter in exporters:
            exporter.stop()
            exporter.db.dispose()
    assert waiting(gateway) == 0
    for partner in (POLITIE_ID, GEMEENTE_ID):
        assert got(receiver, partner) == expected(gateway, partner)


def test_one_partners_outage_does_not_hold_back_another_partners_lines(
    gateway: Gateway, receiver: Receiver
) -> None:
    connect(gateway, receiver, POLITIE_ID)
    down = Receiver()
    down.start()
    connect(gateway, down, GEMEENTE_ID)
    down.kill()  # the gemeente's Logboek is not listening
    share_and_read(gateway, "incident-0010")
    result = flush(gateway.database, gateway.clock, FAST)
    assert set(result.failed) == {GEMEENTE_ID}
    assert got(receiver, POLITIE_ID) == expected(gateway, POLITIE_ID)
    with gateway.database.read() as session:
        by_partner = {s.partner_id: s for s in outbox.status(session)}
        assert not outbox.has_due(session, gateway.clock.now())  # idle until the backoff ends
    assert by_partner[POLITIE_ID].pending == 0
    gemeente = by_partner[GEMEENTE_ID]
    assert gemeente.pending == sum(expected(gateway, GEMEENTE_ID).values())
    assert gemeente.failed > 0 and gemeente.last_error and "unreachable" in gemeente.last_error
    assert gemeente.next_attempt_at == gateway.clock.now() + FAST.first_delay


def test_lines_claimed_by_an_exporter_that_died_are_sent_once_its_lease_ends(
    gateway: Gateway, receiver: Receiver
) -> None:
    connect(gateway, receiver, POLITIE_ID)
    share_and_read(gateway, "incident-0011")
    with gateway.database.write() as session:  # an exporter claims a batch, then dies
        (dead,) = outbox.claim(
            session,
            gateway.clock.now(),
            lease=FAST.lease,
            limit=FAST.batch,
            is_postgres=not gateway.database.is_sqlite,
        )
    assert flush(gateway.database, gateway.clock, FAST).delivered[POLITIE_ID] == (
        sum(expected(gateway, POLITIE_ID).values()) - len(dead.ids)
    )
    assert waiting(gateway) == len(dead.ids)  # still leased: nobody else sends them yet
    gateway.clock.advance(FAST.lease)
    assert flush(gateway.database, gateway.clock, FAST).delivered == {POLITIE_ID: len(dead.ids)}
    assert waiting(gateway) == 0
    assert got(receiver, POLITIE_ID) == expected(gateway, POLITIE_ID)
