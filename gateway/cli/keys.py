"""``gateway keys list|rotate|activate-index|rewrap|shred|public``: never shows key material."""

from __future__ import annotations

import base64
import os

import typer
from rich.table import Table

from gateway.app import agreements_of
from gateway.cli.app import app, console, fail, load_settings, open_database
from gateway.clock import SystemClock
from gateway.config import Settings
from gateway.db import Database, ensure_schema_current
from gateway.identity.service import CLI_ACTOR
from gateway.keys import KeyRing, MasterSecret
from gateway.policy import versions
from gateway.policy.errors import NoActiveVersionError
from gateway.research import service as research
from gateway.workflow import retention
from gateway.yamlsource import SourceError

keys_app = typer.Typer(help="Manage the key ring (never shows key material).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")

OPERATOR = "operator"
"""Who the CLI acts as when it shreds: the role of whoever runs it on the host."""
NEW_KEY_ENV = "GATEWAY_NEW_MASTER_KEY"
NEW_PASSPHRASE_ENV = "GATEWAY_NEW_MASTER_PASSPHRASE"  # noqa: S105  (a variable name)


def open_ring() -> tuple[Settings, Database, KeyRing]:
    """Return settings, a schema-current database and the unlocked key ring, or fail with why."""
    settings = load_settings()
    database = open_database(settings)
    ensure_schema_current(database)
    return settings, database, KeyRing.open(settings)


def _one_of(**given: str | bool | None) -> str:
    chosen = [name for name, value in given.items() if value]
    if len(chosen) != 1:
        fail("give exactly one of " + ", ".join(f"--{n}" for n in given))
    return chosen[0]


def _version_state(kind: str, version: int, active: int) -> str:
    if version == active:
        return "active"
    if kind == "index":
        return "staged" if version > active else "retired"
    return "verifies only" if kind == "signing" else "reads only"


@keys_app.command("list")
def list_() -> None:
    """List every key: kind, id, versions with creation dates, which version writes, state."""
    _settings, database, ring = open_ring()
    database.dispose()  # only the schema check needed it
    info = ring.info
    console.print(
        f"key ring {info.keys_dir}: KEK {info.kek_id} from {info.source} ({info.kdf}), "
        f"created {info.created_at:%Y-%m-%d}",
        soft_wrap=True,
        highlight=False,
    )
    table = Table()
    for column in ("kind", "id", "version", "created", "state"):
        table.add_column(column, overflow="fold")
    for key in ring.describe():
        if not key.versions:
            shredded = f"{key.shredded_at:%Y-%m-%d}" if key.shredded_at else ""
            table.add_row(str(key.kind), key.key_id, "-", "", f"shredded {shredded}".strip())
        active = max((v.version for v in key.versions if v.active), default=0)
        for v in key.versions:
            state = _version_state(str(key.kind), v.version, active)
            table.add_row(
                str(key.kind), key.key_id, str(v.version), f"{v.created_at:%Y-%m-%d %H:%M}", state
            )
    console.print(table)


@keys_app.command("rotate")
def rotate(
    signing: bool = typer.Option(False, "--signing", help="rotate the signing key"),
    case: str | None = typer.Option(None, "--case", help="rotate this case's data key"),
    index: bool = typer.Option(
        False, "--index", help="stage a new blind-index key (used after activate-index)"
    ),
) -> None:
    """Add a new key version; old versions keep reading and verifying."""
    which = _one_of(signing=signing, case=case, index=index)
    _settings, database, ring = open_ring()
    with database.write() as session:
        if which == "signing":
            version = ring.rotate_signing_key(session, actor=CLI_ACTOR)
        elif which == "index":
            version = ring.rotate_index_key(session, actor=CLI_ACTOR)
        else:
            assert case is not None
            version = ring.rotate_case_key(session, case, actor=CLI_ACTOR)
    if which == "signing":
        console.print(f"signing key now at version {version}; older public keys stay published")
    elif which == "index":
        console.print(
            f"staged blind-index key version {version}; blind indexes keep using version "
            f"{ring.blind_index_version()} until every stored index is recomputed and "
            f"`gateway keys activate-index {version}` is run"
        )
    else:
        console.print(
            f"case {case} now seals with key version {version}; older versions still read"
        )


@keys_app.command("activate-index")
def activate_index(version: int = typer.Argument(..., help="staged index key version")) -> None:
    """Switch blind indexes to a staged index key version (only after re-indexing)."""
    _settings, database, ring = open_ring()
    with database.write() as session:
        ring.activate_index_key(session, version, actor=CLI_ACTOR)
    console.print(f"blind indexes now use index key version {version}")


