"""The pure Ridge Rider engine: curvature, eigensolvers, MIS, ridge following and search.

Nothing here does I/O or imports validation or service libraries; every function takes its
state and randomness explicitly, so a branch replays identically on any worker.
"""

from ridgerider.core.approx import (
    RidgeTrack,
    RidgeUpdate,
    approx_get_ridges,
    approx_update_ridge,
    start_track,
    track_from_direction,
)
from ridgerider.core.branch import Branch, Fingerprint, Node, child_seed, fingerprint_key
from ridgerider.core.curvature import (
    canonical_sign,
    dense_hessian,
    gradient,
    hvp,
    symmetric_eigh,
)
from ridgerider.core.eigensolver import EigenResult, bottom_eigenpairs
from ridgerider.core.expand import Expansion, expand
from ridgerider.core.frontier import MemoryFrontier
from ridgerider.core.hvp import HVPOperator, make_hvp
from ridgerider.core.lanczos import LanczosResult, lanczos_bottom
from ridgerider.core.mis import MISResult, find_mis, lowest_spectrum
from ridgerider.core.problem import Problem
from ridgerider.core.ridge import RideOutcome, Ridge, get_ridges, polish, ride
from ridgerider.core.search import SearchResult, coverage, root_branch, run_search
from ridgerider.core.settings import MISSettings, RRSettings

__all__ = [
    "Branch",
    "EigenResult",
    "Expansion",
    "Fingerprint",
    "HVPOperator",
    "LanczosResult",
    "MISResult",
    "MISSettings",
    "MemoryFrontier",
    "Node",
    "Problem",
    "RRSettings",
    "RideOutcome",
    "Ridge",
    "RidgeTrack",
    "RidgeUpdate",
    "SearchResult",
    "approx_get_ridges",
    "approx_update_ridge",
    "bottom_eigenpairs",
    "canonical_sign",
    "child_seed",
    "coverage",
    "dense_hessian",
    "expand",
    "find_mis",
    "fingerprint_key",
    "get_ridges",
    "gradient",
    "hvp",
    "lanczos_bottom",
    "lowest_spectrum",
    "make_hvp",
    "polish",
    "ride",
    "root_branch",
    "run_search",
    "start_track",
    "symmetric_eigh",
    "track_from_direction",
]
