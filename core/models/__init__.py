"""What crosses process boundaries: requests, results, verdicts, the model catalog, privileges, ids, policies
and audit entries."""

from core.models.audit import AuditAction, AuditEntry
from core.models.catalog import BackendKind, ModelSpec, get_model, model_names
from core.models.ids import new_request_id
from core.models.policy import NsfwPolicy
from core.models.privileges import Privilege
from core.models.request import GenerationRequest, Mode, Platform, Requester
from core.models.result import EventKind, ResultEvent, StoredImage
from core.models.verdict import ImageModerator, PromptModerator, Verdict

__all__ = [
    "AuditAction",
    "AuditEntry",
    "BackendKind",
    "EventKind",
    "GenerationRequest",
    "ImageModerator",
    "Mode",
    "ModelSpec",
    "NsfwPolicy",
    "Platform",
    "Privilege",
    "PromptModerator",
    "Requester",
    "ResultEvent",
    "StoredImage",
    "Verdict",
    "get_model",
    "model_names",
    "new_request_id",
]
