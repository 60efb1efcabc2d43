"""Frontiers: durable queues of branches in the job's search order, with leases."""

from ridgerider.services.frontier.base import Frontier, Lease, default_worker_id
from ridgerider.services.frontier.database import DatabaseFrontier
from ridgerider.services.frontier.memory import MemoryFrontier

__all__ = ["DatabaseFrontier", "Frontier", "Lease", "MemoryFrontier", "default_worker_id"]
