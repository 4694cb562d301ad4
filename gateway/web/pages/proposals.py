"""Proposals: the editor with lint, the list, one proposal with its diff, simulation and
the approve and reject buttons (disabled, with the reason, for those who may not)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request, Response

from gateway.api.deps import Ctx, ProposalId
from gateway.errors import InvalidInputError
from gateway.policy import approvals, proposals, versions
from gateway.policy.errors import ProposalNotCompilableError, ProposalUnchangedError
from gateway.policy.pack import Pack, analyse_pack
from gateway.web.framework import (
    PREFIX,
    CsrfOfficer,
    Form,
    Officer,
    WebRoute,
    WebUser,
    add_nav,
    is_htmx,
    redirect,
    render,
)
from gateway.web.views import (
    CHANGE_LABELS,
    EditorFile,
    diff_lines,
    parse_period,
    problem_context,
    simulation_view,
    value_text,
)

router = APIRouter(prefix=PREFIX, route_class=WebRoute, include_in_schema=False)
add_nav("proposals", "Voorstellen · proposals", f"{PREFIX}/proposals", order=20)


def _normalise(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _changes(form: Any, active: Pack) -> dict[str, str | None]:
    changes: dict[str, str | None] = {}
    for path in active.editable:
        if form.get(f"delete:{path}") == "on":
            changes[path] = None
            continue
        text = form.get(f"file:{path}")
        if isinstance(text, str) and _normalise(text) != active.files[path]:
            changes[path] = text
    new_path = str(form.get("new_path") or "").strip()
    if new_path:
        changes[new_path] = str(form.get("new_text") or "")
    return changes


def _editor_files(
    active: Pack, form: Any | None, problems: list[dict[str, Any]]
) -> list[EditorFile]:
    result = []
    for path in active.editable:
        text = active.files[path]
        if form is not None and isinstance(form.get(f"file:{path}"), str):
            text = _normalise(str(form.get(f"file:{path}")))
        mine = [
            {**p, "text": problem_context(text, int(p["line"]))}
            for p in problems
            if p["file"] == path
        ]
        result.append(
            EditorFile(
                path=path,
                text=text,
                changed=text != active.files[path],
                deleted=form is not None and form.get(f"delete:{path}") == "on",
                problems=mine,
            )
        )
    return result


def _editor(
    request: Request,
    user: WebUser,
    active: Pack,
    *,
    form: Any | None = None,
    problems: list[dict[str, Any]] | None = None,
    error: str = "",
    status_code: int = 200,
) -> Response:
    problems = problems or []
    files = _editor_files(active, form, problems)
    shown = {f.path for f in files}
    return render(
        request,
        "proposal_new.html",
        user,
        nav="proposals",
        status_code=status_code,
        files=files,
        other_problems=[p for p in problems if p["file"] not in shown],
        error=error,
        title=str(form.get("title") or "") if form is not None else "",
        description=str(form.get("description") or "") if form is not None else "",
        new_path=str(form.get("new_path") or "") if form is not None else "",
        new_text=str(form.get("new_text") or "") if form is not None else "",
    )


def _active_pack(ctx: Ctx) -> Pack:
    with ctx.db.read() as session:
        return versions.pack_of(versions.active_version(session))


@router.get("/proposals")
def proposal_list(request: Request, user: Officer, ctx: Ctx) -> Response:
    """List proposals, newest first."""
    with ctx.db.read() as session:
        rows = proposals.list_proposals(session)
    listed = [(p, json.loads(p.changed_files)) for p in rows]
    return render(request, "proposals.html", user, nav="proposals", proposals=listed)


@router.get("/proposals/new")
def new_proposal(request: Request, user: Officer, ctx: Ctx) -> Response:
    """Show the editor with the active version's rule, table and agreement files."""
    return _editor(request, user, _active_pack(ctx))


