"""Public shapes of the register of processing activities (AVG art. 30)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from gateway.models.policy_versions import PolicyVersion
from gateway.policy.register import Activity


class Art6GroundOut(BaseModel):
    """An AVG art. 6(1) ground (or ``niet-avg``) with its DPV legal-basis concept."""

    ground: str
    dpv: str | None = Field(description="https://w3id.org/dpv# concept, none outside the AVG")


class ActivityOut(BaseModel):
    """One processing activity with its art. 30 fields."""

    id: str
    uri: str = Field(description="the stable URI log lines name as processing_activity_id")
    version: int
    name: str
    description: str
    events: list[str]
    purposes: list[str]
    legal_bases: list[str]
    art6: list[Art6GroundOut]
    safeguards: list[str]
    controller: str
    joint_controllers: list[str]
    data_subjects: list[str]
    personal_data: list[str]
    recipients: list[str]
    transfers: str
    retention: str
    security: str
    policy_version_id: int = Field(description="the stored policy version holding it")

    @classmethod
    def of(cls, activity: Activity, version: PolicyVersion) -> ActivityOut:
        """Return the public shape of ``activity`` of the stored ``version``."""
        assert version.id is not None
        return cls.model_validate({**activity.public(), "policy_version_id": version.id})


class RegisterOut(BaseModel):
    """The register in force: the active policy version and every activity."""

    policy_version_id: int
    policy_version: str
    activities: list[ActivityOut]
