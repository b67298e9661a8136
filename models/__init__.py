"""SQLModel tables only. Importing this package registers every table on ``SQLModel.metadata``."""

from models.audit import Audit
from models.duty import Duty, Occurrence, Review, Waiver
from models.evidence import Evidence, EvidenceFile
from models.org import KINDERGARTEN_KINDS, SCHOOL_KINDS, Channel, Person, Role, RoleKind, Unit, UnitKind
from models.outbox import Delivery, Escalation, Message, MessageStatus, Notice, NoticeKind
from models.sensitive import SensitivePeriod
from models.incident import Incident  # noqa: F401
from models.watch import WatchPeriod, WatchReport, WatchRoster  # noqa: F401
from models.hazard import Hazard, HazardEvent, HazardFile, PlatformUpload, RiskCheck, RiskPoint  # noqa: F401
from models.types import SHANGHAI, AwareDateTime, now

__all__ = [
    "Audit", "AwareDateTime", "Channel", "Delivery", "Duty", "Escalation", "Evidence", "EvidenceFile",
    "KINDERGARTEN_KINDS", "Message", "MessageStatus", "Notice", "NoticeKind", "Occurrence", "Person",
    "Review", "Role", "RoleKind", "SCHOOL_KINDS", "SensitivePeriod", "SHANGHAI", "Unit", "UnitKind", "Waiver", "now",
]
