"""``gateway init`` and ``gateway serve``."""

from __future__ import annotations

import errno
import os
import socket
from datetime import timedelta

import typer
import uvicorn

from gateway import db as dbmod
from gateway import logging as gwlogging
from gateway import preflight
from gateway.cli.app import app, console, fail, load_settings, open_database
from gateway.cli.policy import load_pack
from gateway.clock import SystemClock
from gateway.config import Mode, Settings
from gateway.demo_partners import create_demo_partners
from gateway.identity.service import CLI_ACTOR
from gateway.keys import KeyRing
from gateway.policy import versions
from gateway.policy.pack import read_pack
from gateway.yamlsource import SourceError

KEYS_README = """# Key ring

This folder holds the gateway's key ring: wrapped data keys, pseudonymisation secrets and
the signing key. Only this README and .gitignore belong in version control; everything
else here is secret, must stay readable by the gateway's user only (mode 0600, folder
0700), and must be backed up separately from the database.
"""


def prepare_keys_dir(settings: Settings) -> None:
    """Create the key ring folder with owner-only permissions and its README."""
    keys = settings.keys_dir
    keys.mkdir(parents=True, exist_ok=True)
    os.chmod(keys, 0o700)
    readme = keys / "README.md"
    if not readme.exists():
        readme.write_text(KEYS_README, encoding="utf-8")
    gitignore = keys / ".gitignore"
    if not gitignore.exists():
        gitignore.write_text("*\n!README.md\n!.gitignore\n", encoding="utf-8")


@app.command()
def init(
    demo: bool = typer.Option(True, help="create the demo partners (development mode only)"),
) -> None:
    """Create or upgrade the database, prepare the key ring folder, check the policies.

    In development mode also creates the demo partners and prints their tokens once.
    """
    settings = load_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(settings.data_dir, 0o700)
    prepare_keys_dir(settings)
    compiled = load_pack(settings.policies_dir)  # fails early on a missing or broken pack
    console.print(
        f"policy pack compiled: {len(compiled.rules)} rules, version {compiled.version[:16]}"
    )
    database = open_database(settings)
    try:
        dbmod.upgrade(database)
        console.print(f"database at revision {dbmod.current_revision(database)}")
        existed = KeyRing.exists(settings)
        with database.write() as session:
            ring = KeyRing.create(settings, session, clock=SystemClock(), actor=CLI_ACTOR)
        console.print(f"key ring {'opened' if existed else 'created'} in {settings.keys_dir}")
        console.print(f"signing key fingerprint sha256:{ring.signer().fingerprint}")
        pack = read_pack(settings.policies_dir)
        active, imported = versions.ensure_active(
            database, SystemClock(), CLI_ACTOR, pack, compiled
        )
        console.print(f"policy version {active.id} active{' (imported)' if imported else ''}")
        if active.sources_sha256 != pack.sha256:
            console.print(
                f"note: {settings.policies_dir} differs from the active version and is not used; "
                "`gateway policy diff` shows how (changes go through a workbench proposal)",
                style="yellow",
            )
        if demo and settings.mode is Mode.DEVELOPMENT:
            try:
                stored = versions.load_active(database)
            except SourceError as exc:
                fail(
                    f"the active policy version does not load here "
                    f"({len(exc.problems)} problem(s): {'; '.join(map(str, exc.problems[:1]))})"
                )
            issued = create_demo_partners(
                database,
                SystemClock(),
                stored.compiled.vocabulary.partner_kinds,
                timedelta(days=settings.token_ttl_days),
                keyer=ring.person_key,
            )
            if issued:
                console.print("demo tokens (shown once; keep them):")
                width = max(len(pid) for pid, _ in issued)
                for pid, token in issued:
                    console.print(f"  {pid:<{width}}  {token}", soft_wrap=True, highlight=False)
            else:
                console.print(
                    "demo partners already exist; "
                    "`gateway partners token PRINCIPAL` issues a new token"
                )
        elif demo:
            console.print("production mode: no demo partners created")
    finally:
        database.dispose()


def _refuse_busy_port(host: str, port: int) -> None:
    """Fail with one line when something already listens on ``host:port``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # uvicorn binds with SO_REUSEADDR too: a port in TIME_WAIT is free, a listener is not
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                fail(f"port {port} is in use; set --port or GATEWAY_BIND")
            fail(f"cannot listen on {host}:{port}: {exc.strerror}")


@app.command()
def serve(
    host: str | None = typer.Option(None, help="address to listen on (default: GATEWAY_BIND's)"),
    port: int | None = typer.Option(
        None, min=1, max=65535, help="port to listen on (default: GATEWAY_BIND's)"
    ),
    workers: int | None = typer.Option(
        None, min=1, max=64, help="worker processes (default: GATEWAY_WORKERS)"
    ),
) -> None:
    """Run the HTTP gateway (refuses to start if the schema is behind or settings are unsafe)."""
    settings = load_settings()
    overrides: dict[str, str] = {}
    if host is not None or port is not None:
        overrides["GATEWAY_BIND"] = f"{host or settings.host}:{port or settings.port}"
    if workers is not None:
        overrides["GATEWAY_WORKERS"] = str(workers)
    if overrides:
        # the workers build their settings from the environment (gateway.asgi), so the
        # options go there too: every process then agrees on what it serves
        os.environ.update(overrides)
        settings = load_settings()
    _refuse_busy_port(settings.host, settings.port)
    gwlogging.configure(settings.log_level)
    database = open_database(settings)
    try:
        KeyRing.open(settings)  # a wrong master key stops here with one line, not in a worker
        preflight.run(settings, database)
    finally:
        database.dispose()
    if settings.mode is Mode.PRODUCTION and settings.host not in {"127.0.0.1", "::1", "localhost"}:
        console.print("note: serve plain HTTP only behind a TLS-terminating proxy", style="yellow")
    try:
        uvicorn.run(
            "gateway.asgi:app",
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_config=None,
            access_log=False,
            proxy_headers=True,
            server_header=False,
        )
    except OSError as exc:
        fail(f"cannot listen on {settings.bind}: {exc.strerror}")
