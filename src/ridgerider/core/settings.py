"""Hyperparameters of a Ridge Rider search, kept apart from any state (optax style)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

from ridgerider.core.device import check_device
from ridgerider.core.errors import SettingsError

__all__ = [
    "APPROX_UPDATES",
    "METHODS",
    "ORDERS",
    "RIDGE_RULES",
    "SIGNS",
    "STEP_RULES",
    "UPDATES",
    "MISSettings",
    "RRSettings",
    "SettingsError",
]

ORDERS = ("bfs", "dfs", "priority", "random")
METHODS = ("exact", "approx", "ood")
APPROX_UPDATES = ("rayleigh_ritz", "paper")
UPDATES = ("exact", "fixed")
RIDGE_RULES = ("eigen", "random_ascent")
SIGNS = ("both", "descent")
STEP_RULES = ("backtrack", "fixed")


@dataclass(frozen=True)
class MISSettings:
    """How the maximally invariant saddle is found.

    The objective is ``‖∇L(θ)‖² − β·I(θ)`` with ``I`` the problem's invariance term (entropy for
    RL and games), minimised by L-BFGS with a strong-Wolfe line search from the problem's
    invariant start, then polished by Newton steps on ``∇L = 0`` restricted to directions of
    non-negligible curvature when ``newton_steps > 0``.
    """

    beta: float | None = None
    """Weight of the invariance term; ``None`` takes the problem's ``mis_beta``."""
    max_iter: int = 500
    tol: float = 1e-12
    perturbation: float = 0.0
    """Standard deviation of a seeded Gaussian perturbation added to the MIS (replicates)."""
    use_analytic: bool = True
    """Use the problem's closed-form MIS when it has one."""


