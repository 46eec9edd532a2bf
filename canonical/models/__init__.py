from .base import GoldenRecord, GoldenStatus
from .clients import ApiClient, IdempotencyKey
from .contracts import BillingSchedule, Contract, ContractType, RevenueTreatment
from .customers import Customer
from .domains import Domain
from .events import ChangeEvent, ChangeEventType
from .exceptions import DataException, ExceptionKind, ExceptionStatus
from .legal_entities import LegalEntity
from .match_keys import MatchKey
from .overrides import FieldOverride
from .ownership import OwnershipRule
from .projects import Project
from .rate_cards import RateCard
from .references import PendingReference
from .resources import Resource, WorkerType
from .sources import SourceRecord, SourceStatus
from .systems import System
from .xrefs import CrossReference

__all__ = [
    "ApiClient",
    "BillingSchedule",
    "ChangeEvent",
    "ChangeEventType",
    "Contract",
    "ContractType",
    "CrossReference",
    "Customer",
    "DataException",
    "Domain",
    "ExceptionKind",
    "ExceptionStatus",
    "FieldOverride",
    "GoldenRecord",
    "GoldenStatus",
    "IdempotencyKey",
    "LegalEntity",
    "MatchKey",
    "OwnershipRule",
    "PendingReference",
    "Project",
    "RateCard",
    "Resource",
    "RevenueTreatment",
    "SourceRecord",
    "SourceStatus",
    "System",
    "WorkerType",
]
