"""``gateway witness init|serve|verifier-key``: run a tlog-witness for someone else's log.

These commands read no ``GATEWAY_*`` settings and never open the gateway's database:
a witness is run by another organisation, with only its own folder.
"""

from __future__ import annotations

from pathlib import Path

import typer
import uvicorn

from gateway.cli.app import app, console, fail
from gateway.clock import SystemClock
from gateway.witness import store
from gateway.witness.app import create_witness_app
from gateway.witness.service import Witness

witness_app = typer.Typer(
    help="Run a transparency-log witness that cosigns the gateway's audit checkpoints.",
    no_args_is_help=True,
)
app.add_typer(witness_app, name="witness")

_DIR_HELP = "the witness's folder (key, config, state)"


@witness_app.command("init")
def init(
    folder: Path = typer.Option(..., "--dir", help=_DIR_HELP),
    name: str = typer.Option(
        ..., "--name", help="the witness's key name, e.g. witness.politie.example/riec-zuid"
    ),
    log: list[str] = typer.Option(
        ..., "--log", help="a log's verifier key (origin+id+key), from `gateway audit verifier-key`"
    ),
) -> None:
    """Create a witness key and config; print the witness key the log operator must configure."""
    keys = [store.parse_log_spec(spec) for spec in log]
    key = store.init_witness(folder, name, keys)
    console.print(key.vkey(), markup=False, highlight=False, soft_wrap=True)


@witness_app.command("add-log")
def add_log(
    folder: Path = typer.Option(..., "--dir", help=_DIR_HELP),
    log: list[str] = typer.Option(
        ..., "--log", help="a log's verifier key: a new log, or a log's new key after rotation"
    ),
) -> None:
    """Trust another log key (restart `witness serve` afterwards); its state is kept."""
    config = store.add_log_keys(folder, [store.parse_log_spec(spec) for spec in log])
    for origin, witnessed in sorted(config.logs.items()):
        console.print(f"{origin}: {len(witnessed.keys)} key(s)", markup=False, highlight=False)


@witness_app.command("verifier-key")
def verifier_key(folder: Path = typer.Option(..., "--dir", help=_DIR_HELP)) -> None:
    """Print the witness's public key as a cosigner verifier key."""
    console.print(
        Witness(folder, SystemClock()).key.vkey(), markup=False, highlight=False, soft_wrap=True
    )


@witness_app.command("serve")
def serve(
    folder: Path = typer.Option(..., "--dir", help=_DIR_HELP),
    bind: str = typer.Option("127.0.0.1:8090", "--bind", help="host:port to listen on"),
) -> None:
    """Serve add-checkpoint and the latest cosigned checkpoints over HTTP (one process)."""
    host, sep, port = bind.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        fail("--bind must look like host:port, e.g. 127.0.0.1:8090")
    witness = Witness(folder, SystemClock())
    try:
        uvicorn.run(
            create_witness_app(witness),
            host=host,
            port=int(port),
            workers=1,  # the state lock is per process
            log_config=None,
            access_log=False,
            server_header=False,
        )
    except OSError as exc:
        fail(f"cannot listen on {bind}: {exc.strerror}")
