"""HTTP benchmark: the gateway against a minimal baseline app, served the same way.

Run ``.venv/bin/python -m bench.http`` (``--quick`` for short runs). For SQLite and, if
the local server answers, PostgreSQL, it initialises a gateway (demo partners, one case
at step 3 with two shared records), starts ``gateway serve`` and, in the same run,
``bench.http_baseline`` with the same server (uvicorn), worker count and database. wrk
(Debian's ``wrk``) drives both at 1, 8 and 32 connections for a record read
(``GET /v1/cases/{id}/records``), a record share (``POST .../records``, a new
idempotency key per request) and an AuthZEN evaluation; each line prints the gateway's
requests/s, its ratio to the baseline's, and both p50/p99 latencies. With ``--runs N``
every cell is measured N times and printed as min/median/max.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.audit import postgres_database
from gateway.clock import SystemClock
from gateway.config import Settings
from gateway.db import Database
from gateway.demo import BELASTING, GEMEENTE, POLITIE, RIEC
from gateway.demo_data import FISCAL_RECORD, GARAGE_KVK, POLICE_RECORD, PURPOSE, SIGNAL, YOUTH
from gateway.demo_partners import create_demo_partners
from gateway.keys import KeyRing
from gateway.policy.vocabulary import partner_kinds

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
POLICIES = ROOT / "policies"
EVALUATION = {
    "subject": {"type": "partner", "id": "gemeente-smallingerland"},
    "action": {"name": "case:record:read"},
    "resource": {
        "type": "record",
        "id": "r-1",
        "properties": {"category": "police-incident", "provider": "politie-noord-nederland"},
    },
    "context": {"process": "casusaanpak", "step": 3, "purpose": PURPOSE},
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serving(command: list[str], env: dict[str, str]) -> Iterator[str]:
    """Run a server until the block ends; yield its base URL once /healthz or /docs answer."""
    port = _free_port()
    process = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{command[0]} stopped at start-up")
            try:
                httpx.get(f"{url}/openapi.json", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{command[0]} did not start") from None
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@dataclass
class Site:
    """An initialised gateway: its environment, demo tokens and a case with records."""

    env: dict[str, str]
    tokens: dict[str, str]
    case_id: str = ""


def initialise(folder: Path, url: str, integration: str) -> Site:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(
        GATEWAY_DATA_DIR=str(folder / "data"),
        GATEWAY_KEYS_DIR=str(folder / "keys"),
        GATEWAY_POLICIES_DIR=str(POLICIES),
        GATEWAY_DATABASE_URL=url,
        GATEWAY_AUDIT_INTEGRATION=integration,
        GATEWAY_LOG_LEVEL="WARNING",
    )
    subprocess.run(
        [str(BIN / "gateway"), "init", "--no-demo"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    settings = Settings(
        data_dir=folder / "data", keys_dir=folder / "keys", policies_dir=POLICIES, database_url=url
    )
    database = Database(url)
    clock = SystemClock()
    issued = create_demo_partners(
        database,
        clock,
        partner_kinds(POLICIES),
        timedelta(days=30),
        keyer=KeyRing.open(settings, clock=clock).person_key,
    )
    database.dispose()
    return Site(env, dict(issued))


def open_case(site: Site, base: str) -> None:
    """Bring one case to step 3 with a police and a fiscal record, through the API."""
    with httpx.Client(base_url=base, timeout=30) as client:

        def call(who: str, method: str, path: str, body: Any = None, **headers: str) -> Any:
            sent = {"Authorization": f"Bearer {site.tokens[who]}", **headers}
            response = client.request(method, path, json=body, headers=sent)
            if response.status_code not in (200, 201):
                raise RuntimeError(f"{method} {path}: {response.status_code} {response.text}")
            return response.json()

        case = call(GEMEENTE, "POST", "/v1/signals", SIGNAL)["id"]
        site.case_id = case
        for partner in ("politie-noord-nederland", "belastingdienst", "om-noord-nederland"):
            call(RIEC, "POST", f"/v1/cases/{case}/participants", {"partner_id": partner})
        holdings = (
            (POLITIE, "police-incident", "name", YOUTH),
            (BELASTING, "fiscal", "kvk", GARAGE_KVK),
        )
        for who, category, kind, value in holdings:
            body = {"category": category, "identifiers": [{"type": kind, "value": value}]}
            call(who, "POST", "/v1/holdings", body)
        call(RIEC, "POST", f"/v1/cases/{case}/transitions", {"to_step": 2})
        decision = {
            "decision": "go",
            "purpose": PURPOSE,
            "legal_basis": "riec-convenant",
            "motivation": "bench",
        }
        call(RIEC, "POST", f"/v1/cases/{case}/decision", decision)
        call(RIEC, "POST", f"/v1/cases/{case}/transitions", {"to_step": 3})
        for who, record in ((POLITIE, POLICE_RECORD), (BELASTING, FISCAL_RECORD)):
            call(who, "POST", f"/v1/cases/{case}/records", record, **{"Idempotency-Key": who})


LUA = """
counter = 0
request = function()
  counter = counter + 1
  local headers = {}
  headers["Authorization"] = "Bearer %(token)s"
  headers["Content-Type"] = "application/json"
  %(extra)s
  return wrk.format("%(method)s", "%(path)s", headers, %(body)s)
