"""``gateway extract run|verify|open|shred|demo-run``: releases, and the researcher's side.

``run`` makes a real release of an agreement's stored rows (the gateway's release
service: consents, policy, withdrawals, the project's generalisation, audit entry).
``verify`` and ``open`` need no database and no settings: only the bundle, the
gateway's public signing key, optionally the release's audit proof, and (to open) the
researcher's age identity. ``shred`` destroys a project's keys at the end of its
retention. ``demo-run`` releases synthetic data of the example agreement into a folder,
with throw-away keys, to show the whole chain without a database.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from pathlib import Path
from types import TracebackType

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from gateway import atomicfile
from gateway.app import build_command_context
from gateway.audit.bundle import parse_tlog_proof
from gateway.audit.cosignature import verify_witnessed
from gateway.audit.note import NoteError, NoteVerifier
from gateway.cli.app import (
    app,
    console,
    err_console,
    fail,
    load_settings,
    open_current_database,
)
from gateway.cli.audit import QUORUM_HELP, WITNESS_HELP, witness_keys
from gateway.clock import SystemClock, as_utc
from gateway.errors import IntegrityCheckFailed, InvalidInputError
from gateway.identity.service import CLI_ACTOR
from gateway.keys import age
from gateway.keys.signing import KEY_FORMS, Ed25519Signer, read_public_key
from gateway.research import synthetic
from gateway.research.agreements import AgreementVocabulary, load_agreement
from gateway.research.bundle import (
    AuditInclusionCheck,
    open_bundle,
    pinned_public_key,
    read_identities,
    verify_bundle,
)
from gateway.research.duo import DeclaredUse
from gateway.research.extract import ExtractRequest
from gateway.research.inclusion import ReleaseInclusion
from gateway.research.manifest import risk_summary
from gateway.research.pseudonyms import EphemeralPseudonymiser
from gateway.research.release_builder import make_release
from gateway.research.service import Research
from gateway.yamlsource import SourceError

extract_app = typer.Typer(
    help="Research extracts: release, verify and open bundles, shred a project, or a demo.",
    no_args_is_help=True,
)
app.add_typer(extract_app, name="extract")

AUDIT_INCLUSION_CHECK: AuditInclusionCheck | None = None
"""Hook for the audit log: when set, ``verify`` and ``open`` also prove that the release
is in the gateway's audit log. ``--proof FILE`` sets it to a ``ReleaseInclusion`` that
checks the release's tlog-proof (from ``GET /v1/research/releases/{id}/proof``)."""

EXAMPLE_AGREEMENT = "agreements/jeugdnetwerken-noord-nederland.yaml"


def _public_key(value: str) -> bytes:
    """Return the public key given as a value or a file, in any form the gateway prints."""
    return read_public_key(value).public_key


FINGERPRINT_HELP = (
    "instead of --public-key: the signing key fingerprint the agreement pins "
    "(signing_key_fingerprint, sha256:<hex>); the bundle's key must have it"
)
_FINGERPRINT = re.compile(r"(?:sha256:)?([0-9a-f]{64})")


def _trusted_key(bundle: Path, public_key: str | None, fingerprint: str | None) -> bytes:
    """Return the key to verify ``bundle`` with: the one given, or the bundle's if pinned.

    Exits with a one-line usage error (exit 2) unless exactly one of the two is given.
    """
    if (public_key is None) == (fingerprint is None):
        raise typer.BadParameter(  # a usage mistake: click points at --help and exits 2
            "give exactly one: the gateway's key or the agreement's pin",
            param_hint="'--public-key' / '--fingerprint'",
        )
    if public_key is not None:
        return _public_key(public_key)
    assert fingerprint is not None
    found = _FINGERPRINT.fullmatch(fingerprint.strip().lower())
    if found is None:
        fail("--fingerprint is sha256: followed by 64 hex digits")
    return pinned_public_key(bundle, found.group(1))


def _trust_line(key: bytes, agreement: str, public_key: str | None) -> str:
    """Return the one line that says which key signed and why it is trusted."""
    signer = f"signed by sha256:{hashlib.sha256(key).hexdigest()}"
    if public_key is not None:
        return f"{signer}, the key given with --public-key"
    return f"{signer}, pinned in agreement {agreement} (given with --fingerprint)"


