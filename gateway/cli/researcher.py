"""``gateway researcher keygen``: a researcher's own age key, made on their own machine.

Nothing is sent anywhere: the command writes the secret identity (mode 0600, in the
format ``age-keygen`` writes) and prints the public recipient, which the researcher
then registers with the gateway for a privacy officer of their partner to confirm.
"""

from __future__ import annotations

from pathlib import Path

import typer

from gateway.cli.app import app, console
from gateway.clock import SystemClock
from gateway.keys.age import generate, write_identity_file

researcher_app = typer.Typer(
    help="The researcher's side: make the age key releases are encrypted to.",
    no_args_is_help=True,
)
app.add_typer(researcher_app, name="researcher")


@researcher_app.command("keygen")
def keygen_command(
    out: Path = typer.Option(
        ..., "--out", help="where to write the secret identity (a new file, mode 0600)"
    ),
) -> None:
    """Write a new age identity to --out and print its public recipient (age1...)."""
    pair = generate()
    write_identity_file(out, pair, SystemClock().now())
    console.print(f"Public key: {pair.recipient}", highlight=False)
    console.print(
        f"The secret key is in {out} (mode 0600); keep it there and never send it. "
        "Register the public key with POST /v1/research/agreements/<id>/recipients.",
        highlight=False,
    )
