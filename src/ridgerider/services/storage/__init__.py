"""The archive: users, tokens, jobs, nodes, solutions and events, in memory or in SQL."""

from ridgerider.services.storage.base import Storage
from ridgerider.services.storage.memory import InMemoryStorage
from ridgerider.services.storage.records import (
    EventRecord,
    JobRecord,
    JobSpec,
    NodeRecord,
    NodeResult,
    Page,
    RideProgress,
    RideRecord,
    SolutionRecord,
    TokenRecord,
    UserRecord,
)
from ridgerider.services.storage.session import Database
from ridgerider.services.storage.sql import SQLStorage

__all__ = [
    "Database",
    "EventRecord",
    "InMemoryStorage",
    "JobRecord",
    "JobSpec",
    "NodeRecord",
    "NodeResult",
    "Page",
    "RideProgress",
    "RideRecord",
    "SQLStorage",
    "SolutionRecord",
    "Storage",
    "TokenRecord",
    "UserRecord",
]
