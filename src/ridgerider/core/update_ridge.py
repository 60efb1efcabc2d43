"""Exact UpdateRidge: re-identify the followed ridge in the spectrum at a new point.

Shared by the one-branch ride (:func:`~ridgerider.core.ridge.ride`) and the batched one
(:func:`~ridgerider.core.batched.ride_batched`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ridgerider.core.curvature import symmetric_eigh
from ridgerider.core.settings import RRSettings

HessianFn = Callable[[Tensor], Tensor]

__all__ = ["HessianFn", "cluster", "continuation", "projection", "update_exact"]


def update_exact(
    hessian_fn: HessianFn, theta: Tensor, e_prev: Tensor, settings: RRSettings
) -> tuple[Tensor, float, float, int]:
    """Exact UpdateRidge: the eigenvector of largest |overlap| with ``e_prev``, sign-aligned.

    Near-degenerate eigenvalues make single eigenvectors ill-defined: after a step out of a
    symmetric point, a repeated eigenvalue splits and its eigenvectors rotate by O(1) however
    small the step, so a single-vector overlap never reaches the threshold. The continuation of
    the ridge is then the projection of ``e_prev`` onto the eigenvectors whose eigenvalues lie
    within ``cluster_tol`` (relative to the spectral radius) of the best match, taken in order
    of overlap until the threshold is met; its overlap is the projection's norm and its
    eigenvalue the Rayleigh quotient. Without a cluster this is the paper's rule exactly.

    Returns the new direction, its eigenvalue, the overlap and the spectral rank of the best
    match. The eigenvectors' signs do not matter here (see :func:`continuation`), so they are
    not made canonical.
    """
    values, vectors = symmetric_eigh(hessian_fn(theta), signed=False)
    return continuation(values, vectors, e_prev, settings)


def continuation(
    values: Tensor, vectors: Tensor, e_prev: Tensor, settings: RRSettings
) -> tuple[Tensor, float, float, int]:
    """Exact UpdateRidge from a spectrum (see :func:`update_exact`), shared with batched RR.

    Returns the direction, eigenvalue, overlap and the spectral rank of the best match. The
    result has the same bits whatever the signs of ``vectors``' columns: a flipped column flips
    its overlap exactly (IEEE negation), the choice reads |overlap|, a single eigenvector is
    signed by its overlap, and a cluster's projection sums ``v · (vᵀe)`` terms. (An overlap of
    exactly 0 is never accepted: it is under every ``overlap_threshold``.)
    """
    overlaps = vectors.T @ e_prev
    order = torch.argsort(overlaps.abs(), descending=True).tolist()
    ov, vals = overlaps.tolist(), values.tolist()
    members, mass = cluster(order, ov, vals, float(values.abs().max()), settings)
    i = members[0]
    if len(members) > 1:
        return projection(values, vectors, overlaps, members, mass)
    return vectors[:, i] * (1.0 if ov[i] >= 0 else -1.0), vals[i], abs(ov[i]), i


def cluster(
    order: list[int], ov: list[float], vals: list[float], top: float, settings: RRSettings
) -> tuple[list[int], float]:
    """The eigenvectors the ridge continues on, best match first, and their overlap mass.

    ``order`` ranks the eigenvectors by |overlap| (``ov``) with the previous ridge; ``vals``
    are their eigenvalues and ``top`` the spectral radius. After the best match come those
    whose eigenvalues lie within ``cluster_tol · top`` of it, until the mass reaches the
    threshold. (Python floats: the same numbers as the tensors', one list per spectrum.)
    """
    i = order[0]
    tol = settings.cluster_tol * max(top, 1e-300)
    members = [i]
    mass = ov[i] ** 2
    target = settings.overlap_threshold**2
    for j in order[1:]:
        if mass >= target or ov[j] ** 2 < 1e-12:
            break
        if abs(vals[j] - vals[i]) <= tol:
            members.append(j)
            mass += ov[j] ** 2
    return members, mass


def projection(
    values: Tensor, vectors: Tensor, overlaps: Tensor, members: list[int], mass: float
) -> tuple[Tensor, float, float, int]:
    """The previous ridge projected on a cluster's eigenvectors.

    Returns the direction, its Rayleigh quotient, the overlap (the projection's norm) and the
    best match's rank.
    """
    idx = torch.tensor(members)
    coef = overlaps[idx]
    e = vectors[:, idx] @ coef
    e = e / e.norm()
    lam = float((coef**2 * values[idx]).sum() / (coef**2).sum())
    return e, lam, mass**0.5, members[0]
