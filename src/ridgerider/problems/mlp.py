"""The tanh MLP classifier shared by ``digits-mlp`` and ``mnist-mlp`` (paper §4, MNIST).

Its parameters (:class:`MLPParams`), the network and loss (:class:`MLPClassifier`), the data
helpers the problems use to build their tensors (:func:`resample`, :func:`stratified_split`) and
the exact Hessian-vector product written by hand (:class:`MLPHessian`). The problems only load
their data and call :meth:`MLPClassifier._setup`.

θ is the flat vector of an MLP's weights and biases (layer by layer: weight ``[out, in]``
row-major, then bias); the hidden layers use ``tanh`` (the Hessian must exist everywhere) and the
loss is the mean cross-entropy over the training set (full batch, so the loss is deterministic),
plus an optional L2 term.

Starting point (param ``start``). With one hidden layer, the point with zero weights and
zero hidden biases and the output bias at the centred log class frequencies is a saddle with zero
gradient that is invariant under every permutation of hidden units: the MIS. Its Hessian
eigenvalues are ±σ_k (singular values of the label–input cross-covariance), each repeated once per
hidden unit. With two or more hidden layers that point (or θ = 0) is degenerate: every second
derivative vanishes except the output-bias block and the tiny cross terms between output weights
and the last hidden bias (rank 25 of 682 for two layers of 8, most negative eigenvalue −0.005),
so there are no ridges worth following. The start is then a seeded Glorot-uniform initialisation
scaled by ``init_scale``, with zero hidden biases and the same output bias (so the start predicts
the prior); it has hundreds of negative eigenvalues packed close together, the situation
approximate Ridge Rider is built for. ``start="auto"`` picks the saddle for one hidden layer and
the initialisation otherwise; no MIS search is run (:meth:`MLPClassifier.analytic_mis` returns
the start).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any, Literal

import torch
from pydantic import Field, field_validator
from torch import Tensor

from ridgerider.problems.base import ParamsModel, RegisteredProblem

__all__ = [
    "TRAINING_SEARCH",
    "MLPClassifier",
    "MLPHessian",
    "MLPParams",
    "parse_sizes",
    "resample",
    "stratified_split",
]

MAX_WIDTH = 4096

TRAINING_SEARCH: dict[str, Any] = {
    "method": "approx",
    "approx_update": "paper",
    "approx_steps": 1,
    "approx_lr_e": 0.02,
    "step_rule": "fixed",
    "alpha": 0.01,
    "end_on_convex": False,
    "max_ride_steps": 8000,
    "hvp_batch": 256,
    "n_ridges": 6,
    "signs": "descent",
    "zero_tol": 1e-6,
    "max_depth": 1,
    "polish_steps": 500,
    "polish_lr": 0.05,
}
"""The default search of ``digits-mlp`` and ``mnist-mlp``: one that trains, in minutes on one
CPU thread (ours; measured on ``digits-mlp``, ``benchmarks/README.md``, "Out of the box").

