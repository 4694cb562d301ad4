"""OpenID AuthZEN Authorization API 1.0 shapes, as the gateway maps them.

subject = {type: "partner", id, properties: {role?}}; resource = {type: "record",
properties: {category, legal_basis, provider, consent}}; action = {name};
context = {process, step, purpose, case_id}. Unknown members are refused (422).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

NAME = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9:.\-]*$")


class SubjectProperties(BaseModel):
    """Only the role: a privileged caller names the role it asks about."""

    model_config = ConfigDict(extra="forbid")

    role: str | None = Field(default=None, min_length=1, max_length=32)


class Subject(BaseModel):
    """The partner the question is about."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["partner"]
    id: str = NAME
    properties: SubjectProperties = Field(default_factory=SubjectProperties)


class ResourceProperties(BaseModel):
    """The data the question is about: its category, legal basis, provider and consent."""

    model_config = ConfigDict(extra="forbid")

    category: str = Field(default="none", min_length=1, max_length=64)
    legal_basis: str = Field(default="none", min_length=1, max_length=64)
    provider: str | None = Field(default=None, min_length=1, max_length=64)
    consent: Literal["given", "absent", "not-needed"] = "absent"


class Resource(BaseModel):
    """A record (or step output, signal, extract) of a data category."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["record"]
    id: str | None = Field(default=None, max_length=128)
    properties: ResourceProperties = Field(default_factory=ResourceProperties)


class Action(BaseModel):
    """The action, by its ``scope:resource:action`` name."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)


class Context(BaseModel):
    """Where: the work process and step, the purpose, and optionally the case."""

    model_config = ConfigDict(extra="forbid")

    process: str = Field(default="none", min_length=1, max_length=64)
    step: int | None = Field(default=None, ge=1, le=7, strict=True)
    purpose: str = Field(default="none", min_length=1, max_length=64)
    case_id: str | None = Field(default=None, min_length=1, max_length=64)


class EvaluationRequest(BaseModel):
    """``POST /access/v1/evaluation``."""

    model_config = ConfigDict(extra="forbid")

    subject: Subject
    action: Action
    resource: Resource
    context: Context = Field(default_factory=Context)


class EvaluationItem(BaseModel):
    """One entry of ``evaluations``: overrides the request's defaults member by member."""

    model_config = ConfigDict(extra="forbid")

    subject: dict[str, Any] | None = None
    action: dict[str, Any] | None = None
    resource: dict[str, Any] | None = None
    context: dict[str, Any] | None = None


class EvaluationsOptions(BaseModel):
    """The spec's batch options."""

    model_config = ConfigDict(extra="forbid")

    evaluations_semantic: Literal["execute_all", "deny_on_first_deny", "permit_on_first_permit"] = (
        "execute_all"
    )


class EvaluationsRequest(BaseModel):
    """``POST /access/v1/evaluations``: defaults plus a list of evaluations."""

    model_config = ConfigDict(extra="forbid")

    subject: dict[str, Any] | None = None
    action: dict[str, Any] | None = None
    resource: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    evaluations: list[EvaluationItem] | None = Field(default=None, max_length=256)
    options: EvaluationsOptions = Field(default_factory=EvaluationsOptions)


class DecisionContext(BaseModel):
    """Why: the reason, its source, the rule, the policy version and the obligations."""

    reason: str | None = None
    source: str | None = None
    rule_id: str | None = None
    policy_version: str | None = None
    obligations: list[dict[str, Any]] = Field(default_factory=list)
    error: dict[str, Any] | None = None


class EvaluationResponse(BaseModel):
    """One decision in the AuthZEN response format."""

    decision: bool
    context: DecisionContext


class EvaluationsResponse(BaseModel):
    """The batch response: one entry per evaluation that was run."""

    evaluations: list[EvaluationResponse]


class Configuration(BaseModel):
    """PDP metadata at ``/.well-known/authzen-configuration``."""

    policy_decision_point: str
    access_evaluation_endpoint: str
    access_evaluations_endpoint: str