@router.post("/proposals/lint")
def lint(request: Request, user: CsrfOfficer, ctx: Ctx, form: Form) -> Response:
    """Check the edited files without storing anything (htmx fragment)."""
    active = _active_pack(ctx)
    context: dict[str, Any] = {"problems": [], "summary": None, "error": ""}
    try:
        with ctx.db.read() as session:
            checked = proposals.lint_changes(session, _changes(form, active))
        context["summary"] = checked.summary()
    except ProposalNotCompilableError as exc:
        context["problems"] = exc.extensions["problems"]
    except InvalidInputError as exc:
        context["error"] = exc.detail
    return render(request, "_lint.html", user, **context)


@router.post("/proposals")
def create(request: Request, user: CsrfOfficer, ctx: Ctx, form: Form) -> Response:
    """Store the proposal, or show the editor again with every problem at its file and line."""
    active = _active_pack(ctx)
    try:
        proposal = proposals.create_proposal(
            ctx.db,
            ctx.clock,
            user.caller,
            title=str(form.get("title") or ""),
            description=str(form.get("description") or ""),
            changes=_changes(form, active),
        )
    except ProposalNotCompilableError as exc:
        return _editor(
            request,
            user,
            active,
            form=form,
            problems=exc.extensions["problems"],
            error=exc.detail,
            status_code=422,
        )
    except (ProposalUnchangedError, InvalidInputError) as exc:
        return _editor(request, user, active, form=form, error=exc.detail, status_code=422)
    return redirect(f"{PREFIX}/proposals/{proposal.id}")


def _detail(
    request: Request,
    user: WebUser,
    ctx: Ctx,
    proposal_id: int,
    *,
    since: str | None = None,
    until: str | None = None,
    simulate: bool = False,
) -> Response:
    period = parse_period(since, until, ctx.clock.now().date())
    with ctx.db.read() as session:
        view = approvals.describe(session, proposal_id, user.caller)
        sim = (
            proposals.simulate(session, proposal_id, period.since, period.until)
            if simulate
            else None
        )
        active = versions.active_version(session)
    vocabulary = analyse_pack(versions.pack_of(active)).compiled.vocabulary
    simulation = simulation_view(sim, period, vocabulary) if sim is not None else None
    if simulate and is_htmx(request):
        return render(request, "_simulation.html", user, simulation=simulation)
    return render(
        request,
        "proposal.html",
        user,
        nav="proposals",
        view=view,
        proposal=view.proposal,
        file_diffs=[(f, diff_lines(f.unified)) for f in (view.diff.files if view.diff else ())],
        change_labels=CHANGE_LABELS,
        value_text=value_text,
        simulation=simulation,
        period=period,
    )


@router.get("/proposals/{proposal_id}")
def proposal_page(proposal_id: ProposalId, request: Request, user: Officer, ctx: Ctx) -> Response:
    """Show one proposal: lint result, diff against the active version, decisions."""
    return _detail(request, user, ctx, proposal_id)


@router.get("/proposals/{proposal_id}/simulation")
def simulation(
    proposal_id: ProposalId,
    request: Request,
    user: Officer,
    ctx: Ctx,
    since: str | None = None,
    until: str | None = None,
) -> Response:
    """Replay the recorded decisions of a period (htmx: just the results)."""
    return _detail(request, user, ctx, proposal_id, since=since, until=until, simulate=True)


@router.post("/proposals/{proposal_id}/approve")
def approve(
    proposal_id: ProposalId, request: Request, user: CsrfOfficer, ctx: Ctx, form: Form
) -> Response:
    """Approve and activate (refused for the proposer, the same person, and officers of
    partners that do not own the pack)."""
    approvals.approve(ctx.db, ctx.clock, user.caller, proposal_id, note=str(form.get("note") or ""))
    if ctx.policy_watcher is not None:
        ctx.policy_watcher.sync()
    return redirect(f"{PREFIX}/proposals/{proposal_id}", request)


@router.post("/proposals/{proposal_id}/reject")
def reject(
    proposal_id: ProposalId, request: Request, user: CsrfOfficer, ctx: Ctx, form: Form
) -> Response:
    """Reject an open proposal."""
    approvals.reject(ctx.db, ctx.clock, user.caller, proposal_id, note=str(form.get("note") or ""))
    return redirect(f"{PREFIX}/proposals/{proposal_id}", request)