def _inclusion_check(
    proof: Path | None, public_key: bytes, log_key: str | None
) -> AuditInclusionCheck | None:
    """Return the audit inclusion check for ``--proof``, or the connected hook without one."""
    if proof is None:
        if log_key is not None:
            fail("--log-key needs --proof")
        return AUDIT_INCLUSION_CHECK
    try:
        text = proof.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read proof file {proof}: {getattr(exc, 'strerror', None) or 'not text'}")
    keys = [public_key] if log_key is None else [_public_key(log_key)]
    return ReleaseInclusion(text, keys)


def _cosigned_by(
    proof: Path | None,
    public_key: bytes,
    log_key: str | None,
    witness: list[str],
    quorum: int | None,
) -> tuple[str, ...]:
    """Return the witnesses that cosigned ``--proof``'s checkpoint, if ``--witness`` was given.

    Raises IntegrityCheckFailed when fewer than the quorum did.
    """
    if not witness and quorum is None:
        return ()
    if proof is None:
        fail("--witness needs --proof")
    keys = witness_keys(witness, quorum)
    text = proof.read_text(encoding="utf-8")
    note = parse_tlog_proof(text).checkpoint
    origin = note.split("\n", 1)[0]
    log_public = public_key if log_key is None else _public_key(log_key)
    try:
        verifiers = [NoteVerifier(origin, log_public)]
    except NoteError as exc:
        raise InvalidInputError("the proof's checkpoint names no valid log origin") from exc
    needed = len(keys) if quorum is None else quorum
    try:
        witnessed = verify_witnessed(note, verifiers, keys, needed, origin)
    except IntegrityCheckFailed as exc:
        raise IntegrityCheckFailed(
            "the proof's checkpoint lacks a quorum of valid witness cosignatures: do not trust it"
        ) from exc
    return tuple(c.witness.name for c in witnessed.cosignatures)


class RichProgress:
    """A ``ProgressSink`` that draws one Rich progress bar per pipeline phase."""

    def __init__(self, first_total: int | None) -> None:
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err_console,
        )
        self._first_total = first_total
        self._task: TaskID | None = None

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._finish()
        self._progress.stop()

    def _finish(self) -> None:
        if self._task is not None:
            task = self._progress.tasks[-1]
            self._progress.update(
                self._task, total=task.completed or 1, completed=task.completed or 1
            )

    def start(self, phase: str, total: int | None) -> None:
        """Close the current bar and open one for ``phase``."""
        self._finish()
        if total is None and self._task is None:
            total = self._first_total
        self._task = self._progress.add_task(phase, total=total)

    def advance(self, rows: int) -> None:
        """Move the current bar on by ``rows``."""
        if self._task is not None:
            self._progress.advance(self._task, rows)


PUBLIC_KEY_HELP = f"the gateway's Ed25519 public key, or a file with it: {KEY_FORMS}"
PROOF_HELP = "the release's audit proof (.tlog-proof): also check that the release is logged"
LOG_KEY_HELP = "the audit log's public key, if not the --public-key (after a key rotation)"


@extract_app.command("verify")
def verify_command(
    bundle: Path = typer.Argument(..., help="the bundle (.tar) to check"),
    public_key: str | None = typer.Option(
        None,
        "--public-key",
        help=f"the gateway's Ed25519 public key, or a file with it: {KEY_FORMS}",
    ),
    proof: Path | None = typer.Option(None, "--proof", help=PROOF_HELP),
    log_key: str | None = typer.Option(None, "--log-key", help=LOG_KEY_HELP),
    witness: list[str] = typer.Option([], "--witness", help=WITNESS_HELP),
    quorum: int | None = typer.Option(None, "--quorum", min=1, help=QUORUM_HELP),
    fingerprint: str | None = typer.Option(None, "--fingerprint", help=FINGERPRINT_HELP),
) -> None:
    """Check a bundle's signature, member list and checksums, and with --proof its audit entry.

    The signing key is given (--public-key) or pinned (--fingerprint, from the agreement).
    With --witness, a quorum of those witnesses must have cosigned the proof's checkpoint.
    """
    key = _trusted_key(bundle, public_key, fingerprint)
    check = _inclusion_check(proof, key, log_key)
    cosigned = _cosigned_by(proof, key, log_key, witness, quorum)
    verified = verify_bundle(bundle, key, audit_inclusion=check)
    m = verified.manifest
    console.print(
        f"OK: release {m['release']['id']} of agreement {m['agreement']['id']} "
        f"(v{m['agreement']['version']}), {m['counts']['rows_out']} rows, "
        f"use until {m['release']['expires_on']}",
        highlight=False,
    )
    console.print(f"manifest sha256 {verified.manifest_sha256}", highlight=False)
    console.print(_trust_line(key, str(m["agreement"]["id"]), public_key), highlight=False)
    if isinstance(check, ReleaseInclusion) and check.verified is not None:
        seen = check.verified
        console.print(
            f"audit log: the release is entry {seen.index} of {seen.checkpoint.origin} "
            f"(signed tree of size {seen.checkpoint.size})",
            highlight=False,
        )
        if cosigned:
            console.print(f"audit log: cosigned by {', '.join(cosigned)}", highlight=False)
    elif verified.audit_checked:
        console.print("audit log: the release is included", highlight=False)
    else:
        console.print("audit log: inclusion not checked (no audit log connected)", highlight=False)


