"""Exact Hessian-vector products of the tanh MLP classifiers, by hand (Pearlmutter's R-op).

Autograd's double backward spends a third of a product on elementwise work through ``tanh``'s
backward; written out, one product is six matrix products per hidden layer (two for the first,
whose input is fixed) fused with ``addmm``/``addcmul`` and a few elementwise passes over cached
factors. Measured on one CPU thread (``benchmarks/curvature.py``): 1.1 gradients on the paper's
784-128-128-10 network against 1.35–1.4 for the cached double backward.

For layer ``l`` with input ``h`` (``h_0 = x``), pre-activation ``s = h Wᵀ + b`` and, going
back, ``δ`` the gradient of the mean cross-entropy with respect to ``s``:

    R(s_l) = R(h_{l-1}) W_lᵀ + h_{l-1} V_lᵀ + v_b,      R(h_l) = (1 − h_l²) ⊙ R(s_l)
    R(δ_L) = (p ⊙ R(z) − p (pᵀR(z))) / N                (softmax cross-entropy, logits z)
    R(δ_{l-1}) = (R(δ_l) W_l + δ_l V_l) ⊙ (1 − h²) − 2 (δ_l W_l) ⊙ h ⊙ R(h_{l-1})
    (H v)_{W_l} = R(δ_l)ᵀ h_{l-1} + δ_lᵀ R(h_{l-1}),    (H v)_{b_l} = Σ_rows R(δ_l)

plus ``weight_decay · v``. Tests compare it with the dense autograd Hessian.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:
    from ridgerider.problems.digits import MLPClassifier

__all__ = ["MLPHessian"]


class MLPHessian:
    """``v ↦ H(θ) v`` for an :class:`~ridgerider.problems.digits.MLPClassifier` at a fixed θ.

    The forward and backward quantities a product reuses are computed once, here (about one
    gradient's work). Call with ``[n]`` or ``[n, b]`` tensors.
    """

    def __init__(self, problem: MLPClassifier, theta: Tensor) -> None:
        self.problem = problem
        theta = theta.detach()
        self.n = theta.numel()
        self.dtype, self.device = theta.dtype, theta.device
        x = problem.x_train.to(theta.device)
        self.decay = float(problem.params.weight_decay)
        layers = problem.unflatten(theta)
        self.weights = [w for w, _ in layers]
        self.inputs = [x]
        h = x
        for w, b in layers[:-1]:
            h = torch.tanh(torch.addmm(b, h, w.T))
            self.inputs.append(h)
        logits = torch.addmm(layers[-1][1], h, layers[-1][0].T)
        self.probs = torch.softmax(logits, dim=1)
        self.count = x.shape[0]
        y = problem.y_train.to(theta.device)
        delta = self.probs.clone()
        delta[torch.arange(self.count, device=theta.device), y] -= 1.0
        delta /= self.count
        depth = len(layers)
        self.deltas: list[Tensor] = [delta] * depth
        self.slopes: list[Tensor] = [delta] * depth  # 1 − h² of each layer's input (l ≥ 1)
        self.curls: list[Tensor] = [delta] * depth  # −2 (δ_l W_l) ⊙ h of each input (l ≥ 1)
        for layer in range(depth - 1, 0, -1):
            back = self.deltas[layer] @ self.weights[layer]
            h_in = self.inputs[layer]
            self.slopes[layer] = 1.0 - h_in * h_in
            self.curls[layer] = -2.0 * back * h_in
            self.deltas[layer - 1] = back * self.slopes[layer]

    def __call__(self, v: Tensor) -> Tensor:
        """``H(θ) v`` for ``v`` of shape ``[n]`` or ``[n, b]`` (same shape back)."""
        if v.dim() not in (1, 2) or v.shape[0] != self.n:
            raise ValueError(f"expected shape [{self.n}] or [{self.n}, b], got {tuple(v.shape)}")
        v = v.to(dtype=self.dtype, device=self.device)
        if v.dim() == 2:
            return torch.stack([self._one(v[:, j]) for j in range(v.shape[1])], dim=1)
        return self._one(v)

    def _one(self, v: Tensor) -> Tensor:
        tangent = self.problem.unflatten(v)
        depth = len(self.weights)
        r_in: list[Tensor | None] = [None] * depth  # R(h_{l-1}): tangent of layer l's input
        r_s = v.new_empty(0)
        for layer, (vw, vb) in enumerate(tangent):
            r_s = torch.addmm(vb, self.inputs[layer], vw.T)
            r_h = r_in[layer]
            if r_h is not None:
                r_s.addmm_(r_h, self.weights[layer].T)
            if layer + 1 < depth:
                r_in[layer + 1] = self.slopes[layer + 1] * r_s
        p = self.probs
        r_delta = (p * r_s - p * (p * r_s).sum(dim=1, keepdim=True)) / self.count
        parts: list[Tensor] = []
        for layer in range(depth - 1, -1, -1):
            vw = tangent[layer][0]
            h_w = r_delta.T @ self.inputs[layer]
            r_h = r_in[layer]
            if r_h is not None:
                h_w.addmm_(self.deltas[layer].T, r_h)
            parts += [r_delta.sum(dim=0), h_w.reshape(-1)]
            if r_h is not None:
                nxt = (r_delta @ self.weights[layer]).addmm_(self.deltas[layer], vw)
                r_delta = nxt.mul_(self.slopes[layer]).addcmul_(self.curls[layer], r_h)
        out = torch.cat(parts[::-1])
        return out.add_(v, alpha=self.decay) if self.decay else out
