"""Ridge Rider as a zero-shot coordination scheme: replicates, fingerprints and cross-play.

The paper's decision scheme (§3): every party runs RR independently and explores the same
fingerprints, the top ``F`` eigen-indices at the MIS with both signs; for each fingerprint the
average cross-play between runs is computed, and the fingerprint with the highest average is
deployed. It needs no knowledge of the game's symmetries: a fingerprint that breaks a symmetry
arbitrarily lands on a different member of a class of equivalent policies in each run.

A replicate here is one exact-RR run that differs from the others only by its seed:

1. the MIS plus a seeded Gaussian perturbation (``perturbation``);
2. GetRidges at that point, with the basis inside every group of repeated eigenvalues redrawn
   by a seeded random rotation (``rotate_tol``): an eigensolver's basis inside a repeated
   eigenvalue is arbitrary, and this makes the arbitrariness explicit and seeded;
3. for each fingerprint ``(i, ±)``: the ride along ``±e_i`` (the engine's :func:`ride`), then
   the leaf finished by gradient descent (the paper's Fig. 1 does this), started a ``nudge``
   further along the ride's last direction so that it leaves a saddle the way the ride went.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, fields

import torch
from torch import Tensor

from ridgerider.core.branch import Choice, fingerprint_key
from ridgerider.core.curvature import canonical_sign, gradient, symmetric_eigh
from ridgerider.core.games import PairStats, TwoPlayerGame, cross_play_matrix, pair_stats
from ridgerider.core.mis import DENSE_LIMIT, MISResult, find_mis
from ridgerider.core.problem import Problem
from ridgerider.core.ridge import Ridge, negative_spectrum, ride
from ridgerider.core.settings import MISSettings, RRSettings

__all__ = [
    "FingerprintScore",
    "Leaf",
    "Replicate",
    "ReplicateSettings",
    "choose",
    "common_choices",
    "finish",
    "finish_replicates",
    "mis_ridges",
    "replicate_seed",
    "run_replicate",
    "score_fingerprints",
    "self_play_population",
]


@dataclass(frozen=True)
class ReplicateSettings:
    """How independent replicates differ and how their leaves are finished (all ours)."""

    perturbation: float = 1e-3
    """Standard deviation of the seeded Gaussian perturbation of the MIS."""
    rotate_tol: float = 1e-3
    """Eigenvalues at the MIS within this gap (relative to the spectral radius) form a repeated
    group whose basis is redrawn at random; ``0`` keeps the eigensolver's basis."""
    finish_steps: int = 1000
    """Gradient-descent steps that finish every leaf (and train every self-play agent)."""
    finish_lr: float = 3.0
    """Finishing step size; the default suits payoffs of order 1 (scale it down with them)."""
    nudge: float = 1e-3
    """The finish starts this far beyond the ride's end along its last direction."""

    def __post_init__(self) -> None:
        checks = [
            ("perturbation", 0 <= self.perturbation <= 1, "in [0, 1]"),
            ("rotate_tol", 0 <= self.rotate_tol < 1, "in [0, 1)"),
            ("finish_steps", 0 <= self.finish_steps <= 1_000_000, "in [0, 1000000]"),
            ("finish_lr", self.finish_lr > 0, "> 0"),
            ("nudge", 0 <= self.nudge <= 1, "in [0, 1]"),
        ]
        for name, ok, limit in checks:
            if not ok:
                raise ValueError(f"{name} must be {limit}, got {getattr(self, name)!r}")

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """Names of the settings (for validating user overrides)."""
        return tuple(f.name for f in fields(cls))


@dataclass
class Leaf:
    """Where one fingerprint led in one replicate."""

    choice: Choice
    eigenvalue: float
    """Eigenvalue of the ridge at the (perturbed) MIS."""
    theta: Tensor
    """The finished policy parameters."""
    ride_steps: int
    end_reason: str


@dataclass
class Replicate:
    """One independent RR run: its seed, its MIS and a leaf per fingerprint."""

    seed: int
    mis: MISResult
    leaves: list[Leaf]

    def by_choice(self) -> dict[Choice, Leaf]:
        """The leaves keyed by fingerprint."""
        return {leaf.choice: leaf for leaf in self.leaves}


