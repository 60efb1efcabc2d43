"""Every model on the wire, shared by the API and the SDK.

Imports neither torch nor anything else of ridgerider (pydantic only), so the SDK installs and
imports without the engine. The names follow one pattern: ``XCreate`` and ``XExtend`` are
request bodies, ``XPublic`` is what the API answers, ``XsPublic`` a page of them.
"""

from ridgerider.schemas.common import (
    ID_MAX,
    RANK_MAX,
    SEED_MAX,
    Choice,
    CrossplayStatusText,
    JobStatusText,
    NodeStatusText,
)
from ridgerider.schemas.crossplay import (
    MAX_FINGERPRINTS,
    MAX_REPLICATES,
    CrossplayCreate,
    CrossplayPublic,
    CrossplayReportPublic,
    CrossplaysPublic,
)
from ridgerider.schemas.enums import CrossplayStatus, JobStatus, NodeStatus
from ridgerider.schemas.errors import ErrorItem, ErrorPublic
from ridgerider.schemas.jobs import (
    MAX_NAME,
    MAX_TAG,
    MAX_TAGS,
    MAX_WALL_S,
    TAG_PATTERN,
    JobCreate,
    JobExtend,
    JobPublic,
    JobsPublic,
    MisPublic,
)
from ridgerider.schemas.nodes import NodePublic, NodesPublic, NodeTracePublic, RidePublic
from ridgerider.schemas.problems import ProblemPublic
from ridgerider.schemas.settings import MAX_NODES, MAX_STEPS, SearchSettings
from ridgerider.schemas.tree import ChosenPublic, SolutionPublic, TreeCompactPublic, TreePublic

__all__ = [
    "ID_MAX",
    "MAX_FINGERPRINTS",
    "MAX_NAME",
    "MAX_NODES",
    "MAX_REPLICATES",
    "MAX_STEPS",
    "MAX_TAG",
    "MAX_TAGS",
    "MAX_WALL_S",
    "RANK_MAX",
    "SEED_MAX",
    "TAG_PATTERN",
    "Choice",
    "ChosenPublic",
    "CrossplayCreate",
    "CrossplayPublic",
    "CrossplayReportPublic",
    "CrossplayStatus",
    "CrossplayStatusText",
    "CrossplaysPublic",
    "ErrorItem",
    "ErrorPublic",
    "JobCreate",
    "JobExtend",
    "JobPublic",
    "JobStatus",
    "JobStatusText",
    "JobsPublic",
    "MisPublic",
    "NodePublic",
    "NodeStatus",
    "NodeStatusText",
    "NodeTracePublic",
    "NodesPublic",
    "ProblemPublic",
    "RidePublic",
    "SearchSettings",
    "SolutionPublic",
    "TreeCompactPublic",
    "TreePublic",
]
