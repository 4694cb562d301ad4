"""Benchmark: a research release of N synthetic records against a bare HMAC-SHA256 loop.

Run as ``.venv/bin/python -m bench.extract [--rows N]`` (default 1,000,000). Since
identifiers are pseudonymised on intake, a release no longer computes pseudonyms; so
what is measured against the bare loop is the pseudonymisation on intake plus the
release itself. The benchmark

1. builds N synthetic provider rows into a Parquet input file (in a child process, so
   its memory does not count; not timed), and a real key ring (``KeyRing``, created in
   a temporary folder with a scratch SQLite database for its audit entry);
2. takes the rows in as providers would submit them (only the instrument's fields, in
   batches of at most ``MAX_BATCH_ROWS`` rows of one instrument) and times, per batch:
   **pseudonymisation on intake** (``pseudonymise_rows``: normalise every BSN, IBAN,
   phone number, name and birth date and respondent id, HMAC-SHA256 under the
   project's key from the key ring), and, reported separately, the row checks
   (``check_rows``) and sealing each row with the project's row key and opening it
   again as a release reads it back (AES-256-GCM and JSON). The pseudonymised rows
   go to a Parquet file that stands in for the database (not timed);
3. times the **release** on that file, in a process of its own (spawned, opening the
   same key ring), as the gateway's release job runs: read in batches, select by
   consent and withdrawal, generalise, k-anonymity with suppression, CSV and Parquet,
   manifest, signature with the ring's key, age encryption to three researchers, one
   tar bundle;
4. times a bare HMAC-SHA256 loop (``hmac.digest``) over the same identifiers (every
   BSN, IBAN, phone number and name|birth date of the input), once before step 2 and
   once after step 3, and takes the mean (this machine's speed drifts by 10-30 % over
   minutes); and, for information, the project's pseudonymiser alone over them;

and prints throughput, the ratio (intake pseudonymisation + release) / bare loop, the
ratio to the pseudonymiser alone and that of the whole path without a database (checks,
pseudonymisation, sealing, opening, release) for information, the peak memory of this
process (``ru_maxrss``: interpreter, libraries and the intake simulation) and that of
each release's process (its VmHWM: interpreter, libraries and the release, nothing left
over from the intake; its resident memory before the release began is shown beside
it). The release's CPU time is that process's own (all its threads). Target: ratio at
most 3, the release's peak memory under 500 MB and flat in N. Every timing of a run
comes from that run on the same machine.

Steps 2-4 run ``--repeat`` times (default 3) on the same input; each run prints its ratio
beside the person-level risk of its release (prosecutor risk max and share above 1/k,
the same for the m-event attacker, suppressed people and rows), then the median run in
detail and the min / median / max of the ratio and of the release phase's peak memory.
"""

from __future__ import annotations

import argparse
import base64
import hmac
import json
import multiprocessing
import resource
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyrage import x25519

from bench.extract_parts import (
    Intake,
    PhaseClock,
    Released,
    Run,
    Timer,
    report,
    risk_figures,
    spread,
)
from gateway import db as dbmod
from gateway.clock import FixedClock
from gateway.config import Settings
from gateway.db import Database
from gateway.identity.service import CLI_ACTOR
from gateway.keys import KeyRing
from gateway.policy.vocabulary import load_vocabulary
from gateway.research import synthetic
from gateway.research.agreements import Agreement, AgreementVocabulary, load_agreement
from gateway.research.extract import ExtractRequest, input_fields
from gateway.research.intake import (
    MAX_BATCH_ROWS,
    QUESTIONNAIRE_CONSENT,
    IntakePlan,
    check_rows,
    pseudonymise_rows,
)
from gateway.research.manifest import risk_summary
from gateway.research.release_builder import make_release
from gateway.research.service.agreement_access import rows_key_id

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ROOT / "policies"
AGREEMENT = POLICIES / "agreements" / "jeugdnetwerken-noord-nederland.yaml"
RELEASE_AT = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
BATCH = 16_384
BOOL_FIELDS = ("parental_consent", "consent_withdrawn")
INT_FIELDS = ("amount",)
STRING_FIELDS = (
    "provider",
    "category",
    "bsn",
    "name",
    "birth_date",
    "postcode",
    "occurred_at",
    "iban",
    "phone",
    "respondent_id",
    "consent_version",
    "consent_date",
    "offence",
    "role",
    "outcome",
    "alert",
    "report",
    "registration",
    "notes",
    "q_online_uren",
    "q_benaderd_voor_rekening",
    "q_kent_simswap",
    "q_slachtoffer_online",
    "q_toelichting",
)
INPUT_SCHEMA = pa.schema(
    [(f, pa.string()) for f in STRING_FIELDS]
    + [(f, pa.bool_()) for f in BOOL_FIELDS]
    + [(f, pa.int64()) for f in INT_FIELDS]
)
IDENTIFIER_FIELDS = ("bsn", "iban", "phone")


