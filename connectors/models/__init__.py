from .connections import Connection
from .cursors import SyncCursor
from .deals import DealCycle
from .deliveries import DeadLetter, Delivery, DeliveryStatus
from .feed import FeedEntry
from .files import ProcessedFile
from .reconciliation import OperationsDashboard, ReconciliationItem, ReconciliationRun, WorkerHeartbeat  # noqa: F401
from .runs import SyncRun, SyncRunStatus
from .webhooks import InboundWebhook, InboundWebhookStatus

__all__ = [
    "Connection",
    "DeadLetter",
    "DealCycle",
    "Delivery",
    "DeliveryStatus",
    "FeedEntry",
    "InboundWebhook",
    "InboundWebhookStatus",
    "ProcessedFile",
    "SyncCursor",
    "SyncRun",
    "SyncRunStatus",
]
