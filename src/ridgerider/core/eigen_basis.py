"""The Rayleigh–Ritz basis of :func:`~ridgerider.core.eigensolver.bottom_eigenpairs`.

A growing orthonormal basis ``V`` whose image ``AV`` is stored, with the projections
``V A Vᵀ`` and ``(AV)(AV)ᵀ``, so every Ritz pair's residual is known without extra products;
plus the small helpers the solver's phases share (one operator call on a block of rows, seeded
random rows, NumPy results back as tensors).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

MatVec = Callable[[Tensor], Tensor]

__all__ = ["TINY", "KrylovBasis", "MatVec", "apply_rows", "random_rows", "tensor_like"]

TINY = 1e-300
"""Floor of a norm or singular value that divides or scales a tolerance."""


class KrylovBasis:
    """Orthonormal rows ``V`` ``[m, n]``, ``AV``, ``M = V A Vᵀ`` and ``G = (AV)(AV)ᵀ``."""

    def __init__(self, n: int, dtype: torch.dtype, cap: int, rows: Tensor | None = None) -> None:
        self.n, self.dtype, self.m = n, dtype, 0
        self.image_norm = 0.0
        """The largest ``‖Av‖`` over basis vectors seen (a lower bound on ``‖A‖``)."""
        self.v = torch.empty(cap, n, dtype=dtype) if rows is None else rows
        """Storage of ``V``: ``rows`` (``[cap, n]``) when given, so a run's buffer is reused."""
        self.av = torch.empty(cap, n, dtype=dtype)
        self.mm = torch.zeros(cap, cap, dtype=dtype)
        self.g = torch.zeros(cap, cap, dtype=dtype)

    @classmethod
    def from_lanczos(
        cls, q: Tensor, m: int, alpha: Tensor, beta: Tensor, last: Tensor
    ) -> KrylovBasis:
        """The basis of a Lanczos run, with no products: ``AV`` follows from the recurrence.

        ``q`` is the run's row buffer (its first ``m`` rows orthonormal; it becomes ``V``'s
        storage), ``alpha`` and ``beta`` its tridiagonal ``T`` (``beta[i]`` couples rows ``i``
        and ``i + 1``; ``beta[m − 1]`` is the norm of the unnormalised next vector ``last``).
        ``A qᵢ = β_{i−1} q_{i−1} + αᵢ qᵢ + βᵢ q_{i+1}``, so ``M = T`` and
        ``G = T² + β_{m−1}² e_m e_mᵀ``.
        """
        cap, n = q.shape
        basis = cls(n, q.dtype, cap, rows=q)
        off = beta[: m - 1]
        av = basis.av[:m]
        torch.mul(q[:m], alpha[:, None], out=av)
        av[:-1] += off[:, None] * q[1:m]
        av[1:] += off[:, None] * q[: m - 1]
        av[m - 1] += last
        t = torch.diag(alpha) + torch.diag(off, 1) + torch.diag(off, -1)
        basis.mm[:m, :m] = t
        basis.g[:m, :m] = t @ t
        basis.g[m - 1, m - 1] += beta[m - 1] ** 2
        basis.image_norm = float(av.norm(dim=1).max())
        basis.m = m
        return basis

    def _reserve(self, extra: int) -> None:
        cap = self.v.shape[0]
        if self.m + extra <= cap:
            return
        new = max(self.m + extra, cap + max(32, cap // 4))
        for name in ("v", "av"):
            old = getattr(self, name)
            grown = torch.empty(new, self.n, dtype=self.dtype)
            grown[: self.m] = old[: self.m]
            setattr(self, name, grown)
        for name in ("mm", "g"):
            old = getattr(self, name)
            grown = torch.zeros(new, new, dtype=self.dtype)
            grown[: self.m, : self.m] = old[: self.m, : self.m]
            setattr(self, name, grown)

    def add(self, w: Tensor, aw: Tensor) -> None:
        """Append orthonormal rows ``w`` (orthogonal to ``V``) with their images ``aw``."""
        b = w.shape[0]
        self._reserve(b)
        m, e = self.m, self.m + b
        self.v[m:e] = w
        self.av[m:e] = aw
        self.image_norm = max(self.image_norm, float(aw.norm(dim=1).max()))
        cross = self.v[:e] @ aw.T
        cross[m:e] = 0.5 * (cross[m:e] + cross[m:e].T)
        self.mm[:e, m:e] = cross
        self.mm[m:e, :e] = cross.T
        gc = self.av[:e] @ aw.T
        self.g[:e, m:e] = gc
        self.g[m:e, :e] = gc.T
        self.m = e

    def extend_by_last_image(self, matvec: MatVec, room: int = 1) -> bool:
        """One Lanczos product: add ``A·(last row)``, orthonormalised against ``V``.

        ``False`` (and nothing added) when the image adds no direction or ``room`` is 0.
        """
        w = self.orthonormalise(self.av[self.m - 1].clone()[None, :])[:room]
        if w.shape[0] != 1:
            return False
        self.add(w, apply_rows(matvec, w))
        return True

    def ritz(self) -> tuple[Tensor, Tensor]:
        """Ritz values (ascending) and coefficient vectors (columns) of the current basis."""
        mm = self.mm[: self.m, : self.m]
        return torch.linalg.eigh(0.5 * (mm + mm.T))

    def residual_norms(self, y: Tensor, mu: Tensor, threshold: float) -> Tensor:
        """``‖A Vᵀy − μ Vᵀy‖`` per column of ``y``.

        Estimated from the projections (``yᵀGy − μ²``), which loses accuracy below about
        ``1e-7·‖AV‖`` to cancellation; when the threshold comes within reach of that, residuals
        near or below it are recomputed explicitly, so convergence is never declared on
        cancellation noise.
        """
        g = self.g[: self.m, : self.m]
        est = ((y * (g @ y)).sum(dim=0) - mu**2).clamp_min(0.0).sqrt()
        if threshold >= 1e-5 * self.image_norm:
            return est  # the estimate's error (~1e-7·‖AV‖) is far below the threshold
        near = est <= max(10 * threshold, 1e-7 * self.image_norm)
        if bool(near.any()):
            x, ax = self.combine(y[:, near])
            est[near] = (ax - mu[near, None] * x).norm(dim=1)
        return est

    def combine(self, y: Tensor) -> tuple[Tensor, Tensor]:
        """Rows ``yᵀV`` and ``yᵀAV``."""
        return y.T @ self.v[: self.m], y.T @ self.av[: self.m]

    def collapse(self, y: Tensor, mu: Tensor) -> None:
        """Keep only the Ritz vectors ``yᵀV`` (a thick restart; no products needed)."""
        x, ax = self.combine(y)
        g = y.T @ self.g[: self.m, : self.m] @ y
        p = y.shape[1]
        self.v[:p], self.av[:p] = x, ax
        self.mm[:p, :p] = torch.diag(mu)
        self.g[:p, :p] = 0.5 * (g + g.T)
        self.m = p

    def orthonormalise(self, w: Tensor, threshold: float = 0.0, drop: float = 1e-7) -> Tensor:
        """Orthonormal rows spanning the part of the rows of ``w`` outside ``V``.

        Block Gram–Schmidt against ``V`` twice, then SVQB (the small Gram matrix's
        eigenvectors) inside the block twice. Directions with singular value at most
        ``threshold`` are left out, keeping the largest: for a residual block they change no
        residual by more than that and shrink as the larger ones are expanded, so they are not
        worth a product yet (``eigen_block.EXPAND_FLOOR``). Directions
        below ``drop`` relative to the largest row are numerically inside ``V`` and dropped.
        """
        basis = self.v[: self.m]
        scale = float(w.norm(dim=1).max()) if w.numel() else 0.0
        if scale == 0.0:
            return w[:0]
        for _ in range(2):
            w = w - (w @ basis.T) @ basis
        for rnd in range(2):  # combinations of rows orthogonal to V stay so: no third pass
            gram = w @ w.T
            lam, u = torch.linalg.eigh(0.5 * (gram + gram.T))
            sv = lam.clamp_min(0.0).sqrt()
            if rnd == 0:
                keep = (sv > drop * scale) & (sv > threshold)
                if not bool(keep.any()) and float(sv[-1]) > drop * scale:
                    keep[-1] = True  # the largest direction, even if below the threshold
                if not bool(keep.any()):
                    return w[:0]
                u, sv = u[:, keep], sv[keep]
            w = (u / sv.clamp_min(TINY)).T @ w
        return w


def apply_rows(matvec: MatVec, rows: Tensor) -> Tensor:
    """Images of the rows of ``rows`` (``[b, n]``), as rows, through one call of ``matvec``."""
    if rows.shape[0] == 1:
        return matvec(rows[0].contiguous()).reshape(1, -1).to(rows.dtype)
    return matvec(rows.T).T.to(rows.dtype).contiguous()


def random_rows(n: int, b: int, generator: torch.Generator | None, dtype: torch.dtype) -> Tensor:
    """``b`` random rows of length ``n`` (one row is returned as a vector when ``b == 1``).

    Drawn on the CPU (where seeded generators live) and moved to the default device, so that a
    run under ``torch.device("cuda")`` draws the same numbers as on the CPU.
    """
    out = torch.randn(b, n, generator=generator, dtype=dtype, device="cpu")
    out = out.to(torch.get_default_device())
    return out[0] if b == 1 else out


def tensor_like(a: np.ndarray, like: Tensor) -> Tensor:
    """A NumPy array as a tensor with ``like``'s dtype and device."""
    return torch.from_numpy(a).to(dtype=like.dtype, device=like.device)
