"""Probes: the check that no eigenvalue below the ``k``-th was missed.

Part of :func:`~ridgerider.core.eigensolver.bottom_eigenpairs`. A Krylov space grown from one
vector holds one vector of each eigenspace: an exactly repeated eigenvalue shows up once, every
residual test passes and the missing copies displace nothing the solver can see. A *probe*
looks for them. It starts from a fresh random vector orthogonal to the basis ``V`` and runs
Lanczos on the deflated operator ``B = (I − VᵀV) A (I − VᵀV)`` (extending by the image of its
last vector, orthogonalised against everything): the missing copies are eigenvectors of ``B``
(they are orthogonal to ``V``), and a random start vector has an ordinary component on each of
them. After each product the probe decides:

``found``
    Its lowest Ritz value ``θ₁`` is below ``a = μ_k − threshold``. Ritz values bound the
    spectrum from above, so ``B`` has an eigenvalue below ``a``: something was missed, and the
    solver converges it (the ``k`` lowest Ritz pairs of ``V`` plus the probe change).
``clear``
    Either the probe's spectral measure has at most :func:`mass_limit` below ``a`` (the bound
    :func:`mass_below` is the Christoffel function of the probe's tridiagonal matrix at ``a``),
    so a missing eigenvector would have had a component that small in a random start vector
    (probability at most :data:`MISS_PROBABILITY`); or the probe's lowest Ritz pair converged
    at or above ``a`` (a further copy of the ``k``-th value, or the bottom of ``B`` sits there).
``out``
    The product budget ran out first.

Deflating against the whole basis (not just the ``k`` wanted vectors) keeps the probe cheap:
``V`` already resolves the lower spectrum, so ``B``'s spectrum starts well above the missing
copies and the Christoffel bound falls geometrically.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from ridgerider.core.eigen_basis import TINY, KrylovBasis, MatVec, apply_rows, random_rows

__all__ = ["MISS_PROBABILITY", "ProbeResult", "mass_below", "mass_limit", "probe"]

MISS_PROBABILITY = 1e-3
"""A probe clears when a missing eigenvector would have had to be this unlikely (its squared
component in a uniformly random start vector small enough)."""


@dataclass(frozen=True)
class ProbeResult:
    """How a probe ended and the products it used."""

    kind: Literal["found", "clear", "out"]
    used: int


def probe(
    matvec: MatVec,
    basis: KrylovBasis,
    k: int,
    thresh: float,
    budget: int,
    generator: torch.Generator | None,
) -> ProbeResult:
    """Look for an eigenvalue below the ``k``-th Ritz value that the basis misses (module doc).

    The probe's rows stay in ``basis``, so the solver's next Rayleigh–Ritz sees what it found.
    """
    mu, _ = basis.ritz()
    a = float(mu[min(k, mu.numel()) - 1]) - thresh
    start = basis.m
    if not _add_fresh_row(matvec, basis, generator, budget):
        return ProbeResult("clear" if basis.m >= basis.n else "out", 0)
    limit = mass_limit(basis.n - start)
    used = 1
    while True:
        verdict = _verdict(basis, start, a, thresh, limit)
        if verdict is not None:
            return ProbeResult(verdict, used)
        if used >= budget:
            return ProbeResult("out", used)
        if not basis.extend_by_last_image(matvec):
            return ProbeResult("clear", used)  # B-invariant: the probe's measure is exact
        used += 1


def _add_fresh_row(
    matvec: MatVec, basis: KrylovBasis, generator: torch.Generator | None, budget: int
) -> bool:
    """Start a probe: a random row orthogonal to the basis, with its image (one product)."""
    if budget <= 0 or basis.m >= basis.n:
        return False
    w = basis.orthonormalise(random_rows(basis.n, 1, generator, basis.dtype)[None])
    if w.shape[0] == 0:
        return False
    basis.add(w, apply_rows(matvec, w))
    return True


def _verdict(
    basis: KrylovBasis, start: int, a: float, thresh: float, limit: float
) -> Literal["found", "clear"] | None:
    """``found``, ``clear`` or ``None`` (go on) for the probe in rows ``start:`` of the basis."""
    t = basis.mm[start : basis.m, start : basis.m]
    theta, s = torch.linalg.eigh(0.5 * (t + t.T))
    if float(theta[0]) < a:
        return "found"
    if mass_below(t, a) <= limit:
        return "clear"
    if _lowest_residual(basis, start, s[:, 0]) <= thresh:
        return "clear"
    return None


def mass_below(t: Tensor, a: float) -> float:
    """A bound on the start vector's spectral mass at or below ``a``, from the probe's matrix.

    ``t`` is the (tridiagonal) projection of a Lanczos run; ``a`` must lie below its Ritz
    values. With ``p_i`` the run's orthonormal polynomials (its three-term recurrence at
    ``a``), the mass is at most the Christoffel function ``1 / Σ_i p_i(a)²``: the polynomial
    ``q(x) = Σ_i p_i(x) p_i(a) / Σ_i p_i(a)²`` is at least 1 wherever ``x ≤ a`` (below every
    zero of every ``p_i``) and has ``∫ q² dF = 1 / Σ_i p_i(a)²``.
    """
    alpha = torch.diagonal(t).tolist()
    beta = torch.diagonal(t, -1).tolist()
    prev, cur = 0.0, 1.0
    total = 1.0
    for i in range(len(beta)):
        if beta[i] <= TINY:
            break
        prev, cur = cur, ((a - alpha[i]) * cur - (beta[i - 1] * prev if i else 0.0)) / beta[i]
        total += cur * cur
        if total > 1e200:
            break
    return 1.0 / total


def mass_limit(dim: int) -> float:
    """The mass below which a missing eigenvector is ruled out at :data:`MISS_PROBABILITY`.

    A unit vector uniformly random on a sphere of dimension ``dim`` has a squared component
    ``c²`` on a fixed direction with ``P(c² ≤ t) ≤ √(2·dim·t/π)``.
    """
    return math.pi * MISS_PROBABILITY**2 / (2.0 * max(dim, 1))


def _lowest_residual(basis: KrylovBasis, start: int, y: Tensor) -> float:
    """``‖Bz − θz‖`` for the probe's lowest Ritz vector ``z``: the part of ``Az`` outside ``V``.

    From the projections: ``‖Az‖² − ‖V A z‖²`` (``G`` and ``M`` restricted to the probe).
    """
    m = basis.m
    az2 = float(y @ (basis.g[start:m, start:m] @ y))
    inside = basis.mm[:m, start:m] @ y
    return math.sqrt(max(az2 - float(inside @ inside), 0.0))
