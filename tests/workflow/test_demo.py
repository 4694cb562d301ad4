"""``gateway demo``: the worked example, played over real HTTP against a running gateway."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import pytest
import uvicorn
from rich.console import Console

from gateway.app import create_app
from gateway.cli import run
from gateway.demo import AGREEMENT, BANK, GEMEENTE, PRINCIPALS, Demo, shorten_fields
from gateway.research.agreements import AgreementVocabulary, load_agreement
from tests.conftest import Gateway


def demo_on(gateway: Gateway, out: StringIO) -> Demo:
    """The demo, talking to ``gateway`` through its test client and printing into ``out``."""
    return Demo(
        lambda method, path, **kw: gateway.client.request(method, path, **kw),
        {p: gateway.tokens[p] for p in PRINCIPALS},
        Console(file=out, width=200),
    )


def test_the_demo_walks_all_seven_steps_and_prints_who_saw_what(gateway: Gateway) -> None:
    out = StringIO()
    demo = demo_on(gateway, out)
    case_id = demo.run()
    text = out.getvalue()
    for step in range(1, 8):
        assert f"Stap {step}:" in text
    assert "hit/no-hit bij belastingdienst: HIT" in text
    assert "hit/no-hit bij om-noord-nederland: geen hit" in text
    assert "is geen casuspartner en krijgt niets (403)" in text
    gemeente_at_3 = demo.seen[GEMEENTE]
    assert gemeente_at_3["step"] == 7 and gemeente_at_3["records"] == []
    assert "fiscaal-alleen-43c" in text and "alleen samenvatting" in text
    assert "Verwerkingenlogboek" in text and case_id
    assert BANK in PRINCIPALS


def test_the_demo_can_be_played_again_on_the_same_gateway(gateway: Gateway) -> None:
    # idempotency keys belong to a partner across cases: a second run must not replay
    # (or collide with) the first run's shares
    first = demo_on(gateway, StringIO()).run()
    second = demo_on(gateway, StringIO()).run()
    assert first != second


def test_the_demo_makes_and_verifies_one_research_release(gateway: Gateway, tmp_path: Path) -> None:
    out = StringIO()
    demo = demo_on(gateway, out)
    policies = gateway.settings.policies_dir
    agreement = load_agreement(
        policies / "agreements" / f"{AGREEMENT}.yaml", AgreementVocabulary.from_policies(policies)
    )
    bundle = demo.run_research(agreement, tmp_path / "downloads")
    assert bundle.is_file() and bundle.suffix == ".tar"
    text = out.getvalue()
    assert "toestemming vastgelegd voor 8 leveranciers" in text
    # the researcher's own key, confirmed by the NSCR's officer, opens the release
    key = tmp_path / "demo-researcher" / "researcher.key"
    assert key.stat().st_mode & 0o777 == 0o600
    assert "bevestigt de sleutel van de onderzoeker" in text
    opened = bundle.with_suffix("") / "data.csv"
    header = opened.read_text(encoding="utf-8").splitlines()[0]
    assert f"    {header}" in text and "de eerste rijen van data.csv" in text
    if shutil.which("age"):
        assert f"age -d -i {key}" in text
    assert "handtekening, checksums en opname in de auditlog" in text
    assert "identificerende gegevens zijn bij aankomst gepseudonimiseerd" in text


def test_the_demo_opens_the_release_with_pyrage_where_age_is_not_installed(
    gateway: Gateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("gateway.research.opening.shutil.which", lambda _name: None)
    out = StringIO()
    policies = gateway.settings.policies_dir
    agreement = load_agreement(
        policies / "agreements" / f"{AGREEMENT}.yaml", AgreementVocabulary.from_policies(policies)
    )
    bundle = demo_on(gateway, out).run_research(agreement, tmp_path / "downloads")
    assert "pyrage (age is niet geïnstalleerd" in out.getvalue()
    assert (bundle.with_suffix("") / "data.csv").read_text(encoding="utf-8").startswith('"person"')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served(gateway: Gateway, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """The test gateway served by uvicorn on a free port; the CLI pointed at its store."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(gateway.settings, db=gateway.database),
            host="127.0.0.1",
            port=port,
            log_config=None,
            access_log=False,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    for name in list(os.environ):
        if name.startswith("GATEWAY_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("GATEWAY_DATABASE_URL", gateway.database.url)
    monkeypatch.setenv("GATEWAY_KEYS_DIR", str(gateway.settings.keys_dir))
    monkeypatch.setenv("GATEWAY_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("GATEWAY_POLICIES_DIR", str(gateway.settings.policies_dir))
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_gateway_demo_command_runs_against_a_served_gateway(
    served: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["demo", "--url", served]) == 0
    out = capsys.readouterr().out
    assert "went through all seven steps" in out
    assert "Stap 7: Afsluiten" in out
    assert "research release verified and saved as" in out


def test_gateway_demo_says_clearly_when_no_gateway_runs(
    served: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["demo", "--url", "http://127.0.0.1:9"]) == 1
    assert "no ready gateway at http://127.0.0.1:9" in capsys.readouterr().err


def test_retention_run_reports_what_it_deleted(
    served: str, gateway: Gateway, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["retention", "run"]) == 0
    assert "0 record(s) deleted, 0 case key(s) destroyed" in capsys.readouterr().out


def test_the_demo_speaks_in_sentences_without_none_or_half_values(gateway: Gateway) -> None:
    out = StringIO()
    demo_on(gateway, out).run()
    text = out.getvalue()
    assert "None" not in text
    shown = [line for line in text.splitlines() if " ziet " in line and "regel " in line]
    assert shown, "the demo printed no record"
    for line in shown:
        fields = line.split("): ", 1)[1]
        # every value is whole or visibly shortened, never JSON cut in the middle
        assert fields.count('"') % 2 == 0 and not fields.rstrip().endswith(("{", "[", ",", ":"))


def test_a_second_research_run_says_it_stored_nothing_new(gateway: Gateway, tmp_path: Path) -> None:
    policies = gateway.settings.policies_dir
    agreement = load_agreement(
        policies / "agreements" / f"{AGREEMENT}.yaml", AgreementVocabulary.from_policies(policies)
    )
    demo_on(gateway, StringIO()).run_research(agreement, tmp_path / "first")
    out = StringIO()
    demo_on(gateway, out).run_research(agreement, tmp_path / "second")
    text = out.getvalue()
    assert "niets nieuws opgeslagen" in text
    assert "zijn bij aankomst gepseudonimiseerd" not in text


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"a": "kort"}, "a: kort"),
        ({"tekst": "x" * 50}, "tekst: " + "x" * 31 + "…"),
        ({"n": 3, "lijst": [1, 2]}, "n: 3; lijst: [1, 2]"),
    ],
)
def test_record_fields_are_shortened_per_value(fields: dict[str, object], expected: str) -> None:
    assert shorten_fields(fields) == expected


def test_fields_that_do_not_fit_are_counted() -> None:
    many = {f"veld{i}": "waarde" * 3 for i in range(20)}
    shown = shorten_fields(many)
    assert len(shown) <= 110
    assert shown.endswith("velden)")
