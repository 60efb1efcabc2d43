"""The two losses of Ridge Rider's out-of-distribution extension (paper §3).

θ is split into the features ``θ_f`` and the head ``θ_r`` (a problem's ``head_slice()``).
``H_i`` is the Hessian of training environment ``i``'s loss restricted to ``Θ_r`` (the block
``∂²L_i/∂θ_r²``), a function of ``θ_f`` and ``θ_r``. With ``C(a, b) = aᵀb / (‖a‖‖b‖)`` (the
correlation, a normalised inner product) and ``ê = e_r / ‖e_r‖``::

    L1(θ_f, e_r | θ_r) = Σ_i ( −β1·|C(H_i ê, ê)| + β2·êᵀH_i ê + β3·L_i(θ_f | θ_r) )
                         + β4·|êᵀ(H_1 − H_2)ê|

    L2(θ_f | θ_r) = β5 · mean over unit u ∈ Θ_r of
                    ( |C(H_1u, u)² − C(H_2u, u)²| / (C(H_1u, u)² + C(H_2u, u)²)
                      + |uᵀ(H_1 − H_2)u| / (|uᵀH_1u| + |uᵀH_2u|) )

Reading of the paper's text (its OCR is garbled around L2). The printed L1 has
``−β1·C(H_i e_r, e_r) − β2·e_rᵀH_i e_r``, but the text says the loss "forces high correlation
between H_i e_r and e_r" and "encourages negative curvature", and for the negative eigenvector it
wants ``H_i e = λe`` with ``λ < 0``, i.e. ``C = −1``. Taken literally, minimising the printed
terms drives ``e_r`` to the *largest* eigenvalue (we tried: the refined direction's eigenvalue
went from −0.1 to +64 and the first RR step quadrupled the loss). We therefore use ``|C|`` (high
correlation in magnitude: 1 at any exact eigenvector, so the term is −β1 per environment there)
and ``+β2·êᵀH_iê`` (minimising it lowers the curvature), which is what the text describes.
β4 weighs the eigenvalue-difference term of L1 (``|e_rᵀ(H_1 − H_2)e_r| / ‖e_r‖²``, which is
``|êᵀ(H_1 − H_2)ê|``), and L2 carries one weight, β5, on both of its ratios (the text says it
"has a global optimum at 0 when H_1 = H_2"). Using ``ê`` everywhere (ours) makes L1
independent of ``‖e_r‖``: the curvature term would otherwise reward growing ``e_r`` without
bound. Sums over environments generalise to any
number of them; the pairwise terms use the first two (the paper has two). A tiny ``EPS`` keeps
the ratios finite where a denominator vanishes.

``(· | θ_r)`` is a stop-gradient: these functions are differentiated with respect to ``θ_f`` and
``e_r`` only (the callers never step ``θ_r`` with them). They take the dense head Hessians
``H_i`` (``r × r``, a few hundred at most), built differentiably in ``θ_f`` by ``core.ood``.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

__all__ = ["EPS", "OODWeights", "correlation", "l1_loss", "l2_loss"]

EPS = 1e-12
"""Added to denominators so that the ratios stay finite."""


@dataclass(frozen=True)
class OODWeights:
    """β1..β5 of L1 and L2 (see the module docstring)."""

    beta1: float = 1.0
    beta2: float = 1.0
    beta3: float = 1.0
    beta4: float = 1.0
    beta5: float = 1.0


def correlation(a: Tensor, b: Tensor) -> Tensor:
    """``C(a, b) = aᵀb / (‖a‖‖b‖)`` over the first dimension (columns of ``[r, k]``)."""
    return (a * b).sum(0) / (a.norm(dim=0) * b.norm(dim=0) + EPS)


def l1_loss(
    losses: list[Tensor], hessians: list[Tensor], unit_e: Tensor, weights: OODWeights
) -> Tensor:
    """L1 at the unit direction ``ê`` (``[r]``) from each environment's loss and head Hessian."""
    total = unit_e.new_zeros(())
    quads = []
    for loss, hess in zip(losses, hessians, strict=True):
        he = hess @ unit_e
        quad = he @ unit_e
        quads.append(quad)
        total = total - weights.beta1 * correlation(he, unit_e).abs() + weights.beta2 * quad
        total = total + weights.beta3 * loss
    if len(quads) >= 2:
        total = total + weights.beta4 * (quads[0] - quads[1]).abs()
    return total


def l2_loss(hessians: list[Tensor], probes: Tensor, weights: OODWeights) -> Tensor:
    """L2 averaged over the unit probe columns ``u`` of ``probes [r, k]`` (0 with one env)."""
    if len(hessians) < 2 or probes.shape[1] == 0:
        return probes.new_zeros(())
    h1u, h2u = hessians[0] @ probes, hessians[1] @ probes
    c1, c2 = correlation(h1u, probes) ** 2, correlation(h2u, probes) ** 2
    q1, q2 = (h1u * probes).sum(0), (h2u * probes).sum(0)
    ratio_c = (c1 - c2).abs() / (c1 + c2 + EPS)
    ratio_q = (q1 - q2).abs() / (q1.abs() + q2.abs() + EPS)
    return weights.beta5 * (ratio_c + ratio_q).mean()
