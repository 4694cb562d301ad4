"""The register of processing activities (AVG art. 30) of the active policy version.

Open to every partner principal except operators (``PartnerCaller``): the register names
purposes, bases and categories, never a person, and is shared inside the partnership.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from gateway.api.deps import PartnerCaller, ReadSession
from gateway.policy.register_history import register_in_force
from gateway.schemas.register import ActivityOut, RegisterOut

router = APIRouter(prefix="/v1/register", tags=["register"])

ActivityRef = Annotated[
    str,
    Path(
        min_length=3,
        max_length=120,
        pattern=r"^[a-z0-9:-]+$",
        description="an activity id, or its URI urn:riec-gateway:verwerkingsactiviteit:<id>",
    ),
]


@router.get("/activities", summary="Every processing activity of the register in force")
def activities(_caller: PartnerCaller, session: ReadSession) -> RegisterOut:
    """Return the register of the active policy version."""
    version, register = register_in_force(session)
    assert version.id is not None
    return RegisterOut(
        policy_version_id=version.id,
        policy_version=version.policy_version,
        activities=[ActivityOut.of(a, version) for a in register.activities],
    )


@router.get("/activities/{activity_id}", summary="One processing activity, by id or URI")
def activity(activity_id: ActivityRef, _caller: PartnerCaller, session: ReadSession) -> ActivityOut:
    """Return the activity in force; 404 ``processing-activity-not-found`` if there is none."""
    version, register = register_in_force(session)
    return ActivityOut.of(register.get(activity_id), version)
