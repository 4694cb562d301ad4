"""``gateway policy lint|test|explain|diff|simulate|propose|versions``: the policy pack."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import typer
from rich import box
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from gateway.cli.app import (
    CliError,
    app,
    console,
    err_console,
    load_settings,
    open_current_database,
)
from gateway.clock import SystemClock
from gateway.db import Database
from gateway.errors import InvalidInputError
from gateway.identity.service import CLI_ACTOR
from gateway.obligations.types import to_json_list
from gateway.policy import proposals, tables, versions
from gateway.policy.compiler import CompiledPolicy, compile_policy
from gateway.policy.decision import DecisionRequest
from gateway.policy.diff import Change, diff_packs
from gateway.policy.engine import PolicyEngine
from gateway.policy.errors import ProposalNotCompilableError
from gateway.policy.explain import explain as explain_request
from gateway.policy.pack import PackAnalysis, analyse_pack, read_pack
from gateway.policy.proposals import simulate_pack
from gateway.policy.simulate import FlipKind
from gateway.yamlsource import SourceError

policy_app = typer.Typer(
    help="Lint, test, explain, diff and simulate the policy pack.", no_args_is_help=True
)
app.add_typer(policy_app, name="policy")

PoliciesOption = typer.Option(
    None, "--policies", help="policy pack folder (default: GATEWAY_POLICIES_DIR)"
)


def _folder(policies: Path | None) -> Path:
    return policies if policies is not None else load_settings().policies_dir


def _print_problems(exc: SourceError) -> None:
    for problem in exc.problems:
        err_console.print(str(problem), markup=False, highlight=False, soft_wrap=True)


def load_pack(policies_dir: Path) -> CompiledPolicy:
    """Return the compiled pack, or print every problem and raise CliError."""
    try:
        return compile_policy(policies_dir)
    except SourceError as exc:
        _print_problems(exc)
        raise CliError(
            f"the policy pack in {policies_dir} does not compile ({len(exc.problems)} problem(s))"
        ) from exc


@policy_app.command("lint")
def lint(policies: Path | None = PoliciesOption) -> None:
    """Check every name, overlap and obligation; print problems as file:line: message."""
    folder = _folder(policies)
    compiled = load_pack(folder)
    try:
        expected = tables.load_tables(folder)
    except SourceError as exc:
        _print_problems(exc)
        raise CliError(f"the decision tables do not load ({len(exc.problems)} problem(s))") from exc
    console.print(
        f"ok: {len(compiled.rules)} rules, {len(compiled.rows)} rows, "
        f"{len(expected)} expected decisions; version {compiled.version[:16]}"
    )


@policy_app.command("test")
def run_tables(policies: Path | None = PoliciesOption) -> int:
    """Run the tables of expected decisions; exit non-zero on any mismatch."""
    folder = _folder(policies)
    engine = PolicyEngine(load_pack(folder))
    try:
        expected = tables.load_tables(folder)
    except SourceError as exc:
        _print_problems(exc)
        raise CliError(f"the decision tables do not load ({len(exc.problems)} problem(s))") from exc
    outcomes = tables.run(engine, expected)
    failed = [o for o in outcomes if not o.passed]
    for outcome in failed:
        console.print(outcome.describe(), markup=False, highlight=False, soft_wrap=True)
    denies = sum(1 for e in expected if not e.allowed)
    summary = (
        f"{len(outcomes)} expected decisions ({denies} must-deny), "
        f"{len(outcomes) - len(failed)} passed, {len(failed)} failed"
    )
    if failed:
        err_console.print(f"FAILED: {summary}", markup=False)
        return 1
    console.print(f"ok: {summary}; version {engine.version[:16]}")
    return 0


@policy_app.command("explain")
def explain(
    action: str = typer.Option(..., help="e.g. case:record:read"),
    partner_kind: str = typer.Option(..., help="kind of the asking partner"),
    role: str = typer.Option(..., help="role of the asking principal"),
    partner: str = typer.Option("example", help="id of the asking partner"),
    process: str = typer.Option("none", help="casusaanpak, handhavingsknelpunt, gebiedsscan"),
    step: str = typer.Option("none", help="1-7 or none"),
    purpose: str = typer.Option("none"),
    category: str = typer.Option("none"),
    legal_basis: str = typer.Option("none"),
    provider_kind: str = typer.Option("none"),
    relation: str = typer.Option("none", help="own, other or none"),
    consent: str = typer.Option("not-needed", help="given, absent or not-needed"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of text"),
    policies: Path | None = PoliciesOption,
) -> None:
    """Explain one decision: the matched rule, its reason and source, the nearest misses."""
    engine = PolicyEngine(load_pack(_folder(policies)))
    try:
        request = DecisionRequest.from_dict(
            {
                "partner_id": partner,
                "partner_kind": partner_kind,
                "role": role,
                "action": action,
                "process": process,
                "step": step,
                "purpose": purpose,
                "category": category,
                "legal_basis": legal_basis,
                "provider_kind": provider_kind,
                "relation": relation,
                "consent": consent,
            }
        )
        result = explain_request(engine, request)
    except InvalidInputError as exc:
        raise CliError(exc.detail) from exc
    decision = result.decision
    if as_json:
        body = {
            "request": request.to_dict(),
            "decision": decision.to_dict(),
            "rule": None
            if result.rule is None
            else {"id": result.rule.id, "at": result.rule.where},
            "near_misses": [
                {
                    "rule": m.rule.id,
                    "effect": m.rule.effect,
                    "at": m.rule.where,
                    "why_not": list(m.reasons),
                }
                for m in result.near_misses
            ],
        }
        console.print_json(json.dumps(body, ensure_ascii=False))
        return
    verdict = "ALLOW" if decision.allowed else "DENY"
    console.print(f"{verdict} by rule {decision.rule_id}", markup=False)
    if result.rule is not None:
        console.print(f"  defined at {result.rule.where}", markup=False, soft_wrap=True)
    console.print(f"  reason: {decision.reason}", markup=False, soft_wrap=True)
    console.print(f"  source: {decision.source}", markup=False, soft_wrap=True)
    if decision.obligations:
        console.print(
            f"  obligations: {json.dumps(to_json_list(decision.obligations))}", markup=False
        )
    console.print(f"  policy version: {decision.policy_version[:16]}", markup=False)
    if result.near_misses:
        console.print("nearest rules that did not match:", markup=False)
    for miss in result.near_misses:
        console.print(
            f"  {miss.rule.effect} {miss.rule.id} ({miss.rule.where})", markup=False, soft_wrap=True
        )
        for reason in miss.reasons:
            console.print(f"    - {reason}", markup=False, soft_wrap=True)


def _analyse_folder(folder: Path) -> PackAnalysis:
    """Return the analysed pack in ``folder``, or print every problem and raise CliError."""
    try:
        return analyse_pack(read_pack(folder))
    except SourceError as exc:
        _print_problems(exc)
        raise CliError(
            f"the policy pack in {folder} does not compile ({len(exc.problems)} problem(s))"
        ) from exc


def _active_analysis(database: Database) -> tuple[int, PackAnalysis]:
    with database.read() as session:
        active = versions.active_version(session)
    assert active.id is not None
    return active.id, analyse_pack(versions.pack_of(active))


def _short(value: object) -> str:
    if value is None:
        return "-"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


@policy_app.command("diff")
def diff(policies: Path | None = PoliciesOption) -> None:
    """Show how a folder differs from the active version: per rule, then per file."""
    folder = _folder(policies)
    after = _analyse_folder(folder)
    _settings, database = open_current_database()
    try:
        active_id, before = _active_analysis(database)
    finally:
        database.dispose()
    result = diff_packs(before, after)
    if result.empty:
        console.print(f"no differences with the active version {active_id}")
        return
    console.print(
        f"{folder} against the active version {active_id}: "
        f"{result.count(Change.ADDED)} rule(s) added, {result.count(Change.CHANGED)} changed, "
        f"{result.count(Change.REMOVED)} removed; {len(result.files)} file(s) differ",
        markup=False,
    )
    if result.rules:
        table = Table("rule", "change", "file", "what changed (before -> after)", box=box.SIMPLE)
        for rule in result.rules:
            fields = "\n".join(
                f"{f.field}: {_short(f.before)} -> {_short(f.after)}" for f in rule.fields
            )
            table.add_row(
                Text(rule.rule_id), rule.change.value, Text(rule.file), Text(fields or rule.reason)
            )
        console.print(table)
    for file_diff in result.files:
        console.print(Syntax(file_diff.unified, "diff", theme="ansi_dark", word_wrap=True))


def _moment(text: str, *, end: bool) -> datetime:
    """Parse ``YYYY-MM-DD`` (a whole UTC day; as an end, inclusive) or an ISO date-time."""
    try:
        if len(text) == 10:
            day = date.fromisoformat(text) + (timedelta(days=1) if end else timedelta())
            return datetime.combine(day, time(), tzinfo=UTC)
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise CliError(f"{text!r} is not a date (2026-11-23) or date-time") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _counts_table(title: str, groups: dict[str, dict[str, int]]) -> Table:
    kinds = [k.value for k in FlipKind]
    table = Table(title, *kinds, "total", box=box.SIMPLE, title_justify="left")
    for name, counts in groups.items():
        table.add_row(
            Text(name), *(str(counts.get(k, 0)) for k in kinds), str(sum(counts.values()))
        )
    return table


@policy_app.command("simulate")
def simulate(
    policies: Path | None = PoliciesOption,
    since: str | None = typer.Option(
        None, help="first day (YYYY-MM-DD) or moment; default 30 days before --until"
    ),
    until: str | None = typer.Option(
        None, help="last day (YYYY-MM-DD, inclusive) or moment; default now"
    ),
    limit: int = typer.Option(50, min=0, help="flips to list one by one"),
    fail_on_flip: bool = typer.Option(False, help="exit 1 when any decision would flip"),
) -> int:
    """Replay the recorded decisions of a period against a folder; show what would flip."""
    folder = _folder(policies)
    pack = read_pack(folder)
    _analyse_folder(folder)
    end = _moment(until, end=True) if until else SystemClock().now()
    start = _moment(since, end=False) if since else end - timedelta(days=30)
    _settings, database = open_current_database()
    try:
        with database.read() as session:
            result = simulate_pack(session, pack, start, end)
    finally:
        database.dispose()
    console.print(
        f"{result.replayed} recorded decision(s) from {start:%Y-%m-%d %H:%M} to "
        f"{end:%Y-%m-%d %H:%M} UTC replayed ({result.distinct_requests} distinct); "
        f"{result.flip_count} would flip"
        + (f"; {result.unreplayable} not replayable" if result.unreplayable else ""),
        markup=False,
    )
    if result.flip_count:
        console.print(
            "  " + ", ".join(f"{kind}: {count}" for kind, count in result.counts.items()),
            markup=False,
        )
        console.print(_counts_table("by partner", result.by_partner))
        console.print(_counts_table("by step", result.by_step))
        console.print(_counts_table("by rule (now -> proposed)", result.by_rule))
    if result.flips and limit:
        table = Table(
            "when",
            "partner",
            "role",
            "action",
            "step",
            "category",
            "now",
            "proposed",
            box=box.SIMPLE,
            title=f"flips (first {min(limit, len(result.flips))})",
            title_justify="left",
        )
        for flip in result.flips[:limit]:
            table.add_row(
                f"{flip.decided_at:%Y-%m-%d %H:%M}",
                Text(flip.partner_id),
                flip.role,
                flip.action,
                "-" if flip.step is None else str(flip.step),
                Text(flip.category),
                Text(f"{'allow' if flip.before.allowed else 'deny'} {flip.before.rule_id}"),
                Text(f"{'allow' if flip.after.allowed else 'deny'} {flip.after.rule_id}"),
            )
        console.print(table)
    return 1 if fail_on_flip and result.flip_count else 0


@policy_app.command("versions")
def list_versions() -> None:
    """List the stored policy versions, newest first (the active one marked)."""
    _settings, database = open_current_database()
    try:
        with database.read() as session:
            rows = versions.list_versions(session)
    finally:
        database.dispose()
    table = Table(
        "id", "state", "origin", "created", "by", "rules", "policy version", box=box.SIMPLE
    )
    for v in rows:
        table.add_row(
            str(v.id),
            v.state,
            v.origin + (f" #{v.proposal_id}" if v.proposal_id else ""),
            f"{v.created_at:%Y-%m-%d %H:%M}",
            Text(v.created_by_principal_id),
            str(v.rule_count),
            v.policy_version[:16],
        )
    console.print(table)


@policy_app.command("propose")
def propose(
    policies: Path | None = PoliciesOption,
    title: str = typer.Option(..., help="what the change does, in one line"),
    description: str = typer.Option("", help="why"),
) -> None:
    """Propose a whole folder as the next version, for a RIEC privacy officer to approve.

    Unlike the workbench, any file may change, the vocabulary and model too: this is how
    a release of the gateway brings its pack. Nothing is active until it is approved.
    """
    folder = _folder(policies)
    pack = read_pack(folder)
    _settings, database = open_current_database()
    try:
        proposal = proposals.propose_pack(
            database, SystemClock(), CLI_ACTOR, pack, title=title, description=description
        )
    except ProposalNotCompilableError as exc:
        for line in exc.extensions["lint"]:
            err_console.print(line, markup=False, highlight=False, soft_wrap=True)
        raise CliError(exc.detail) from exc
    finally:
        database.dispose()
    lint = json.loads(proposal.lint)
    console.print(
        f"proposal {proposal.id} stored ({', '.join(json.loads(proposal.changed_files))}); "
        f"{len(lint['table_failures'])} expected decision(s) no longer hold; a RIEC privacy "
        f"officer decides on it at /workbench/proposals/{proposal.id}",
        markup=False,
        soft_wrap=True,
    )