@extract_app.command("open")
def open_command(
    bundle: Path = typer.Argument(..., help="the bundle (.tar) to open"),
    identity: Path = typer.Option(..., "--identity", help="your age identity file (age-keygen)"),
    out: Path = typer.Option(..., "--out", help="folder to write the decrypted files into"),
    public_key: str | None = typer.Option(
        None,
        "--public-key",
        help=f"the gateway's Ed25519 public key, or a file with it: {KEY_FORMS}",
    ),
    proof: Path | None = typer.Option(None, "--proof", help=PROOF_HELP),
    log_key: str | None = typer.Option(None, "--log-key", help=LOG_KEY_HELP),
    fingerprint: str | None = typer.Option(None, "--fingerprint", help=FINGERPRINT_HELP),
) -> None:
    """Verify a bundle (and with --proof its audit entry), then decrypt its data files."""
    key = _trusted_key(bundle, public_key, fingerprint)
    written = open_bundle(
        bundle,
        key,
        read_identities(identity),
        out,
        audit_inclusion=_inclusion_check(proof, key, log_key),
    )
    for path in written:
        console.print(f"wrote {path}", highlight=False)


@extract_app.command("run")
def run_command(
    agreement: str = typer.Option(..., "--agreement", help="the agreement to release under"),
    out: Path | None = typer.Option(
        None, "--out", help="also copy the bundle and its audit proof into this folder"
    ),
    declare_use: list[DeclaredUse] = typer.Option(
        [],
        "--declare-use",
        help="declare the use (non-commercial, not-for-profit) the agreement's DUO "
        "conditions NCU/NPU require; repeat for both",
    ),
) -> None:
    """Release an agreement's stored rows to its researchers, now.

    The policy decides for every receiving science partner and every provider, with the
    providers' consents as they stand; withdrawn respondents are left out; the project's
    generalisation is kept. The bundle is published in GATEWAY_RELEASES_DIR.
    """
    settings, database = open_current_database()
    try:
        ctx = build_command_context(settings, db=database)
        service = Research(ctx)
        service.agreement(agreement)  # fail before the progress bar on an unknown id
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
        with RichProgress(None) as progress:
            view = service.release(
                CLI_ACTOR, agreement, progress=progress, declared_use=declare_use
            )
        bundle = settings.resolved_releases_dir / view.bundle_name
        console.print(f"release {view.id}", highlight=False)
        console.print(
            f"{view.rows_out} of {view.rows_in} rows released ({view.rows_suppressed} "
            f"suppressed) to {', '.join(view.recipients)}; providers: "
            f"{', '.join(view.consenting_providers)}; use until {view.expires_on.isoformat()}",
            highlight=False,
            soft_wrap=True,
        )
        console.print(f"manifest sha256 {view.manifest_sha256}", highlight=False)
        manifest = verify_bundle(bundle, ctx.signer.public_key).manifest
        console.print(f"risk: {risk_summary(manifest)}", highlight=False, soft_wrap=True)
        console.print(f"bundle: {bundle}", highlight=False)
        if out is not None:
            # each file appears whole or not at all: a kill mid-copy leaves no short bundle
            copied = out / view.bundle_name
            proof = out / f"{view.id}.tlog-proof"
            public = out / "gateway-signing-key.pub"
            try:
                atomicfile.remove_leftovers(out, copied.name)
                atomicfile.copy_file(bundle, copied)
                atomicfile.write_file(proof, service.proof_text(view.id))
                atomicfile.write_file(public, ctx.signer.public_key.hex() + "\n")
            except OSError as exc:
                fail(f"release {view.id} is published, but {out} cannot be written: {exc.strerror}")
            console.print(f"copied to {copied}, with {proof.name} and {public.name}")
    finally:
        database.dispose()