def replicate_seed(master_seed: int, index: int) -> int:
    """Seed of replicate ``index``: a pure function of the master seed."""
    digest = hashlib.sha256(f"crossplay:{master_seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


def _random_rotation(k: int, generator: torch.Generator, dtype: torch.dtype) -> Tensor:
    """A Haar-distributed ``k × k`` orthogonal matrix (QR of a Gaussian, signs fixed)."""
    q, r = torch.linalg.qr(torch.randn(k, k, generator=generator, dtype=dtype))
    return q * torch.sign(torch.diagonal(r)).clamp_min(0).mul(2).sub(1)


def mis_ridges(
    problem: Problem,
    theta: Tensor,
    n_indices: int,
    zero_tol: float,
    rotate_tol: float,
    generator: torch.Generator,
) -> tuple[list[Ridge], Tensor]:
    """GetRidges at the MIS: the ``n_indices`` most negative eigenpairs, both signs.

    Inside every run of negative eigenvalues that agree to ``rotate_tol`` (relative to the
    spectral radius) the eigenvectors are rotated by a seeded random orthogonal matrix before
    the canonical sign is applied. Returns the ridges (index ascending, ``+`` first) and the
    ascending spectrum.
    """
    values, vectors = symmetric_eigh(problem.hessian(theta))
    idx = negative_spectrum(values, zero_tol).tolist()
    if rotate_tol > 0 and idx:
        scale = max(float(values.abs().max()), 1e-300)
        groups: list[list[int]] = [[idx[0]]]
        for i in idx[1:]:
            if abs(float(values[i] - values[groups[-1][-1]])) <= rotate_tol * scale:
                groups[-1].append(i)
            else:
                groups.append([i])
        for group in groups:
            if len(group) > 1:
                q = _random_rotation(len(group), generator, vectors.dtype)
                vectors[:, group] = canonical_sign(vectors[:, group] @ q)
    ridges = [
        Ridge((i, sign), sign * vectors[:, i], float(values[i]))
        for i in idx[:n_indices]
        for sign in (1, -1)
    ]
    return ridges, values


def finish(problem: Problem, thetas: Tensor, steps: int, lr: float) -> Tensor:
    """Gradient descent on every row of ``thetas`` ``[B, n]`` for ``steps`` steps, batched.

    A fixed step count rather than a gradient tolerance: a leaf may start next to a saddle,
    where the gradient is small long before descent has left it.
    """
    x = thetas.detach().clone()
    if steps == 0 or x.shape[0] == 0:
        return x
    losses = torch.func.vmap(problem.loss)
    try:
        losses(x[:1])
    except (RuntimeError, NotImplementedError, ValueError):
        # Losses vmap cannot batch (data-dependent control flow): one row at a time.
        def losses(rows: Tensor) -> Tensor:
            return torch.stack([problem.loss(r) for r in rows])

    def batched(rows: Tensor) -> Tensor:
        y = rows.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(losses(y).sum(), y)
        return g

    for _ in range(steps):
        x = x - lr * batched(x)
    return x


def run_replicate(
    problem: Problem,
    settings: RRSettings,
    replicate: ReplicateSettings,
    n_indices: int,
    seed: int,
    mis: MISResult | None = None,
    finish_leaves: bool = True,
) -> Replicate:
    """One independent RR run exploring the fingerprints of the top ``n_indices`` ridges.

    ``mis`` (the unperturbed saddle) may be passed to save finding it again; the seeded
    perturbation is applied either way. With ``finish_leaves=False`` the leaves hold the
    nudged ride ends, for :func:`finish_replicates` to finish many replicates in one batch.
    """
    if problem.n_params > DENSE_LIMIT:
        raise ValueError(
            f"cross-play uses exact RR: at most {DENSE_LIMIT} parameters, got {problem.n_params}"
        )
    generator = torch.Generator().manual_seed(seed)
    if mis is None:
        mis = find_mis(problem, MISSettings(), generator, settings.zero_tol)
    theta0 = mis.theta
    if replicate.perturbation > 0:
        noise = torch.randn(theta0.numel(), generator=generator, dtype=theta0.dtype)
        theta0 = theta0 + replicate.perturbation * noise
    ridges, _ = mis_ridges(
        problem, theta0, n_indices, settings.zero_tol, replicate.rotate_tol, generator
    )
    ends, meta = [], []
    for r in ridges:
        out = ride(
            problem.loss, theta0, r.direction, r.eigenvalue, settings, hessian_fn=problem.hessian
        )
        ends.append(out.theta - replicate.nudge * out.direction)
        meta.append((r, out.steps, out.end_reason))
    stacked = torch.stack(ends) if ends else theta0.new_zeros(0, theta0.numel())
    steps = replicate.finish_steps if finish_leaves else 0
    finished = finish(problem, stacked, steps, replicate.finish_lr)
    leaves = [
        Leaf(r.choice, r.eigenvalue, finished[k], steps, reason)
        for k, (r, steps, reason) in enumerate(meta)
    ]
    start = MISResult(
        theta=theta0,
        loss=float(problem.loss(theta0)),
        grad_norm=float(gradient(problem.loss, theta0).norm()),
        negative_eigenvalues=mis.negative_eigenvalues,
        spectrum=mis.spectrum,
        method=mis.method,
        iterations=mis.iterations,
    )
    return Replicate(seed, start, leaves)


def finish_replicates(
    problem: Problem, replicates: Sequence[Replicate], replicate: ReplicateSettings
) -> None:
    """Finish the leaves of replicates run with ``finish_leaves=False``, all in one batch."""
    leaves = [leaf for r in replicates for leaf in r.leaves]
    if not leaves:
        return
    done = finish(
        problem,
        torch.stack([leaf.theta for leaf in leaves]),
        replicate.finish_steps,
        replicate.finish_lr,
    )
    for leaf, theta in zip(leaves, done, strict=True):
        leaf.theta = theta


def self_play_population(
    problem: Problem, count: int, seed: int, replicate: ReplicateSettings
) -> Tensor:
    """``count`` independent self-play agents: gradient descent from random initialisations."""
    generator = torch.Generator().manual_seed(seed)
    starts = torch.stack([problem.random_init(generator) for _ in range(count)])
    return finish(problem, starts, replicate.finish_steps, replicate.finish_lr)


@dataclass
class FingerprintScore:
    """Cross-play of one fingerprint across replicates."""

    choice: Choice
    stats: PairStats
    matrix: Tensor
    """``R × R`` returns: player 1 of replicate ``i`` with player 2 of replicate ``j``."""

    @property
    def key(self) -> str:
        """Text form, e.g. ``"0-"``."""
        return fingerprint_key((self.choice,))


def common_choices(replicates: Sequence[Replicate]) -> list[Choice]:
    """The fingerprints every replicate explored, in exploration order."""
    if not replicates:
        return []
    shared = set.intersection(*(set(r.by_choice()) for r in replicates))
    return [leaf.choice for leaf in replicates[0].leaves if leaf.choice in shared]


def score_fingerprints(
    game: TwoPlayerGame, replicates: Sequence[Replicate]
) -> list[FingerprintScore]:
    """Cross-play and self-play of every fingerprint the replicates share."""
    scores = []
    maps = [r.by_choice() for r in replicates]
    for choice in common_choices(replicates):
        thetas = [m[choice].theta for m in maps]
        matrix = cross_play_matrix(game, thetas, thetas)
        scores.append(FingerprintScore(choice, pair_stats(matrix), matrix))
    return scores


def choose(scores: Sequence[FingerprintScore], by: str = "xp") -> int:
    """Index of the best fingerprint by ``xp`` (the scheme) or ``sp`` (self-play's choice).

    Ties go to the earlier fingerprint (the lower eigen-index), so the choice is reproducible.
    """
    if not scores:
        raise ValueError("no fingerprint to choose from")
    values = [getattr(s.stats, by) for s in scores]
    best = max(range(len(values)), key=lambda k: (values[k], -k))
    return best