end
"""


def scenario_script(folder: Path, name: str, site: Site) -> Path:
    case = site.case_id
    if name == "read":
        spec = {"token": site.tokens[RIEC], "method": "GET", "path": f"/v1/cases/{case}/records"}
        body, extra = "nil", ""
    elif name == "share":
        spec = {
            "token": site.tokens[POLITIE],
            "method": "POST",
            "path": f"/v1/cases/{case}/records",
        }
        body = "[[" + json.dumps(POLICE_RECORD) + "]]"
        extra = (
            'headers["Idempotency-Key"] = "bench-" .. tostring(math.random(1, 2^30)) '
            '.. "-" .. counter .. "-" .. tostring(os.clock())'
        )
    else:
        spec = {"token": site.tokens[GEMEENTE], "method": "POST", "path": "/access/v1/evaluation"}
        body, extra = "[[" + json.dumps(EVALUATION) + "]]", ""
    path = folder / f"{name}.lua"
    path.write_text(LUA % {**spec, "body": body, "extra": extra})
    return path


_UNIT = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", value)
    if match is None:
        raise ValueError(value)
    return float(match.group(1)) * _UNIT[match.group(2)]


@dataclass(frozen=True)
class Load:
    rps: float
    p50: float
    p99: float
    errors: int


def drive(url: str, script: Path, connections: int, seconds: float) -> Load:
    """Run wrk against ``url`` and return requests/s, p50/p99 in ms, and non-2xx count."""
    out = subprocess.run(
        [
            "wrk",
            f"-t{min(connections, 2)}",
            f"-c{connections}",
            f"-d{round(seconds)}s",
            "--latency",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return Load(rps, p50, p99, int(errors.group(1)) if errors else 0)


def spread(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{min(values):.2f}/{statistics.median(values):.2f}/{max(values):.2f}"


def bench_backend(
    label: str, url: str, folder: Path, args: argparse.Namespace, integration: str
) -> None:
    site = initialise(folder, url, integration)
    workers = str(args.workers)
    gateway = [str(BIN / "gateway"), "serve", "--workers", workers]
    baseline = [
        str(BIN / "uvicorn"),
        "bench.http_baseline:app",
        "--factory",
        "--workers",
        workers,
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    with serving(gateway, site.env) as gw_url:
        open_case(site, gw_url)
        base_env = {**site.env, "BENCH_DB_URL": url}
        with serving(baseline, base_env) as base_url:
            for scenario in args.scenarios:
                script = scenario_script(folder, scenario, site)
                for connections in args.connections:
                    ratios: list[float] = []
                    gw_runs: list[Load] = []
                    base_runs: list[Load] = []
                    for _ in range(args.runs):
                        base_runs.append(drive(base_url, script, connections, args.seconds))
                        gw_runs.append(drive(gw_url, script, connections, args.seconds))
                        ratios.append(gw_runs[-1].rps / base_runs[-1].rps)
                    errors = sum(r.errors for r in gw_runs + base_runs)
                    print(
                        f"{label:<10} {integration:<10} w={workers} {scenario:<6}"
                        f" c={connections:<3}"
                        f" gateway {spread([r.rps for r in gw_runs]):>20} req/s"
                        f"  ratio {spread(ratios):>16}"
                        f"  p50 {spread([r.p50 for r in gw_runs]):>16} ms"
                        f"  p99 {spread([r.p99 for r in gw_runs]):>18} ms"
                        f"  | baseline {spread([r.rps for r in base_runs]):>20} req/s"
                        f"  p99 {spread([r.p99 for r in base_runs]):>16} ms"
                        + (f"  ({errors} non-2xx)" if errors else ""),
                        flush=True,
                    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 s per cell, one run")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--scenarios", nargs="+", default=["read", "share", "authzen"])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument(
        "--integration", nargs="+", default=["background"], choices=["inline", "background"]
    )
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.runs = 3, 1
    if shutil.which("wrk") is None:
        sys.exit("bench.http needs wrk (apt-get install wrk)")
    print("figures: min/median/max over runs; ratio = gateway req/s / baseline req/s")
    for integration in args.integration:
        if "sqlite" in args.backends:
            with tempfile.TemporaryDirectory() as tmp:
                folder = Path(tmp)
                url = f"sqlite:///{folder / 'data' / 'gateway.db'}"
                bench_backend("sqlite", url, folder, args, integration)
        if "postgresql" in args.backends:
            with postgres_database() as database, tempfile.TemporaryDirectory() as tmp:
                if database is None:
                    print("postgresql: no server answered; skipped")
                    continue
                database.dispose()
                bench_backend("postgresql", database.url, Path(tmp), args, integration)


if __name__ == "__main__":
    main()