def build_input(path: str, rows: int, seed: int) -> None:
    """Write ``rows`` synthetic rows to a Parquet file at ``path``, grouped by provider.

    The generator yields people one after another; providers submit their own rows, so
    the rows are regrouped per provider (a stable sort), which also spreads one
    person's rows far apart.
    """
    staging = path + ".staging"
    with pq.ParquetWriter(staging, INPUT_SCHEMA) as writer:
        chunk: list[dict[str, Any]] = []
        for row in synthetic.rows(rows, seed=seed):
            chunk.append(row)
            if len(chunk) == 50_000:
                writer.write_table(pa.Table.from_pylist(chunk, schema=INPUT_SCHEMA))
                chunk = []
        if chunk:
            writer.write_table(pa.Table.from_pylist(chunk, schema=INPUT_SCHEMA))
    table = pq.read_table(staging).sort_by("provider")  # a stable sort
    pq.write_table(table, path, row_group_size=BATCH)
    Path(staging).unlink()


def read_batches(path: Path, columns: list[str]) -> Iterator[pa.RecordBatch]:
    """Yield a Parquet file as Arrow record batches of the wanted columns.

    Without ``pre_buffer`` (on by default, meant for object stores): it reads the whole
    file ahead, 140 MB of Arrow memory for a million stored rows instead of 17 MB. And
    on this thread: decoding a batch's columns on Arrow's thread pool left each pool
    thread's allocator holding freed pages (reading 2M stored rows: +96 MB resident
    instead of +56 MB) for no less CPU time (0.63-0.86 s with threads, 0.63 s without).
    """
    source = pq.ParquetFile(path, pre_buffer=False)
    wanted = [c for c in columns if c in source.schema_arrow.names]
    yield from source.iter_batches(batch_size=BATCH, columns=wanted, use_threads=False)


def _provider_rows(
    agreement: Agreement, record_batch: pa.RecordBatch
) -> Iterator[tuple[str, str, list[dict[str, Any]], list[bool]]]:
    """Yield (provider, instrument id, rows as the provider submits them, withdrawn flags).

    A provider sends only its instrument's fields; rows outside the agreement are not
    sent, nor questionnaire rows of minors without a parent's consent.
    """
    pairs = record_batch.select(["provider", "category"]).to_pylist()
    for pair in {(p["provider"], p["category"]) for p in pairs}:
        instrument = agreement.instrument_for(*pair)
        if instrument is None:
            continue
        mask = pc.and_(
            pc.equal(record_batch.column("provider"), pair[0]),
            pc.equal(record_batch.column("category"), pair[1]),
        )
        part = record_batch.filter(mask)
        accepted = list(instrument.fields)
        if instrument.consent_text_version is not None:
            accepted += [*QUESTIONNAIRE_CONSENT, "consent_withdrawn"]
        names = [n for n in accepted if n in part.schema.names]
        rows, leaving = [], []
        for row in part.select(names).to_pylist():
            if instrument.consent_text_version is not None:
                born, day = row["birth_date"], row["consent_date"]
                minor = int(day[:4]) - int(born[:4]) - (day[5:] < born[5:]) < 16
                if minor and row.get("parental_consent") is not True:
                    continue  # no parent's consent: the intake partner does not submit it
                leaving.append(bool(row.pop("consent_withdrawn")))
            rows.append({k: v for k, v in row.items() if v is not None})
        yield pair[0], instrument.id, rows, leaving


