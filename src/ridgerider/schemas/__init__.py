"""Every model on the wire, shared by the API and the SDK.

Imports neither torch nor anything else of ridgerider (pydantic only), so the SDK installs and
imports without the engine.
"""

from ridgerider.schemas.enums import CrossplayStatus, JobStatus, NodeStatus

__all__ = ["CrossplayStatus", "JobStatus", "NodeStatus"]
