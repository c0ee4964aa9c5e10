"""Getting results back to the front ends: the event streams, stored results, where each result was delivered."""

from core.delivery.delivery_log import DeliveryLog
from core.delivery.events import EventConsumer, EventPublisher
from core.delivery.result_store import ResultStore

__all__ = ["DeliveryLog", "EventConsumer", "EventPublisher", "ResultStore"]
