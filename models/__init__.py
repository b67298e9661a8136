"""SQLModel tables only. Importing this package registers every table on ``SQLModel.metadata``."""

from models.account import Account, LoginThrottle, WebSession
from models.audit import Audit
from models.duty import Duty, Occurrence, PlanMark, Review, Waiver
from models.evidence import Evidence, EvidenceFile
from models.org import KINDERGARTEN_KINDS, SCHOOL_KINDS, Channel, OrgVersion, Person, PersonLink, Role, RoleKind, Unit, UnitKind
from models.outbox import Delivery, Escalation, Message, MessageStatus, Notice, NoticeKind
from models.hazard import Hazard, HazardEvent, HazardFile, PlatformUpload, RiskCheck, RiskPoint
from models.incident import Incident
from models.sensitive import SensitivePeriod
from models.watch import WatchPeriod, WatchReport, WatchRoster
from models.types import AwareDateTime

__all__ = [
    "Account", "Audit", "AwareDateTime", "Channel", "Delivery", "Duty", "Escalation", "Evidence", "EvidenceFile",
    "Hazard", "HazardEvent", "HazardFile", "Incident", "KINDERGARTEN_KINDS", "LoginThrottle", "Message", "MessageStatus",
    "Notice", "NoticeKind", "Occurrence", "OrgVersion", "Person", "PersonLink", "PlatformUpload", "Review", "RiskCheck", "RiskPoint",
    "PlanMark", "Role", "RoleKind", "SCHOOL_KINDS", "SensitivePeriod", "Unit", "UnitKind", "Waiver", "WebSession",
    "WatchPeriod", "WatchReport", "WatchRoster",
]