def _new_master(passphrase: bool) -> MasterSecret:
    key_text = os.environ.get(NEW_KEY_ENV)
    phrase_text = os.environ.get(NEW_PASSPHRASE_ENV)
    if key_text and phrase_text:
        fail(f"set only one of {NEW_KEY_ENV} and {NEW_PASSPHRASE_ENV}")
    if key_text:
        return MasterSecret.from_key_text(key_text, NEW_KEY_ENV)
    if phrase_text:
        return MasterSecret.from_passphrase(phrase_text, NEW_PASSPHRASE_ENV)
    if passphrase:
        text = typer.prompt("new master passphrase", hide_input=True, confirmation_prompt=True)
        return MasterSecret.from_passphrase(text, "the new passphrase")
    text = typer.prompt(
        "new master key (base64 of 32 bytes)", hide_input=True, confirmation_prompt=True
    )
    return MasterSecret.from_key_text(text, "the new master key")


@keys_app.command("rewrap")
def rewrap(
    passphrase: bool = typer.Option(
        False, "--passphrase", help="prompt for a new passphrase instead of a new key"
    ),
) -> None:
    """Re-encrypt every key under a new master key from GATEWAY_NEW_MASTER_KEY (or a prompt).

    GATEWAY_MASTER_KEY (or _PASSPHRASE) must hold the current one. Afterwards only the new
    one opens the ring: set it in every gateway process and restart them.
    """
    _settings, database, ring = open_ring()
    new_master = _new_master(passphrase)
    with database.write() as session:
        count = ring.rewrap(session, new_master, actor=CLI_ACTOR)
    variable = (
        "GATEWAY_MASTER_PASSPHRASE" if new_master.kind == "passphrase" else "GATEWAY_MASTER_KEY"
    )
    console.print(
        f"rewrapped {count} key files under KEK {ring.info.kek_id}; set {variable} to the new "
        "value in every gateway process and restart them. The old master key no longer opens "
        "this ring (older backups of the key folder still need it).",
        soft_wrap=True,
    )


@keys_app.command("shred")
def shred(
    case: str | None = typer.Option(None, "--case", help="destroy this case's data key"),
    project: str | None = typer.Option(
        None, "--project", help="destroy this research project's pseudonymisation secret"
    ),
    yes: bool = typer.Option(False, "--yes", help="do not ask for confirmation"),
) -> None:
    """Destroy a key for good (crypto-shredding): its data or pseudonym mapping is gone.

    A case is closed as well, its pseudonymisation secret destroyed and its subject index
    rows deleted; a research project loses its secret and the key of its stored rows.
    Unknown ids are refused. Who asked (the operator) and when is recorded.
    """
    which = _one_of(case=case, project=project)
    target = case if which == "case" else project
    assert target is not None
    what = f"case {target}" if which == "case" else f"research project {target}"
    _settings, database, ring = open_ring()
    try:
        if which == "case":
            retention.require_case(database, target)
        else:
            projects = _agreement_projects(database)
            research.require_project(ring, target, projects)
        if not yes:
            typer.confirm(
                f"destroy the key of {what}? Its data can never be read again", abort=True
            )
        if which == "case":
            done = retention.shred_case_on_request(
                database, ring, SystemClock(), CLI_ACTOR, target, by=OPERATOR
            )
        else:
            done = research.shred_project_on_request(
                database, ring, CLI_ACTOR, target, by=OPERATOR, agreement_projects=projects
            )
    finally:
        database.dispose()
    if done:
        console.print(f"destroyed the key of {what}")
    else:
        console.print(f"the key of {what} was already destroyed")


def _agreement_projects(database: Database) -> frozenset[str]:
    """Return the research projects of the active version's agreements (none without one)."""
    try:
        active = versions.load_active(database)
        agreements = agreements_of(active.pack, active.compiled)
    except (NoActiveVersionError, SourceError):
        return frozenset()
    return frozenset(a.project for a in agreements.values())


@keys_app.command("public")
def public() -> None:
    """Print the signing public keys (every version; the active one signs new material)."""
    _settings, database, ring = open_ring()
    database.dispose()  # only the schema check needed it
    for key in ring.signing_public_keys():
        console.print(
            f"v{key.version} ed25519 {base64.b64encode(key.public_key).decode()} "
            f"sha256:{key.fingerprint} {key.created_at:%Y-%m-%d}"
            + (" active" if key.active else ""),
            soft_wrap=True,
            highlight=False,
        )