@dataclass(frozen=True)
class RRSettings:
    """Settings of one Ridge Rider search. Every field has a documented default.

    The defaults follow the paper's tree experiment where it states them (overlap threshold
    0.95, the N = 6 most negative eigenpairs); unpublished choices are marked as ours.
    """

    method: Literal["exact", "approx", "ood"] = "exact"
    """``exact``: dense Hessian and ``eigh`` every step. ``approx``: Hessian-vector products only
    (``core.approx``): GetRidges by the block eigensolver, UpdateRidge by ``approx_update``.
    ``ood``: the paper's out-of-distribution extension (``core.ood``) on problems with training
    environments and a head; it uses the ``ood_*`` settings (and ``zero_tol``, ``max_depth``,
    the budgets, ``polish_*``) and ignores the other ride settings."""
    approx_update: Literal["rayleigh_ritz", "paper"] = "rayleigh_ritz"
    """Approximate UpdateRidge: warm Rayleigh–Ritz on a tracked block, or the paper's gradient
    steps on ‖(1/λ)He − e‖² (see ``core.approx``)."""
    approx_tol: float = 1e-4
    """Approximate RR: eigen-residual tolerance relative to ‖H‖."""
    approx_steps: int = 20
    """``approx_update="paper"``: gradient steps on (e, λ) per ride step (the paper's MNIST run
    takes one)."""
    approx_lr_e: float = 0.0
    """``approx_update="paper"``: step size for e; 0 takes the scale-free default of
    ``core.approx`` (``½·λ²/(‖H‖ + |λ|)²``)."""
    approx_lr_lambda: float = 0.0
    """``approx_update="paper"``: step size for λ; 0 takes ``¼·λ²``."""
    order: Literal["bfs", "dfs", "priority", "random"] = "bfs"
    n_ridges: int = 6
    """GetRidges: how many of the most negative eigenpairs (or groups) to branch on."""
    one_per_group: bool = False
    """GetRidges: explore one eigenvector per group of repeated eigenvalues."""
    repeat_tol: float = 1e-6
    """Relative gap (to the spectral radius) under which eigenvalues count as repeated."""
    zero_tol: float = 1e-6
    """Eigenvalues above ``-zero_tol`` count as non-negative (filters symmetry zeros)."""
    step_rule: Literal["backtrack", "fixed"] = "backtrack"
    """``backtrack`` (ours): each ride step halves α until the loss falls and the ridge keeps
    its overlap; EndRide on overlap, on lack of progress, on convexity and at the step cap.
    ``fixed``: every step is exactly ``alpha`` and is always taken, with no overlap or progress
    test (the paper's MNIST regime: thousands of small steps along one ridge); the ride ends at
    ``max_ride_steps``, on convexity when ``end_on_convex``, or when the loss stops being
    finite (``diverged``)."""
    alpha: float = 1.0
    """Largest step size tried by the backtracking line search (ours); the step of ``fixed``."""
    alpha_min: float = 1e-6
    """Backtracking gives up (the ride ends) below this step size (ours)."""
    overlap_threshold: float = 0.95
    """EndRide: ⟨e_new, e_prev⟩ must stay at or above this (paper: 0.95)."""
    end_on_convex: bool = True
    """EndRide: stop once the followed eigenvalue is no longer below ``-zero_tol``. The paper's
    tree experiment ends rides only on overlap and on lack of progress (set ``False``)."""
    max_ride_steps: int = 2000
    """EndRide: cap on steps of one ride (ours)."""
    min_progress: float = 1e-12
    """EndRide: a step must lower the loss by more than this, relative to ``1 + |L|`` (ours)."""
    signs: Literal["both", "descent"] = "both"
    """GetRidges: ``both`` signs of every ridge (the paper), or ``descent``: drop the sign whose
    first step goes uphill to first order, keeping both only where |⟨∇L, e⟩| ≤ ``grad_tol``
    (at a saddle both signs descend; elsewhere one of them climbs and usually stalls)."""
    grad_tol: float = 1e-6
    cluster_tol: float = 1e-2
    """UpdateRidge: eigenvalues this close (relative to the spectral radius) form a cluster
    inside which the ridge is followed by projection (ours; see ``update_ridge.update_exact``)."""
    update: Literal["exact", "fixed"] = "exact"
    """UpdateRidge: ``exact`` re-identifies the eigenvector; ``fixed`` is the paper's ablation."""
    ridge_rule: Literal["eigen", "random_ascent"] = "eigen"
    """GetRidges: Hessian eigenvectors, or random ascent directions (the paper's ablation)."""
    hvp_batch: int = 0
    """Curvature from minibatches (ours; the paper's MNIST run uses batches of 2,236): when
    ``> 0``, the Hessian products (or dense Hessians) of GetRidges and UpdateRidge are those of
    the mean loss over ``hvp_batch`` training examples, drawn without replacement by a generator
    seeded from the branch's seed and the ride step (``core.minibatch``), so a branch gives the
    same node on every worker. The loss a ride records, its acceptance tests, the metrics and the
    leaf polish stay full-batch. A batch at least the training set's size is the full batch.
    ``0``: full batch. Problems whose loss is no mean over examples refuse values ``> 0``."""
    polish_steps: int = 0
    """Gradient-descent steps at leaves (the paper's Fig. 1 finishes leaves this way)."""
    polish_lr: float = 0.1
    max_depth: int | None = 32
    """Nodes at this depth are leaves (``0``: the MIS itself is one). ``None``: no depth limit,
    the budgets (``max_nodes``, ``max_steps``) end the search (the paper's tree experiment)."""
    max_nodes: int = 1000
    """Budget: expanded nodes, the MIS included."""
    max_steps: int = 100_000
    """Budget: total ride steps; no new branch starts once it is spent."""
    ood_ridges: int = 4
    """``ood`` GetRidges: the most negative mean-head-Hessian eigenvectors branched on, each with
    both signs (ours: 8 rides of at most 9 RR steps keep one search under a minute on
    colored-digits, 19–49 s measured on one CPU thread)."""
    ood_depth: int = 1
    """``ood``: nodes at this depth are solution leaves (ours: one ride from the MIS, as the
    paper's one reported ride of nine steps; ``max_depth`` still caps it)."""
    ood_ride_steps: int = 9
    """``ood`` EndRide: RR steps of one ride (the paper: "a high after nine steps")."""
    ood_inner_steps: int = 5
    """``ood``: Adam steps on L1 + L2 over ``(θ_f, e_r)`` before each RR step (the paper's n)."""
    ood_alpha: float = 0.5
    """``ood``: RR step ``θ_r ← θ_r − α·ê`` along the unit direction (ours)."""
    ood_lr: float = 1e-3
    """``ood``: Adam step size for the features ``θ_f`` (ours; Adam's common default)."""
    ood_lr_e: float = 0.05
    """``ood``: Adam step size for ``e_r`` (ours; ``e_r`` is a unit vector in a few hundred
    dimensions, so a step of 0.05 per coordinate turns it substantially in tens of steps)."""
    ood_probes: int = 8
    """``ood``: random unit vectors ``u`` averaged in L2 per step (ours)."""
    ood_refine_steps: int = 50
    """``ood`` GetRidges: Adam steps on the ``e_r`` terms of L1 refining each eigenvector (ours)."""
    ood_beta1: float = 1.0
    """``ood`` L1: weight of the correlation ``C(H_i e, e)`` (reward)."""
    ood_beta2: float = 1.0
    """``ood`` L1: weight of the curvature ``eᵀH_i e`` (reward for negative curvature)."""
    ood_beta3: float = 1.0
    """``ood`` L1: weight of each environment's loss."""
    ood_beta4: float = 1.0
    """``ood`` L1: weight of the eigenvalue difference ``|eᵀ(H_1 − H_2)e|``."""
    ood_beta5: float = 1.0
    """``ood`` L2: weight of the Hessian-consistency term."""
    ood_mis_steps: int = 100
    """``ood`` MIS: Adam steps on L1 + L2 per try (ours)."""
    ood_mis_loss: float = 0.6
    """``ood`` MIS: a try succeeds when the mean training loss (at its last Adam step) is at most
    this (ours: clearly under the chance level ln 2 ≈ 0.693 of a two-class problem)."""
    ood_mis_tries: int = 3
    """``ood`` MIS: tries in all (the first from the problem's start, then resampled networks);
    the lowest-loss try is kept when none succeeds."""
    device: str = "cpu"
    """Where branches are computed: ``cpu``, ``cuda`` or ``cuda:N`` (``core.device``). Tensors
    move to it once per branch; results come back to the CPU. CUDA must be available."""

    def __post_init__(self) -> None:
        checks: list[tuple[str, bool, str]] = [
            ("method", self.method in METHODS, f"one of {METHODS}"),
            ("approx_update", self.approx_update in APPROX_UPDATES, f"one of {APPROX_UPDATES}"),
            ("approx_tol", 0 < self.approx_tol < 1, "in (0, 1)"),
            ("approx_steps", 0 <= self.approx_steps <= 10_000, "in [0, 10000]"),
            ("approx_lr_e", self.approx_lr_e >= 0, ">= 0"),
            ("approx_lr_lambda", self.approx_lr_lambda >= 0, ">= 0"),
            ("step_rule", self.step_rule in STEP_RULES, f"one of {STEP_RULES}"),
            ("order", self.order in ORDERS, f"one of {ORDERS}"),
            ("update", self.update in UPDATES, f"one of {UPDATES}"),
            ("ridge_rule", self.ridge_rule in RIDGE_RULES, f"one of {RIDGE_RULES}"),
            ("n_ridges", 1 <= self.n_ridges <= 4096, "in [1, 4096]"),
            ("alpha", self.alpha > 0, "> 0"),
            ("alpha_min", 0 < self.alpha_min <= self.alpha, "in (0, alpha]"),
            ("overlap_threshold", 0 < self.overlap_threshold <= 1, "in (0, 1]"),
            ("max_ride_steps", self.max_ride_steps >= 1, ">= 1"),
            ("zero_tol", self.zero_tol >= 0, ">= 0"),
            ("repeat_tol", self.repeat_tol >= 0, ">= 0"),
            ("cluster_tol", 0 <= self.cluster_tol < 1, "in [0, 1)"),
            ("signs", self.signs in SIGNS, f"one of {SIGNS}"),
            ("grad_tol", self.grad_tol >= 0, ">= 0"),
            ("min_progress", self.min_progress >= 0, ">= 0"),
            ("hvp_batch", self.hvp_batch >= 0, ">= 0"),
            ("polish_steps", self.polish_steps >= 0, ">= 0"),
            ("polish_lr", self.polish_lr > 0, "> 0"),
            ("max_depth", self.max_depth is None or self.max_depth >= 0, ">= 0 or None"),
            ("max_nodes", self.max_nodes >= 1, ">= 1"),
            ("max_steps", self.max_steps >= 0, ">= 0"),
            ("ood_ridges", 1 <= self.ood_ridges <= 4096, "in [1, 4096]"),
            ("ood_depth", 0 <= self.ood_depth <= 1024, "in [0, 1024]"),
            ("ood_ride_steps", 1 <= self.ood_ride_steps <= 100_000, "in [1, 100000]"),
            ("ood_inner_steps", 0 <= self.ood_inner_steps <= 100_000, "in [0, 100000]"),
            ("ood_alpha", 0 < self.ood_alpha <= 1e6, "in (0, 1e6]"),
            ("ood_lr", 0 < self.ood_lr <= 1e3, "in (0, 1000]"),
            ("ood_lr_e", 0 < self.ood_lr_e <= 1e3, "in (0, 1000]"),
            ("ood_probes", 0 <= self.ood_probes <= 4096, "in [0, 4096]"),
            ("ood_refine_steps", 0 <= self.ood_refine_steps <= 100_000, "in [0, 100000]"),
            *(
                (f"ood_beta{i}", 0 <= getattr(self, f"ood_beta{i}") <= 1e6, "in [0, 1e6]")
                for i in range(1, 6)
            ),
            ("ood_mis_steps", 0 <= self.ood_mis_steps <= 100_000, "in [0, 100000]"),
            ("ood_mis_loss", 0 < self.ood_mis_loss <= 1e6, "in (0, 1e6]"),
            ("ood_mis_tries", 1 <= self.ood_mis_tries <= 100, "in [1, 100]"),
        ]
        for name, ok, limit in checks:
            if not ok:
                raise SettingsError(name, f"{name} must be {limit}, got {getattr(self, name)!r}")
        check_device(self.device)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (for JSON and storage)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RRSettings:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError`` naming the key."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SettingsError(unknown[0], f"unknown setting {unknown[0]!r}")
        return cls(**data)

    def with_(self, **changes: Any) -> RRSettings:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    def rides_together(self) -> bool:
        """Whether these settings let ``core.expand_batched`` ride branches together.

        Exact, backtracking, ``update="exact"`` rides on CPU; the problem must allow it too
        (``expand_batched.batchable``).
        """
        return (
            self.device == "cpu"
            and self.method == "exact"
            and self.step_rule == "backtrack"
            and self.update == "exact"
            and self.hvp_batch == 0
        )
