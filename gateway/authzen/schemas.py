"""OpenID AuthZEN Authorization API 1.0 shapes, as the gateway maps them.

subject = {type: "partner", id, properties: {role?}}; resource = {type: "record", id,
properties: {category, legal_basis, provider, consent}}; action = {name, properties?};
context = {process, step, purpose, case_id}. ``subject.id`` and ``resource.id`` are
required, as the spec requires them. Every other member the spec allows (``properties``
such as ``ip_address`` or ``device_id``, ``action.properties``, context keys such as
``time``) is accepted, IGNORED for the decision and listed in the decision's
``context.ignored``. A member the gateway models must have its type (strict: ``"3"`` is
not a step), else the request is a 400 on the AuthZEN paths.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.schemas.base import StrictIn

# The most evaluations one ``/access/v1/evaluations`` request may hold (advertised).
MAX_EVALUATIONS = 256

# An ignored member is named in ``context.ignored`` only if its name looks like a spec
# property name (``ip_address``, ``time``); any other name is input and becomes ``*``.
_LISTABLE = re.compile(r"[a-z][a-z0-9_]{0,31}")

_OPEN = ConfigDict(extra="allow", strict=True)


def _name(key: str) -> str:
    """Return ``key`` if it may be shown back, else ``*`` (never arbitrary input)."""
    return key if _LISTABLE.fullmatch(key) else "*"


def extra_names(model: BaseModel) -> list[str]:
    """Return the names (``*`` for unshowable ones) of members no field of ``model`` declares."""
    return [_name(key) for key in (model.model_extra or {})]


def _extras(model: BaseModel, where: str) -> list[str]:
    """Return the dotted names of the members of ``model`` that no field declares."""
    return [where + name for name in extra_names(model)]


class SubjectProperties(BaseModel):
    """Only the role is used: a privileged caller names the role it asks about."""

    model_config = _OPEN

    role: str | None = Field(default=None, min_length=1, max_length=32)


class Subject(BaseModel):
    """The partner the question is about (``type`` ``partner``)."""

    model_config = _OPEN

    type: str = Field(min_length=1, max_length=64)
    id: str = Field(min_length=1, max_length=256)
    properties: SubjectProperties = Field(default_factory=SubjectProperties)


class ResourceProperties(BaseModel):
    """The data the question is about: its category, legal basis, provider and consent."""

    model_config = _OPEN

    category: str = Field(default="none", min_length=1, max_length=64)
    legal_basis: str = Field(default="none", min_length=1, max_length=64)
    provider: str | None = Field(default=None, min_length=1, max_length=64)
    consent: Literal["given", "absent", "not-needed"] = "absent"


class Resource(BaseModel):
    """A record (or step output, signal, extract) of a data category (``type`` ``record``)."""

    model_config = _OPEN

    type: str = Field(min_length=1, max_length=64)
    id: str = Field(min_length=1, max_length=256)
    properties: ResourceProperties = Field(default_factory=ResourceProperties)


class Action(BaseModel):
    """The action, by its ``scope:resource:action`` name; its properties are not used."""

    model_config = _OPEN

    name: str = Field(min_length=1, max_length=64)
    properties: dict[str, Any] = Field(default_factory=dict)


class Context(BaseModel):
    """Where: the work process and step, the purpose, and optionally the case."""

    model_config = _OPEN

    process: str = Field(default="none", min_length=1, max_length=64)
    step: int | None = Field(default=None, ge=1, le=7, strict=True)
    purpose: str = Field(default="none", min_length=1, max_length=64)
    case_id: str | None = Field(default=None, min_length=1, max_length=64)


class EvaluationRequest(StrictIn):
    """``POST /access/v1/evaluation``."""

    model_config = ConfigDict(extra="allow")

    subject: Subject
    action: Action
    resource: Resource
    context: Context = Field(default_factory=Context)

    def ignored(self) -> list[str]:
        """Return the members given but not used for the decision, by dotted name."""
        return [
            *_extras(self, ""),
            *_extras(self.subject, "subject."),
            *_extras(self.subject.properties, "subject.properties."),
            *_extras(self.action, "action."),
            *(f"action.properties.{_name(key)}" for key in self.action.properties),
            *_extras(self.resource, "resource."),
            *_extras(self.resource.properties, "resource.properties."),
            *_extras(self.context, "context."),
        ]


class EvaluationItem(BaseModel):
    """One entry of ``evaluations``: overrides the request's defaults member by member."""

    model_config = _OPEN

    subject: dict[str, Any] | None = None
    action: dict[str, Any] | None = None
    resource: dict[str, Any] | None = None
    context: dict[str, Any] | None = None


class EvaluationsOptions(BaseModel):
    """The spec's batch options; options the gateway does not know are ignored."""

    model_config = _OPEN

    evaluations_semantic: Literal["execute_all", "deny_on_first_deny", "permit_on_first_permit"] = (
        "execute_all"
    )


class EvaluationsRequest(StrictIn):
    """``POST /access/v1/evaluations``: defaults plus a list of evaluations."""

    model_config = ConfigDict(extra="allow")

    subject: dict[str, Any] | None = None
    action: dict[str, Any] | None = None
    resource: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    evaluations: list[EvaluationItem] | None = Field(default=None, max_length=MAX_EVALUATIONS)
    options: EvaluationsOptions = Field(default_factory=EvaluationsOptions)

    def ignored(self) -> list[str]:
        """Return the request-level members not used, by dotted name (options included)."""
        return [*_extras(self, ""), *_extras(self.options, "options.")]


class DecisionContext(BaseModel):
    """Why: the reason, its source, the rule, the policy version and the obligations.

    ``ignored`` names the request members that were accepted but not used; ``error`` is
    set only on a batch entry that could not be evaluated. Absent members are omitted.
    """

    reason: str | None = None
    source: str | None = None
    rule_id: str | None = None
    policy_version: str | None = None
    obligations: list[dict[str, Any]] = Field(default_factory=list)
    ignored: list[str] | None = None
    error: dict[str, Any] | None = None


class EvaluationResponse(BaseModel):
    """One decision in the AuthZEN response format."""

    decision: bool
    context: DecisionContext


class EvaluationsResponse(BaseModel):
    """The batch response: one entry per evaluation that was run."""

    evaluations: list[EvaluationResponse]


class Configuration(BaseModel):
    """PDP metadata at ``/.well-known/authzen-configuration``, with the gateway's limits."""

    issuer: str
    policy_decision_point: str
    access_evaluation_endpoint: str
    access_evaluations_endpoint: str
    max_evaluations: int = Field(description="the most evaluations one batch request may hold")
    max_request_bytes: int = Field(description="the largest request body accepted")
