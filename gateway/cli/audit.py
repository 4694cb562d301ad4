"""``gateway audit verify|checkpoint|prove|verify-proof|purge-details|verifier-key``.

``verify-proof`` needs nothing but its arguments: no database and no settings, so a
partner or supervisor can run it on their own machine.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from gateway import atomicfile
from gateway.app import build_context
from gateway.audit import checkpoints, entries, sequencer
from gateway.audit.bundle import FILE_SUFFIX, parse_tlog_proof, verify_tlog_proof
from gateway.audit.cosignature import CosignerKey
from gateway.audit.note import Checkpoint, NoteError, NoteVerifier
from gateway.audit.verify import verify_log
from gateway.cli.app import app, console, err_console, fail, open_current_database
from gateway.context import AppContext
from gateway.errors import IntegrityCheckFailed, InvalidInputError
from gateway.identity.service import CLI_ACTOR
from gateway.keys.signing import KEY_FORMS, read_public_key

audit_app = typer.Typer(
    help="Verify the audit log, sign checkpoints, write and check proofs.", no_args_is_help=True
)
app.add_typer(audit_app, name="audit")

WITNESS_HELP = "require cosignatures of this witness (verifier key or file); repeatable"
QUORUM_HELP = "how many of the --witness keys must have cosigned (default: all)"


def _context() -> AppContext:
    """Return the gateway context (settings, database with a current schema, signing key)."""
    settings, database = open_current_database()
    sequencer.catch_up(database)  # every audit command works on integrated entries
    return build_context(settings, db=database)


def parse_public_key(value: str, default_name: str | None = None) -> NoteVerifier:
    """Return a note verifier from a key given as text or as a file holding it.

    Accepts every form ``gateway.keys.signing.read_public_key`` does; a key without a
    name (not a verifier key) is named ``default_name``. Raises InvalidInputError
    otherwise, or when a key without a name is given and there is no ``default_name``.
    """
    given = read_public_key(value)
    name = given.name or default_name
    if name is None:
        raise InvalidInputError("give the public key as name+id+key, or give --origin")
    try:
        return NoteVerifier(name, given.public_key)
    except NoteError as exc:
        raise InvalidInputError(f"--origin {name!r} cannot name a key: {exc}") from exc


@audit_app.command("verify")
def verify(
    public_key: list[str] = typer.Option(
        [],
        "--public-key",
        help="check checkpoint signatures with this key (verifier key or file); "
        "default: the key ring's current and earlier keys",
    ),
) -> None:
    """Recompute the whole log from its stored events and check every hash and signature.

    Exits 1 with a one-line reason naming the first entry that was modified, removed,
    reordered or inserted.
    """
    ctx = _context()
    origin = ctx.settings.log_origin
    verifiers = (
        [parse_public_key(k, origin) for k in public_key]
        if public_key
        else checkpoints.log_verifiers(origin, ctx.signer, ctx.retired_public_keys)
    )
    witnessed = witnessed_checkpoints(ctx)
    try:
        with Progress(
            TextColumn("verifying audit log"),
            BarColumn(),
            MofNCompleteColumn(),
            console=err_console,
            transient=True,
            disable=not err_console.is_terminal,
        ) as bar:
            task = bar.add_task("entries", total=None)
            report = verify_log(
                ctx.db,
                verifiers,
                origin,
                ctx.clock.now(),
                progress=lambda done, total: bar.update(task, completed=done, total=total),
                witnessed=witnessed,
            )
    finally:
        ctx.db.dispose()
    if report.problem is not None:
        fail(f"audit log verification failed: {report.problem.message}")
    root = base64.b64encode(report.root).decode()
    if report.checkpoints == 0:
        console.print("note: no signed checkpoint yet; only the stored hashes were checked")
    console.print(
        f"ok: {report.entries} entries, root {root}, {report.checkpoints} signed checkpoints "
        f"and {report.details} details verified",
        soft_wrap=True,
        highlight=False,
    )
    if witnessed:
        console.print(
            "ok: consistent with what its witnesses cosigned "
            f"(newest at size {max(c.size for c in witnessed)})",
            highlight=False,
        )


def witnessed_checkpoints(ctx: AppContext) -> list[Checkpoint]:
    """Return the checkpoints the configured witnesses cosigned: theirs and the stored ones."""
    if ctx.witnessing is None:
        return []
    fetched = [view.checkpoint for view in ctx.witnessing.views()]
    if not fetched:
        err_console.print("warning: no witness answered; checked the stored cosignatures only")
    return list(dict.fromkeys(fetched + ctx.witnessing.stored_witnessed()))


@audit_app.command("checkpoint")
def checkpoint(
    out: Path | None = typer.Option(None, "--out", help="also write the signed note to this file"),
) -> None:
    """Sign and store a checkpoint of the current tree; print it as a signed note."""
    ctx = _context()
    try:
        row = checkpoints.create_checkpoint(
            ctx.db,
            ctx.clock,
            ctx.signer,
            ctx.settings.log_origin,
            retired_public_keys=ctx.retired_public_keys,
        )
    finally:
        ctx.db.dispose()
    if out is not None:
        try:
            atomicfile.write_file(out, row.note)
        except OSError as exc:
            fail(f"cannot write {out}: {exc.strerror}")
    console.print(row.note, end="", markup=False, highlight=False, soft_wrap=True)


@audit_app.command("prove")
def prove(
    index: int = typer.Option(..., "--index", min=0, help="the entry to prove"),
    size: int | None = typer.Option(None, "--size", min=1, help="tree size; default: latest"),
    output: Path | None = typer.Option(
        None,
        "--output",
        "--out",
        "-o",
        help=f"file to write; default entry-INDEX{FILE_SUFFIX}",
    ),
) -> None:
    """Write an offline proof bundle (C2SP tlog-proof) that entry INDEX is in the log."""
    ctx = _context()
    try:
        row = checkpoints.checkpoint_covering(
            ctx.db,
            ctx.clock,
            ctx.signer,
            ctx.settings.log_origin,
            index,
            size,
            retired_public_keys=ctx.retired_public_keys,
            sign_past_size=True,  # the operator asked for exactly this size
        )
        bundle = checkpoints.proof_bundle(ctx.db, row, index)
    finally:
        ctx.db.dispose()
    target = output or Path(f"entry-{index}{FILE_SUFFIX}")
    try:
        atomicfile.write_file(target, bundle)
    except OSError as exc:
        fail(f"cannot write {target}: {exc.strerror}")
    console.print(f"wrote {target}: entry {index} in the log at size {row.tree_size}")


@audit_app.command("verify-proof")
def verify_proof(
    bundle: Path = typer.Argument(..., help="a .tlog-proof file", exists=True, dir_okay=False),
    public_key: str = typer.Option(
        ..., "--public-key", help=f"the log's public key, or a file with it: {KEY_FORMS}"
    ),
    leaf: Path | None = typer.Option(
        None, "--leaf", exists=True, dir_okay=False, help="the entry's leaf (canonical JSON)"
    ),
    leaf_hash: str | None = typer.Option(None, "--leaf-hash", help="or its hash, base64 or hex"),
    origin: str | None = typer.Option(None, "--origin", help="require this log origin"),
    witness: list[str] = typer.Option([], "--witness", help=WITNESS_HELP),
    quorum: int | None = typer.Option(None, "--quorum", min=1, help=QUORUM_HELP),
) -> None:
    """Check a proof bundle offline: the checkpoint's signature and the entry's inclusion.

    Needs no database and no settings. Without --leaf or --leaf-hash the leaf carried
    in the bundle is checked (and shown). With --witness, a quorum of those witnesses
    must have cosigned the checkpoint.
    """
    try:
        text = bundle.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInputError("the bundle is not a text file") from exc
    # a key without a name (hex, base64, `keys public`) is the log's: named by its origin
    verifier = parse_public_key(public_key, origin or _checkpoint_origin(text))
    try:
        result = verify_tlog_proof(
            text,
            [verifier],
            leaf=leaf.read_bytes() if leaf is not None else None,
            leaf_hash_value=_hash_arg(leaf_hash) if leaf_hash is not None else None,
            origin=origin,
            witnesses=witness_keys(witness, quorum),
            quorum=quorum,
        )
    except IntegrityCheckFailed as exc:
        raise IntegrityCheckFailed(
            "the proof does not verify with this key and leaf: do not trust it"
        ) from exc
    cp = result.checkpoint
    console.print(
        f"ok: entry {result.index} is in log {cp.origin} at size {cp.size} "
        f"(root {base64.b64encode(cp.root).decode()}), signed by {verifier.name}"
        + (f", cosigned by {', '.join(result.witnesses)}" if result.witnesses else ""),
        soft_wrap=True,
        highlight=False,
    )
    if result.leaf is not None and leaf is None:
        console.print(result.leaf.decode(errors="replace"), markup=False, soft_wrap=True)


def witness_keys(values: list[str], quorum: int | None) -> list[CosignerKey]:
    """Return the witness keys of ``--witness`` options (each a verifier key or a file with one).

    Raises InvalidInputError for a malformed key or a quorum the keys cannot reach.
    """
    keys = []
    for value in values:
        path = Path(value)
        text = path.read_text(encoding="utf-8") if path.is_file() else value
        keys.append(CosignerKey.from_vkey(text.strip()))
    if quorum is not None and quorum > len(keys):
        raise InvalidInputError("--quorum cannot exceed the number of --witness keys")
    return keys


def _checkpoint_origin(text: str) -> str | None:
    """Return the origin line of the checkpoint in a proof bundle (unverified), if any."""
    try:
        first = parse_tlog_proof(text).checkpoint.split("\n", 1)[0].strip()
    except InvalidInputError:
        return None
    return first or None


def _hash_arg(value: str) -> bytes:
    try:
        raw = bytes.fromhex(value) if len(value) == 64 else base64.b64decode(value, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise InvalidInputError("--leaf-hash must be 32 bytes in hex or base64") from exc
    if len(raw) != 32:
        raise InvalidInputError("--leaf-hash must be 32 bytes in hex or base64")
    return raw


@audit_app.command("purge-details")
def purge_details() -> None:
    """Delete details and subject index rows past their retention; the tree stays verifiable."""
    ctx = _context()
    try:
        with ctx.db.write() as session:
            count = entries.purge_details(session, ctx.clock, CLI_ACTOR)
    finally:
        ctx.db.dispose()
    console.print(
        f"deleted the details or subject index rows of {count} entries past their retention"
    )


@audit_app.command("verifier-key")
def verifier_key() -> None:
    """Print the log's public key as a note verifier key (give it to partners)."""
    ctx = _context()
    ctx.db.dispose()
    keys = checkpoints.log_verifiers(ctx.settings.log_origin, ctx.signer, ctx.retired_public_keys)
    for key in keys:
        console.print(key.vkey(), markup=False, highlight=False, soft_wrap=True)
