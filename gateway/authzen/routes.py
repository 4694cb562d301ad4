"""AuthZEN routes: ``/access/v1/evaluation``, ``/access/v1/evaluations`` and discovery.

Thin: parse, authenticate (bearer token, as every ``/v1`` route), call the adapter,
record every decision with its audit entry, render. Errors of a single evaluation are
problem+json (a request error is a 400 here, as the spec's transport table says; see
``gateway.api.problems``); in a batch each failing evaluation becomes a deny carrying its
error. Null members are left out of every response.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from gateway.api.deps import Ctx, CurrentCaller
from gateway.api.problems import TYPE_PREFIX, authzen_status, status_for
from gateway.api.responses import ready_json
from gateway.authzen import service
from gateway.authzen.schemas import (
    MAX_EVALUATIONS,
    Configuration,
    DecisionContext,
    EvaluationItem,
    EvaluationRequest,
    EvaluationResponse,
    EvaluationsRequest,
    EvaluationsResponse,
    extra_names,
)
from gateway.context import AppContext
from gateway.errors import GatewayError
from gateway.identity.actors import Caller
from gateway.obligations.types import to_json_list
from gateway.policy.decision import Decision

router = APIRouter(tags=["authzen"])

EVALUATION_PATH = "/access/v1/evaluation"
EVALUATIONS_PATH = "/access/v1/evaluations"


def _response(
    outcome: service.Evaluated | service.Refused, ignored: list[str]
) -> EvaluationResponse:
    if isinstance(outcome, service.Refused):
        context = DecisionContext(reason=outcome.reason, ignored=ignored or None)
        return EvaluationResponse(decision=False, context=context)
    decision: Decision = outcome.decision
    return EvaluationResponse(
        decision=decision.allowed,
        context=DecisionContext(
            reason=decision.reason,
            source=decision.source,
            rule_id=decision.rule_id,
            policy_version=decision.policy_version,
            obligations=to_json_list(decision.obligations),
            ignored=ignored or None,
        ),
    )


def _error(status: int, code: str, detail: str) -> EvaluationResponse:
    return EvaluationResponse(
        decision=False,
        context=DecisionContext(
            reason=detail,
            error={"status": status, "type": TYPE_PREFIX + code, "message": detail},
        ),
    )


def _recorded(outcomes: list[service.Evaluated | service.Refused]) -> list[service.Evaluated]:
    return [o for o in outcomes if isinstance(o, service.Evaluated)]


def _json(answer: EvaluationResponse | EvaluationsResponse) -> Response:
    """Render an answer as the routes' ``response_model`` would, null members left out."""
    return ready_json(answer, exclude_none=True)


@router.post(
    EVALUATION_PATH,
    summary="AuthZEN access evaluation",
    response_model=EvaluationResponse,
    response_model_exclude_none=True,
)
def evaluation(body: EvaluationRequest, caller: CurrentCaller, ctx: Ctx) -> Response:
    """Return the decision for one subject, action, resource and context (recorded)."""
    return _json(_evaluate_one(body, caller, ctx))


def _evaluate_one(body: EvaluationRequest, caller: Caller, ctx: AppContext) -> EvaluationResponse:
    """Decide one evaluation and record its decision; return the answer."""
    # Decided on look-ups, recorded in a write: the write (on SQLite the only writer) is
    # held for the inserts only, not for the partner look-ups and the policy's decision.
    with ctx.db.lookup() as conn:
        outcome = service.evaluate(ctx.policy, conn, caller, body)
    _record(ctx, caller, [outcome])
    return _response(outcome, body.ignored())


def _record(
    ctx: AppContext, caller: Caller, outcomes: list[service.Evaluated | service.Refused]
) -> None:
    """Record the evaluated outcomes' decisions in a write of their own (if any)."""
    evaluated = _recorded(outcomes)
    if evaluated:
        with ctx.db.write() as session:
            service.record(session, caller, evaluated, ctx.clock.now())