Approximate RR (a dense Hessian of 26k parameters or more is out of reach) in the paper's MNIST
regime: from the start, each of the ``n_ridges=6`` most negative ridges (the descent sign: the
start is an initialisation, not a saddle) is followed by ``max_ride_steps=8000`` fixed steps of
α = 0.01, each followed by one of the paper's gradient steps on ``‖(1/λ)He − e‖²``
(``approx_update="paper"``, LR_e = 0.02, LR_λ the engine's ¼·λ²), with Hessian products on
seeded minibatches of 256 images (``hvp_batch``). Rides end only at their cap
(``end_on_convex=False``: ``eᵀHe`` reaches ~0 within ~1,000 steps while the loss keeps falling).
Each ride is a leaf (``max_depth=1``), finished by 500 steps of gradient descent at lr 0.05; a
leaf's metrics keep the ride's own as ``ride_*``. (The Rayleigh–Ritz refresh and larger steps
measured worse: the same section.)
"""


def parse_sizes(value: Any) -> Any:
    """Accept ``"128,128"`` (and ``""`` for no hidden layer) as well as a list of integers."""
    if isinstance(value, str):
        parts = [p.strip() for p in value.split(",") if p.strip()]
        try:
            return tuple(int(p) for p in parts)
        except ValueError:
            raise ValueError("must be comma-separated integers, e.g. 128,128") from None
    return value


class MLPParams(ParamsModel):
    """Network, split and starting point shared by the MLP classification problems."""

    hidden: tuple[int, ...] = Field(
        (128, 128), max_length=8, description="hidden layer widths, comma-separated"
    )
    init_seed: int = Field(0, ge=0, le=2**31 - 1, description="seed of the starting point")
    init_scale: float = Field(
        1.0, gt=0, le=100, description="multiplier of the Glorot-uniform starting weights"
    )
    weight_decay: float = Field(0.0, ge=0, le=10, description="L2 coefficient added to the loss")
    start: Literal["auto", "saddle", "init"] = Field(
        "auto",
        description="starting point: the symmetric saddle, the scaled initialisation, or auto "
        "(saddle for one hidden layer, initialisation otherwise)",
    )

    @field_validator("hidden", mode="before")
    @classmethod
    def _parse(cls, value: Any) -> Any:
        return parse_sizes(value)

    @field_validator("hidden")
    @classmethod
    def _widths(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(not 1 <= w <= MAX_WIDTH for w in value):
            raise ValueError(f"every width must be in [1, {MAX_WIDTH}]")
        return value


class MLPClassifier(RegisteredProblem):
    """A tanh MLP with softmax cross-entropy on fixed train and test tensors.

    Subclasses load the data and call :meth:`_setup`. The loss is a pure function of θ.
    """

    params: MLPParams

    def _setup(
        self,
        x_train: Tensor,
        y_train: Tensor,
        x_test: Tensor,
        y_test: Tensor,
        n_classes: int,
    ) -> None:
        self.x_train = x_train.to(self.dtype)
        self.y_train = y_train.to(torch.long)
        self.x_test = x_test.to(self.dtype)
        self.y_test = y_test.to(torch.long)
        self.n_classes = n_classes
        self.sizes = [x_train.shape[1], *self.params.hidden, n_classes]
        self.shapes: list[tuple[int, int]] = list(zip(self.sizes[1:], self.sizes[:-1], strict=True))
        self._n = sum(o * i + o for o, i in self.shapes)

    @property
    def n_params(self) -> int:
        """Weights and biases of every layer."""
        return self._n

    @property
    def n_examples(self) -> int:
        """Training images (the loss is their mean cross-entropy): minibatches are allowed."""
        return int(self.x_train.shape[0])

    def minibatch(self, indices: Tensor) -> MLPClassifier:
        """A shallow copy whose training set is the images ``indices`` (test set unchanged)."""
        sub = copy.copy(self)
        idx = indices.to(self.x_train.device)
        sub.x_train = self.x_train[idx]
        sub.y_train = self.y_train[idx]
        return sub

    def unflatten(self, theta: Tensor) -> list[tuple[Tensor, Tensor]]:
        """Split θ into ``(weight [out, in], bias [out])`` per layer (views, no copies)."""
        layers = []
        at = 0
        for out, inp in self.shapes:
            w = theta[at : at + out * inp].reshape(out, inp)
            at += out * inp
            b = theta[at : at + out]
            at += out
            layers.append((w, b))
        return layers

    def logits(self, theta: Tensor, x: Tensor) -> Tensor:
        """Network output for inputs ``x`` of shape ``[batch, in]``."""
        h = x
        layers = self.unflatten(theta)
        for w, b in layers[:-1]:
            h = torch.tanh(torch.addmm(b, h, w.T))
        w, b = layers[-1]
        return torch.addmm(b, h, w.T)

    def loss(self, theta: Tensor) -> Tensor:
        """Mean training cross-entropy (plus ``weight_decay/2 · ‖θ‖²``)."""
        out = torch.nn.functional.cross_entropy(self.logits(theta, self.x_train), self.y_train)
        if self.params.weight_decay:
            out = out + 0.5 * self.params.weight_decay * theta.pow(2).sum()
        return out

    def exact_hvp(self, theta: Tensor) -> MLPHessian | None:
        """The hand-written R-op (:class:`MLPHessian`): ~1.1 gradients a product, not 1.35+.

        ``None`` when a subclass changes the loss, which the R-op would not know about.
        """
        if (
            type(self).loss is not MLPClassifier.loss
            or type(self).logits is not MLPClassifier.logits
        ):
            return None
        return MLPHessian(self, theta)

    def _accuracy(self, theta: Tensor, x: Tensor, y: Tensor) -> tuple[float, list[float | None]]:
        with torch.no_grad():
            pred = self.logits(theta.to(self.dtype), x).argmax(dim=1)
        correct = pred == y
        per_class: list[float | None] = []
        for c in range(self.n_classes):
            mask = y == c
            count = int(mask.sum())
            per_class.append(float(correct[mask].double().mean()) if count else None)
        return float(correct.double().mean()), per_class

    def metrics(self, theta: Tensor) -> dict[str, Any]:
        """Train and test accuracy, per-class test accuracy and the training loss."""
        train_acc, _ = self._accuracy(theta, self.x_train, self.y_train)
        test_acc, per_class = self._accuracy(theta, self.x_test, self.y_test)
        with torch.no_grad():
            train_loss = float(self.loss(theta.to(self.dtype)))
        return {
            "train_accuracy": train_acc,
            "test_accuracy": test_acc,
            "per_class_accuracy": per_class,
            "train_loss": train_loss,
        }

    def _log_prior(self) -> Tensor:
        counts = torch.bincount(self.y_train, minlength=self.n_classes).to(self.dtype)
        log_prior = torch.log(counts.clamp_min(1.0) / counts.sum())
        return log_prior - log_prior.mean()

    def init_params(self, generator: torch.Generator, scale: float) -> Tensor:
        """Glorot-uniform weights times ``scale``, zero hidden biases, log-prior output bias."""
        parts: list[Tensor] = []
        for idx, (out, inp) in enumerate(self.shapes):
            bound = scale * math.sqrt(6.0 / (inp + out))
            w = (torch.rand(out * inp, generator=generator, dtype=self.dtype) * 2 - 1) * bound
            last = idx == len(self.shapes) - 1
            b = self._log_prior() if last else torch.zeros(out, dtype=self.dtype)
            parts += [w, b]
        return torch.cat(parts)

    def saddle(self) -> Tensor:
        """Zero weights and hidden biases, output bias at the centred log class frequencies."""
        theta = torch.zeros(self.n_params, dtype=self.dtype)
        theta[-self.n_classes :] = self._log_prior()
        return theta

    def start(self) -> Tensor:
        """The documented starting point (module docstring, param ``start``)."""
        kind = self.params.start
        if kind == "saddle" or (kind == "auto" and len(self.params.hidden) == 1):
            return self.saddle()
        g = torch.Generator().manual_seed(self.params.init_seed)
        return self.init_params(g, self.params.init_scale)

    def mis_start(self) -> Tensor:
        """The documented starting point (θ = 0 is degenerate for two or more hidden layers)."""
        return self.start()

    def analytic_mis(self) -> Tensor:
        """No MIS search: the branch point is :meth:`start` (the exact MIS for one layer)."""
        return self.start()

    def random_init(self, generator: torch.Generator) -> Tensor:
        """A fresh Glorot-uniform initialisation (unscaled) for the gradient-descent baseline."""
        return self.init_params(generator, 1.0)

    def default_settings(self) -> dict[str, Any]:
        """10 ridges, small steps (ours); ``digits-mlp``, ``mnist-mlp``: :data:`TRAINING_SEARCH`."""
        return {"n_ridges": 10, "alpha": 0.5, "zero_tol": 1e-6}


class MLPHessian:
    """``v ↦ H(θ) v`` for an :class:`MLPClassifier` at a fixed θ, by hand (Pearlmutter's R-op).

    The forward and backward quantities a product reuses are computed once, here (about one
    gradient's work). Call with ``[n]`` or ``[n, b]`` tensors.

    Autograd's double backward spends a third of a product on elementwise work through
    ``tanh``'s backward; written out, one product is six matrix products per hidden layer (two
    for the first, whose input is fixed) fused with ``addmm``/``addcmul`` and a few elementwise
    passes over cached factors. Measured on one CPU thread (``benchmarks/curvature.py``): 1.1
    gradients on the paper's 784-128-128-10 network against 1.35–1.4 for the cached double
    backward.

    For layer ``l`` with input ``h`` (``h_0 = x``), pre-activation ``s = h Wᵀ + b`` and, going
    back, ``δ`` the gradient of the mean cross-entropy with respect to ``s``::

        R(s_l) = R(h_{l-1}) W_lᵀ + h_{l-1} V_lᵀ + v_b,      R(h_l) = (1 − h_l²) ⊙ R(s_l)
        R(δ_L) = (p ⊙ R(z) − p (pᵀR(z))) / N                (softmax cross-entropy, logits z)
        R(δ_{l-1}) = (R(δ_l) W_l + δ_l V_l) ⊙ (1 − h²) − 2 (δ_l W_l) ⊙ h ⊙ R(h_{l-1})
        (H v)_{W_l} = R(δ_l)ᵀ h_{l-1} + δ_lᵀ R(h_{l-1}),    (H v)_{b_l} = Σ_rows R(δ_l)

    plus ``weight_decay · v``. Tests compare it with the dense autograd Hessian.
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


def resample(images: Tensor, size: int) -> Tensor:
    """Flattened square images ``[N, s²]`` resampled bilinearly to ``[N, size²]``."""
    side = math.isqrt(images.shape[1])
    if side == size:
        return images
    grid = torch.nn.functional.interpolate(
        images.reshape(-1, 1, side, side), size=(size, size), mode="bilinear", align_corners=False
    )
    return grid.reshape(-1, size * size)


def stratified_split(
    labels: Sequence[int] | Tensor, test_fraction: float, seed: int
) -> tuple[Tensor, Tensor]:
    """Indices of a seeded split keeping ``test_fraction`` of each class for testing."""
    y = torch.as_tensor(labels, dtype=torch.long)
    g = torch.Generator().manual_seed(seed)
    train: list[Tensor] = []
    test: list[Tensor] = []
    for c in torch.unique(y).tolist():
        idx = torch.nonzero(y == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        n_test = round(test_fraction * len(idx))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return torch.sort(torch.cat(train)).values, torch.sort(torch.cat(test)).values