@extract_app.command("shred")
def shred_command(
    agreement: str = typer.Option(..., "--agreement", help="the agreement whose project ends"),
    yes: bool = typer.Option(False, "--yes", help="do not ask for confirmation"),
) -> None:
    """Destroy a research project's keys for good: its stored rows can never be read again.

    Destroys the project's pseudonymisation secret and the key that seals its rows, in
    one audited step. Released bundles are not affected (they are the researchers').
    """
    settings, database = open_current_database()
    try:
        ctx = build_command_context(settings, db=database)
        service = Research(ctx)
        project = service.agreement(agreement).project
        if not yes:
            typer.confirm(
                f"destroy the keys of research project {project}? Its rows can never be read again",
                abort=True,
            )
        done = service.shred_project(CLI_ACTOR, agreement, by="operator")
    finally:
        database.dispose()
    if done:
        console.print(f"destroyed the keys of research project {project}", highlight=False)
    else:
        console.print(f"the keys of research project {project} were already destroyed")


def _write_private(path: Path, text: str) -> None:
    try:
        atomicfile.write_file(path, text, mode=atomicfile.PRIVATE_MODE, overwrite=False)
    except FileExistsError:
        fail(f"{path} already exists; choose an empty --out folder")


@extract_app.command("demo-run")
def demo_run(
    out: Path = typer.Option(..., "--out", help="folder for the bundle and the demo keys"),
    rows: int = typer.Option(50_000, min=1, max=50_000_000, help="synthetic input rows"),
    seed: int = typer.Option(2026, help="seed of the synthetic data"),
    at: datetime | None = typer.Option(
        None,
        help="release time (ISO 8601, UTC if no zone); default now",
        formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"],
    ),
) -> None:
    """Release synthetic data of the example agreement as a bundle, with throw-away keys.

    Writes the bundle, one age identity per researcher (``researcher-N.key``, private)
    and the gateway's public signing key (``gateway-signing-key.pub``) into ``--out``.
    Pseudonyms use a random key that is discarded, so demo releases link to nothing.
    """
    settings = load_settings()
    try:
        vocabulary = AgreementVocabulary.from_policies(settings.policies_dir)
        agreement = load_agreement(settings.policies_dir / EXAMPLE_AGREEMENT, vocabulary)
    except SourceError as exc:
        fail(str(exc))
    when = as_utc(at) if at is not None else SystemClock().now()
    out.mkdir(parents=True, exist_ok=True)
    identities = [age.generate() for _ in agreement.researchers]
    agreement = agreement.with_recipients([i.recipient for i in identities])
    release_id = f"{agreement.id}-{when:%Y%m%dT%H%M%SZ}"
    key_files = [out / f"researcher-{n}.key" for n in range(1, len(identities) + 1)]
    agreement.require_in_effect(when)
    public = out / "gateway-signing-key.pub"
    clash = [p.name for p in [*key_files, public, out / f"{release_id}.tar"] if p.exists()]
    if clash:
        fail(f"{out} already holds {', '.join(clash)}; choose an empty --out folder")
    signer = Ed25519Signer.generate()
    for path, identity, researcher in zip(
        key_files, identities, agreement.researchers, strict=True
    ):
        _write_private(
            path,
            f"# demo identity of {researcher.name}; public key: {identity.recipient}\n"
            f"{identity.secret}\n",
        )
    atomicfile.write_file(public, signer.public_key.hex() + "\n")
    request = ExtractRequest(
        agreement=agreement,
        release_id=release_id,
        at=when,
        policy_version="demo",
        consenting_providers=agreement.provider_ids,
    )
    with RichProgress(rows) as progress:
        release = make_release(
            request,
            synthetic.rows(rows, seed=seed),
            pseudonymiser=EphemeralPseudonymiser(agreement.project),
            signer=signer,
            out_dir=out,
            progress=progress,
        )
    counts, levels = release.manifest["counts"], release.manifest["generalisation"]["levels"]
    console.print(f"bundle: {release.bundle}", highlight=False)
    console.print(
        f"{counts['rows_out']} of {counts['rows_in']} rows released "
        f"({counts['rows_suppressed']} suppressed, k={agreement.disclosure.k}); "
        f"generalisation: {', '.join(f'{k}={v}' for k, v in levels.items())}",
        highlight=False,
    )
    console.print(f"risk: {risk_summary(release.manifest)}", highlight=False, soft_wrap=True)
    console.print(
        "next: gateway extract verify BUNDLE --public-key OUT/gateway-signing-key.pub; "
        "gateway extract open BUNDLE --public-key OUT/gateway-signing-key.pub "
        "--identity OUT/researcher-1.key --out OUT/opened",
        highlight=False,
        soft_wrap=True,
    )
