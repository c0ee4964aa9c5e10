"""Getting a request to a worker: the arq queue, fair ordering, routing, worker heartbeats, the result cache."""

from core.jobs.cache import ResultCache
from core.jobs.fairness import FairScheduler
from core.jobs.queue import JobQueue, Submission
from core.jobs.routing import Router
from core.jobs.workers import WorkerInfo, WorkerRegistry

__all__ = ["FairScheduler", "JobQueue", "ResultCache", "Router", "Submission", "WorkerInfo", "WorkerRegistry"]