def run_intake(
    source: Path, target: Path, agreement: Agreement, ring: KeyRing, schema: pa.Schema
) -> Intake:
    """Take the input in as providers would submit it; write the stored rows to ``target``."""
    result = Intake()
    pseudonymiser = ring.pseudonymiser(agreement.project)
    schemas = load_vocabulary(POLICIES)
    plans = {
        i.id: IntakePlan.build(agreement, i, schemas.schema(i.category))
        for i in agreement.instruments
    }
    row_key = rows_key_id(agreement.project)
    ring.create_case_key(row_key)
    seal, open_field = ring.seal_field, ring.open_field
    today = RELEASE_AT.date()
    sequence = 0
    with pq.ParquetWriter(target, schema) as writer:
        for record_batch in read_batches(source, list(STRING_FIELDS + BOOL_FIELDS)):
            result.rows_in += record_batch.num_rows
            sent = 0
            for provider, instrument_id, rows, leaving in _provider_rows(agreement, record_batch):
                plan = plans[instrument_id]
                sent += len(rows)
                for start in range(0, len(rows), MAX_BATCH_ROWS):
                    batch = rows[start : start + MAX_BATCH_ROWS]
                    with result.check:
                        checked = check_rows(plan, batch, today)
                    with result.pseudonymise:
                        prepared = pseudonymise_rows(plan, checked, pseudonymiser)
                    result.invalid.update(prepared.invalid_identifiers)
                    stored: list[dict[str, Any]] = []
                    with result.seal:
                        for item, respondent in zip(
                            prepared.payloads, prepared.respondent_keys, strict=True
                        ):
                            sequence += 1
                            owner = f"bench.{sequence}"
                            blob = seal(row_key, owner, "row", json.dumps(item).encode())
                            text = base64.b64encode(blob).decode()
                            payload = json.loads(
                                open_field(row_key, owner, "row", base64.b64decode(text))
                            )
                            payload["respondent_id"] = respondent
                            payload["provider"] = provider
                            payload["category"] = plan.instrument.category
                            stored.append(payload)
                    for respondent, gone in zip(
                        prepared.respondent_keys, leaving[start:], strict=False
                    ):
                        if gone and respondent is not None:
                            result.withdrawn.add(respondent)
                    result.rows_stored += len(stored)
                    writer.write_table(pa.Table.from_pylist(stored, schema=schema))
            result.not_submitted += record_batch.num_rows - sent
    return result


def identifier_batches(path: Path) -> Iterator[list[tuple[str, str]]]:
    """Yield, per input batch, every identifier as (type, text): BSN, IBAN, phone, name|birth date.

    The texts are as the input spells them: the baselines hash, they do not normalise.
    """
    for record_batch in read_batches(path, [*IDENTIFIER_FIELDS, "name", "birth_date"]):
        batch = record_batch.to_pydict()
        values = [(f, v) for f in IDENTIFIER_FIELDS for v in batch[f] if v is not None]
        values += [
            ("name_birthdate", f"{n}|{b}")
            for n, b in zip(batch["name"], batch["birth_date"], strict=True)
            if n is not None and b is not None
        ]
        yield values


def bare_hmac(path: Path) -> tuple[Timer, int]:
    """Time ``hmac.digest(key, value, "sha256")`` over every identifier; return it and the count.

    The baseline of the target: the standard library's one-shot HMAC-SHA256, one call
    per identifier, nothing else.
    """
    key = secrets.token_bytes(32)
    timer, count = Timer(), 0
    for values in identifier_batches(path):
        with timer:
            for _, value in values:
                hmac.digest(key, value.encode(), "sha256")
        count += len(values)
    return timer, count


def pseudonymiser_alone(path: Path, ring: KeyRing, project: str) -> Timer:
    """Time the project's pseudonymiser over every identifier (its HMAC, nothing else).

    It reuses a keyed context per identifier type, so it is faster than the bare loop:
    this is the hashing floor of the pipeline, shown for information.
    """
    pseudonymise, timer = ring.pseudonymiser(project), Timer()
    for values in identifier_batches(path):
        with timer:
            for id_type, value in values:
                pseudonymise(id_type, value)
    return timer


def peak_rss_mb() -> float:
    """Return this process's peak resident memory in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_status_mb(field: str) -> float | None:
    """Return a memory figure of this process (``VmHWM``, ``VmRSS``) in MB, or None if unknown."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def bench_settings(folder: Path) -> Settings:
    """Return the settings of the benchmark's key ring in ``folder`` (development master key)."""
    return Settings(
        mode="development",
        data_dir=folder,
        database_url=f"sqlite:///{folder / 'scratch.db'}",
        keys_dir=folder / "keys",
        policies_dir=POLICIES,
    )


def open_key_ring(folder: Path) -> KeyRing:
    """Create a real key ring (development master key) in ``folder``, audited in scratch SQLite."""
    settings = bench_settings(folder)
    database = Database(settings.resolved_database_url)
    try:
        dbmod.upgrade(database)
        with database.write() as session:
            return KeyRing.create(settings, session, clock=FixedClock(RELEASE_AT), actor=CLI_ACTOR)
    finally:
        database.dispose()


def release_process(
    folder: Path, request: ExtractRequest, store: Path, fields: list[str]
) -> Released:
    """Release ``store`` under ``request`` in this (fresh) process; return what it measured.

    Opens the key ring in ``folder``. The peak is this process's VmHWM: interpreter,
    libraries and the release.
    """
    ring = KeyRing.open(bench_settings(folder))
    before = memory_status_mb("VmRSS")
    clock, release_time = PhaseClock(), Timer()
    with release_time:
        release = make_release(
            request,
            batches=read_batches(store, fields),
            pseudonymiser=ring.pseudonymiser(request.agreement.project),
            signer=ring.signer(),
            out_dir=folder / "out",
            progress=clock,
        )
    clock.stop()
    return Released(release, release_time, clock.phases, memory_status_mb("VmHWM"), before)


