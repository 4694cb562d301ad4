"""SQLModel tables, one module per aggregate. Importing this package registers them all."""

from gateway.models.audit import (
    AuditCheckpoint,
    AuditCosignature,
    AuditDetail,
    AuditEntry,
    AuditNode,
    AuditParty,
    AuditPending,
    AuditSubject,
    AuditTreeHead,
)
from gateway.models.cases import (
    Case,
    CaseOutput,
    CaseParticipant,
    CaseSubject,
    CaseTransition,
    Holding,
    Record,
    RecordSubject,
)
from gateway.models.logboek import LogboekEndpoint, LogboekOutboxRow
from gateway.models.oidc import OAuthAssertionUse, OAuthClientKey, OidcPerson, OidcProvider
from gateway.models.partners import ApiToken, EnrolmentCode, Partner, Principal
from gateway.models.policy import PolicyDecisionRecord
from gateway.models.policy_versions import PolicyActive, PolicyProposal, PolicyVersion
from gateway.models.research import (
    ResearchBatch,
    ResearchConsent,
    ResearchGeneralisation,
    ResearchRecipient,
    ResearchRelease,
    ResearchRow,
    ResearchWithdrawal,
)
from gateway.models.web_sessions import WorkbenchSession

__all__ = [
    "ApiToken",
    "AuditCheckpoint",
    "AuditCosignature",
    "AuditDetail",
    "AuditEntry",
    "AuditNode",
    "AuditParty",
    "AuditPending",
    "AuditSubject",
    "AuditTreeHead",
    "Case",
    "CaseOutput",
    "CaseParticipant",
    "CaseSubject",
    "CaseTransition",
    "EnrolmentCode",
    "Holding",
    "LogboekEndpoint",
    "LogboekOutboxRow",
    "OAuthAssertionUse",
    "OAuthClientKey",
    "OidcPerson",
    "OidcProvider",
    "Partner",
    "PolicyActive",
    "PolicyDecisionRecord",
    "PolicyProposal",
    "PolicyVersion",
    "Principal",
    "Record",
    "RecordSubject",
    "ResearchBatch",
    "ResearchConsent",
    "ResearchGeneralisation",
    "ResearchRecipient",
    "ResearchRelease",
    "ResearchRow",
    "ResearchWithdrawal",
    "WorkbenchSession",
]