def _member_names(schema: dict[str, Any]) -> frozenset[str]:
    """Return every property name declared in a model's JSON Schema and its definitions."""
    names: set[str] = set()
    for model in (schema, *schema.get("$defs", {}).values()):
        names.update(model.get("properties", {}))
    return frozenset(names)


_DECLARED = _member_names(EvaluationRequest.model_json_schema())


def _declared(part: Any) -> str:
    """Return a location part if the request schema declares it, else ``*`` (never input)."""
    return str(part) if isinstance(part, int) or part in _DECLARED else "*"


def _merge(defaults: dict[str, Any] | None, item: dict[str, Any] | None) -> dict[str, Any] | None:
    if item is None:
        return defaults
    return item


@router.post(
    EVALUATIONS_PATH,
    summary="AuthZEN access evaluations (batch)",
    response_model=EvaluationsResponse | EvaluationResponse,
    response_model_exclude_none=True,
)
def evaluations(body: EvaluationsRequest, caller: CurrentCaller, ctx: Ctx) -> Response:
    """Return a decision per evaluation, honouring ``options.evaluations_semantic``.

    Each evaluation takes the request's subject, action, resource and context unless it
    names its own. Without ``evaluations`` this behaves as the single evaluation.
    Request-level members and options the gateway does not use are listed as ignored
    in every decision.
    """
    semantic = body.options.evaluations_semantic
    ignored_here = body.ignored()
    if not body.evaluations:
        try:
            single = EvaluationRequest.model_validate(
                {
                    k: v
                    for k, v in (
                        ("subject", body.subject),
                        ("action", body.action),
                        ("resource", body.resource),
                        ("context", body.context),
                    )
                    if v is not None
                }
            )
        except ValidationError as exc:
            # The request's own members are the evaluation: their errors are the body's (400).
            raise RequestValidationError(
                [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_input=False)]
            ) from None
        answer = _evaluate_one(single, caller, ctx)
        if ignored_here:
            answer.context.ignored = [*ignored_here, *(answer.context.ignored or [])]
        return _json(answer)
    results: list[EvaluationResponse] = []
    evaluated: list[service.Evaluated | service.Refused] = []
    with ctx.db.read() as session:
        for item in body.evaluations:
            merged = {
                "subject": _merge(body.subject, item.subject),
                "action": _merge(body.action, item.action),
                "resource": _merge(body.resource, item.resource),
                "context": _merge(body.context, item.context),
            }
            try:
                request = EvaluationRequest.model_validate(
                    {k: v for k, v in merged.items() if v is not None}
                )
                one = service.evaluate(ctx.policy, session, caller, request)
            except ValidationError as exc:
                where = ".".join(_declared(p) for p in exc.errors()[0].get("loc", ()))
                results.append(_error(400, "validation-failed", f"invalid evaluation at {where}"))
            except GatewayError as exc:
                status = authzen_status(status_for(exc))
                results.append(_error(status, exc.code, exc.detail))
            else:
                evaluated.append(one)
                ignored = [*ignored_here, *_item_ignored(item), *request.ignored()]
                results.append(_response(one, ignored))
            last = results[-1].decision
            if (semantic == "deny_on_first_deny" and not last) or (
                semantic == "permit_on_first_permit" and last
            ):
                break
    _record(ctx, caller, evaluated)
    return _json(EvaluationsResponse(evaluations=results))


def _item_ignored(item: EvaluationItem) -> list[str]:
    """Return the members of one ``evaluations`` entry that are not a 4-tuple member."""
    return [f"evaluations.{name}" for name in extra_names(item)]


@router.get("/.well-known/authzen-configuration", summary="AuthZEN PDP metadata")
def configuration(request: Request, ctx: Ctx) -> Configuration:
    """Return where the evaluation endpoints are and the limits (public: it holds no data)."""
    base = str(request.base_url).rstrip("/")
    return Configuration(
        issuer=base,
        policy_decision_point=base,
        access_evaluation_endpoint=base + EVALUATION_PATH,
        access_evaluations_endpoint=base + EVALUATIONS_PATH,
        max_evaluations=MAX_EVALUATIONS,
        max_request_bytes=ctx.settings.max_body_bytes,
    )