def one_run(source: Path, folder: Path) -> Run:
    """Take the input in, release it and time the bare loop before and after, in ``folder``."""
    folder.mkdir()
    store = folder / "stored.parquet"
    ring = open_key_ring(folder)
    # the bare loop before the pipeline and again after it: the machine's speed drifts
    # over minutes, and the mean of the two brackets the pipeline in time
    bare_before, identifiers = bare_hmac(source)
    agreement = load_agreement(AGREEMENT, AgreementVocabulary.from_policies(POLICIES))
    identities = [x25519.Identity.generate() for _ in agreement.researchers]
    agreement = agreement.with_recipients([str(i.to_public()) for i in identities])
    fields = input_fields(agreement, pseudonymised=True)
    schema = pa.schema([(f, pa.bool_() if f in BOOL_FIELDS else pa.string()) for f in fields])
    intake = run_intake(source, store, agreement, ring, schema)
    request = ExtractRequest(
        agreement,
        "bench",
        RELEASE_AT,
        "bench",
        consenting_providers=agreement.provider_ids,
        withdrawn_respondents=frozenset(intake.withdrawn),
        pseudonymised=True,
    )
    # the release runs in a fresh process, as the gateway's release job does: its peak
    # memory is then its own, not the intake simulation's leftovers in this process
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        released = pool.submit(release_process, folder, request, store, fields).result()
    release, release_time = released.release, released.time
    bundle_mb = release.bundle.stat().st_size / 1e6
    bare_after, _ = bare_hmac(source)
    floor = pseudonymiser_alone(source, ring, agreement.project)
    return Run(
        intake,
        release,
        release_time,
        released.phases,
        bare_before,
        bare_after,
        identifiers,
        floor,
        released.peak,
        bundle_mb,
        released.before,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark ``--repeat`` times and print its report; return 0."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="synthetic input rows")
    parser.add_argument("--seed", type=int, default=2026, help="synthetic data seed")
    parser.add_argument("--repeat", type=int, default=3, help="measured runs (min/median/max)")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    with tempfile.TemporaryDirectory(prefix="bench-extract-") as tmp:
        folder = Path(tmp)
        source = folder / "input.parquet"
        began = time.perf_counter()
        child = multiprocessing.get_context("spawn").Process(
            target=build_input, args=(str(source), args.rows, args.seed)
        )
        child.start()
        child.join()
        if child.exitcode != 0:
            print("building the synthetic input failed", file=sys.stderr)
            return 1
        build_seconds = time.perf_counter() - began
        runs: list[Run] = []
        for number in range(args.repeat):
            runs.append(one_run(source, folder / f"run-{number}"))
            shutil.rmtree(folder / f"run-{number}")
        peak = peak_rss_mb()

    print(f"extract benchmark: {args.rows:,} synthetic rows (seed {args.seed}), real key ring")
    print(f"  build input (not timed below)        {build_seconds:8.2f} s")
    for number, run in enumerate(runs, start=1):
        memory = "" if run.release_peak is None else f", release peak {run.release_peak:.0f} MB"
        if run.release_peak is not None and run.release_base is not None:
            memory += f" ({run.release_base:.0f} MB before the release)"
        print(
            f"  run {number}: ratio {run.ratio:.2f} (CPU {run.cpu_ratio:.2f}), "
            f"{run.measured:.2f} s{memory} | person-level risk: "
            f"{risk_figures(run.release.manifest)}"
        )
    ordered = sorted(runs, key=lambda r: r.ratio)
    run = ordered[(len(ordered) - 1) // 2]
    print(f"  the median run in detail (run {runs.index(run) + 1} of {len(runs)}):")
    report(run)
    print(
        f"  ratio pipeline / bare HMAC over {len(runs)} runs (min / median / max): "
        f"{spread([r.ratio for r in runs])} wall clock, {spread([r.cpu_ratio for r in runs])} "
        "CPU time (target <= 3)"
    )
    print(f"  peak memory (max RSS) of the intake simulation {peak:8.0f} MB")
    peaks = [r.release_peak for r in runs if r.release_peak is not None]
    if peaks:
        print(
            f"  peak memory of the release phase (min / median / max) {spread(peaks, ' MB')} "
            "(VmHWM of the release's own process, interpreter and libraries included; "
            "target < 500 and flat in N, issue 17)"
        )
    print(f"  person-level risk: {risk_summary(run.release.manifest)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
