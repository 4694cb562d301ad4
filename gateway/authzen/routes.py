"""AuthZEN routes: ``/access/v1/evaluation``, ``/access/v1/evaluations`` and discovery.

Thin: parse, authenticate (bearer token, as every ``/v1`` route), call the adapter,
record every decision with its audit entry, render. Errors of a single evaluation are
problem+json; in a batch each failing evaluation becomes a deny carrying its error.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from gateway.api.deps import Ctx, CurrentCaller
from gateway.api.problems import TYPE_PREFIX, status_for
from gateway.authzen import service
from gateway.authzen.schemas import (
    Configuration,
    DecisionContext,
    EvaluationRequest,
    EvaluationResponse,
    EvaluationsRequest,
    EvaluationsResponse,
)
from gateway.errors import GatewayError
from gateway.obligations.types import to_json_list
from gateway.policy.decision import Decision

router = APIRouter(tags=["authzen"])

EVALUATION_PATH = "/access/v1/evaluation"
EVALUATIONS_PATH = "/access/v1/evaluations"


def _response(decision: Decision) -> EvaluationResponse:
    return EvaluationResponse(
        decision=decision.allowed,
        context=DecisionContext(
            reason=decision.reason,
            source=decision.source,
            rule_id=decision.rule_id,
            policy_version=decision.policy_version,
            obligations=to_json_list(decision.obligations),
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


@router.post(EVALUATION_PATH, summary="AuthZEN access evaluation")
def evaluation(body: EvaluationRequest, caller: CurrentCaller, ctx: Ctx) -> EvaluationResponse:
    """Return the decision for one subject, action, resource and context (recorded)."""
    with ctx.db.write() as session:
        evaluated = service.evaluate(ctx.policy, session, caller, body)
        service.record(session, caller, [evaluated], ctx.clock.now())
    return _response(evaluated.decision)


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


@router.post(EVALUATIONS_PATH, summary="AuthZEN access evaluations (batch)", response_model=None)
def evaluations(
    body: EvaluationsRequest, caller: CurrentCaller, ctx: Ctx
) -> EvaluationsResponse | EvaluationResponse:
    """Return a decision per evaluation, honouring ``options.evaluations_semantic``.

    Each evaluation takes the request's subject, action, resource and context unless it
    names its own. Without ``evaluations`` this behaves as the single evaluation.
    """
    semantic = body.options.evaluations_semantic
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
            # The request's own members are the evaluation: their errors are the body's (422).
            raise RequestValidationError(
                [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_input=False)]
            ) from None
        return evaluation(single, caller, ctx)
    results: list[EvaluationResponse] = []
    with ctx.db.write() as session:
        evaluated: list[service.Evaluated] = []
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
                results.append(_error(422, "validation-failed", f"invalid evaluation at {where}"))
            except GatewayError as exc:
                results.append(_error(status_for(exc), exc.code, exc.detail))
            else:
                evaluated.append(one)
                results.append(_response(one.decision))
            last = results[-1].decision
            if (semantic == "deny_on_first_deny" and not last) or (
                semantic == "permit_on_first_permit" and last
            ):
                break
        service.record(session, caller, evaluated, ctx.clock.now())
    return EvaluationsResponse(evaluations=results)


@router.get("/.well-known/authzen-configuration", summary="AuthZEN PDP metadata")
def configuration(request: Request) -> Configuration:
    """Return where the evaluation endpoints are (public: it holds no data)."""
    base = str(request.base_url).rstrip("/")
    return Configuration(
        policy_decision_point=base,
        access_evaluation_endpoint=base + EVALUATION_PATH,
        access_evaluations_endpoint=base + EVALUATIONS_PATH,
    )
