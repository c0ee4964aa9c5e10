"""Who may do what, and how much: admission, quotas, bans, community policy, preferences, audit, admin commands."""

from core.governance.admin import AdminReply, AdminService
from core.governance.admission import Admission
from core.governance.audit import AuditLog
from core.governance.quotas import QuotaService, owner_id

__all__ = ["AdminReply", "AdminService", "Admission", "AuditLog", "QuotaService", "owner_id"]
