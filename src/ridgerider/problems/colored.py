"""``colored-mnist`` and ``colored-digits``: the paper's out-of-distribution problem (§3, Table 1).

Colored MNIST (Arjovsky et al., IRM, 2019) adds a colour that predicts the label better than the
digit does in the training environments and worse in the test environment, so a network that
learns the colour fails out of distribution. The construction, per image of environment ``e``:

1. binary label ``0`` for digits 0–4, ``1`` for 5–9, then flipped with probability 0.25 (so the
   digit predicts it 75% of the time);
2. colour = label flipped with probability ``p_e``: 0.2 in ``train1``, 0.1 in ``train2`` and
   0.9 in ``test`` (so the colour predicts 80%/90% in training and 10% in test);
3. two channels: the grey image in channel ``colour`` (the paper's red/green), the other zero.

MNIST images are 2× downsampled by striding (``[::2, ::2]``: 28×28 → 14×14) as in the IRM code;
the 8×8 digits are used as they are (a second downsampling would leave 4×4, too little to tell
digits apart). Pixels are in [0, 1]. Of ``N`` source images the first ``5N // 6`` go alternately
to ``train1`` (even positions) and ``train2`` (odd), the rest to ``test``: for MNIST's 60,000
training images that is the IRM split, 25,000 + 25,000 and the last 10,000 (the IRM code shuffles
first; here the file order is kept, so the split depends on nothing but the files). The MNIST
test files are not used. Every random draw comes from one generator seeded with ``data_seed``
(label noise and colour flips of ``train1``, ``train2``, ``test``, then the validation draw), so
a problem is a deterministic function of its parameters.

Validation: ``validation_fraction`` of each training environment (a seeded draw) is held out and
never enters the loss; ``validation_accuracy`` is the accuracy on it, the held-out number a
search may select solutions by (the paper never looks at the test environment for that).

The network, starting point and exact HVP are the shared tanh MLP's
(:mod:`ridgerider.problems.mlp`) with two output classes: softmax cross-entropy over two logits
``z0, z1`` is exactly the binary (logistic) cross-entropy of ``z1 − z0``, so the loss is the mean
binary cross-entropy over the pooled training part of ``train1`` and ``train2`` and the hand-written
R-op applies unchanged. Metrics: ``train_accuracy`` (the pooled training part), ``train1_accuracy``
and ``train2_accuracy`` (each environment's training part), ``validation_accuracy``,
``test_accuracy`` (the test environment), per-class test accuracy and the training loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from pydantic import Field
from torch import Tensor

from ridgerider.core.ood import autograd_head_hessians
from ridgerider.problems.base import ParamError
from ridgerider.problems.mlp import MLPClassifier, MLPParams
from ridgerider.problems.mlp_head import head_hessian
from ridgerider.problems.mnist import find_idx, read_idx

__all__ = [
    "COLOUR_FLIP",
    "LABEL_FLIP",
    "ColoredDigits",
    "ColoredMnist",
    "Environment",
    "build_environments",
    "split_sizes",
]

LABEL_FLIP = 0.25
COLOUR_FLIP: dict[str, float] = {"train1": 0.2, "train2": 0.1, "test": 0.9}
MIN_IMAGES = 12


@dataclass(frozen=True)
class Environment:
    """One environment's data, for inspection; ``validation`` marks the held-out images."""

    images: Tensor  # [N, 2, H, W], pixels in [0, 1], one channel zero
    labels: Tensor  # [N] long, the noisy binary label the loss uses
    colours: Tensor  # [N] long, 0 or 1: the channel holding the image
    digits: Tensor  # [N] long, the source digit 0–9
    validation: Tensor  # [N] bool, held out from the loss (always False in ``test``)
    colour_flip: float  # p_e

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def split_sizes(n: int) -> tuple[int, int, int]:
    """Sizes of ``train1``, ``train2``, ``test`` for ``n`` images (60,000: 25k, 25k, 10k)."""
    pool = 5 * n // 6
    return (pool + 1) // 2, pool // 2, n - pool


def _flip(bits: Tensor, p: float, generator: torch.Generator) -> Tensor:
    return bits ^ (torch.rand(bits.shape[0], generator=generator, dtype=torch.float64) < p).long()


def _colourise(
    images: Tensor, digits: Tensor, p: float, generator: torch.Generator
) -> tuple[Tensor, Tensor, Tensor]:
    labels = _flip((digits >= 5).long(), LABEL_FLIP, generator)
    colours = _flip(labels, p, generator)
    out = images.new_zeros(images.shape[0], 2, *images.shape[1:])
    out[torch.arange(images.shape[0]), colours] = images
    return out, labels, colours


def build_environments(
    images: Tensor, digits: Tensor, data_seed: int, validation_fraction: float
) -> dict[str, Environment]:
    """The three environments from grey ``images [N, H, W]`` in [0, 1] and their ``digits``."""
    g = torch.Generator().manual_seed(data_seed)
    pool = 5 * images.shape[0] // 6
    parts = {
        "train1": torch.arange(0, pool, 2),
        "train2": torch.arange(1, pool, 2),
        "test": torch.arange(pool, images.shape[0]),
    }
    built = {
        name: _colourise(images[idx], digits[idx], COLOUR_FLIP[name], g)
        for name, idx in parts.items()
    }
    envs: dict[str, Environment] = {}
    for name, idx in parts.items():
        held = torch.zeros(len(idx), dtype=torch.bool)
        if name != "test":
            count = min(round(validation_fraction * len(idx)), len(idx) - 1)
            held[torch.randperm(len(idx), generator=g)[:count]] = True
        x, labels, colours = built[name]
        envs[name] = Environment(x, labels, colours, digits[idx], held, COLOUR_FLIP[name])
    return envs


class ColoredParams(MLPParams):
    """The construction's seed and the validation share on top of the MLP parameters."""

    data_seed: int = Field(
        0, ge=0, le=2**31 - 1, description="seed of the label noise, colours and validation draw"
    )
    validation_fraction: float = Field(
        0.1, ge=0, lt=1, description="share of each training environment held out for validation"
    )


class _Colored(MLPClassifier):
    """Shared set-up: environments, pooled training data, the extra accuracies."""

    params: ColoredParams

    def _build(self, images: Tensor, digits: Tensor) -> None:
        p = self.params
        self._envs = build_environments(images, digits, p.data_seed, p.validation_fraction)
        flat = {k: e.images.reshape(len(e), -1).to(self.dtype) for k, e in self._envs.items()}
        self._parts: dict[str, tuple[Tensor, Tensor]] = {}
        for key in ("train1", "train2"):
            env, keep = self._envs[key], ~self._envs[key].validation
            self._parts[key] = (flat[key][keep], env.labels[keep])
            self._parts[f"{key}_validation"] = (flat[key][~keep], env.labels[~keep])
        x_train = torch.cat([self._parts["train1"][0], self._parts["train2"][0]])
        y_train = torch.cat([self._parts["train1"][1], self._parts["train2"][1]])
        self.x_val = torch.cat([self._parts[f"{k}_validation"][0] for k in ("train1", "train2")])
        self.y_val = torch.cat([self._parts[f"{k}_validation"][1] for k in ("train1", "train2")])
        self._setup(x_train, y_train, flat["test"], self._envs["test"].labels, 2)

    def environment_losses(self, theta: Tensor) -> list[Tensor]:
        """Mean cross-entropy (plus the L2 term) on the training part of ``train1``, ``train2``.

        Validation images never enter them; ``method="ood"`` (``core.ood``) uses them.
        """
        out = []
        for key in ("train1", "train2"):
            x, y = self._parts[key]
            loss = torch.nn.functional.cross_entropy(self.logits(theta, x), y)
            if self.params.weight_decay:
                loss = loss + 0.5 * self.params.weight_decay * theta.pow(2).sum()
            out.append(loss)
        return out

    def head_slice(self) -> slice:
        """θ_r for ``method="ood"``: the output layer and the last hidden layer's biases.

        Cross-entropy is convex in the output layer alone (for fixed features its head Hessian
        is positive semi-definite: no ridge to ride), so the head also takes the biases of the
        last hidden layer, which sit just before the output layer in θ; their cross terms with
        the output weights give the head curvature of both signs. 2 classes and 128 hidden
        units: 128 + 258 = 386 parameters. Without a hidden layer it is the output layer.
        """
        out, inp = self.shapes[-1]
        size = out * inp + out + (inp if len(self.shapes) > 1 else 0)
        return slice(self.n_params - size, self.n_params)

    def head_hessians(self, theta: Tensor) -> list[Tensor]:
        """Each training environment's Hessian in :meth:`head_slice`, in closed form.

        Differentiable in the features (``problems.mlp_head``); without a hidden layer it is
        autograd's Hessian of the output layer.
        """
        layers = self.unflatten(theta)
        if len(layers) == 1:
            return autograd_head_hessians(self, theta)
        decay = float(self.params.weight_decay)
        out = []
        for key in ("train1", "train2"):
            x, y = self._parts[key]
            h = x
            for w, b in layers[:-2]:
                h = torch.tanh(torch.addmm(b, h, w.T))
            w_last, b_last = layers[-2]
            w_out, c_out = layers[-1]
            out.append(head_hessian(h @ w_last.T, y, w_out, b_last, c_out, decay))
        return out

    def environments(self) -> dict[str, Environment]:
        """``train1``, ``train2`` and ``test`` as constructed (see the module docstring)."""
        return dict(self._envs)

    def metrics(self, theta: Tensor) -> dict[str, Any]:
        """The MLP's metrics plus per-environment and validation accuracy (``None``: no data)."""
        out = super().metrics(theta)
        for key in ("train1", "train2"):
            x, y = self._parts[key]
            out[f"{key}_accuracy"] = self._accuracy(theta, x, y)[0]
        has_val = self.x_val.shape[0] > 0
        out["validation_accuracy"] = (
            self._accuracy(theta, self.x_val, self.y_val)[0] if has_val else None
        )
        return out


class ColoredMnistParams(ColoredParams):
    """Where the MNIST training files are and how many images to use."""

    data_dir: str = Field(
        ..., min_length=1, description="directory holding train-images/train-labels IDX files"
    )
    n_images: int = Field(
        0, ge=0, le=10_000_000, description="use the first n training images (0: all, 60,000)"
    )


class ColoredMnist(_Colored):
    """Colored MNIST from local IDX files (see the module docstring)."""

    name = "colored-mnist"
    path_params = ("data_dir",)
    summary = "tanh MLP on Colored MNIST from local IDX files (param data_dir), OOD (paper §3)"
    Params = ColoredMnistParams
    params: ColoredMnistParams

    def __init__(self, params: ColoredMnistParams) -> None:
        super().__init__(params)
        images, digits = self._read(params.data_dir, params.n_images)
        self._build(images[:, ::2, ::2], digits)

    @classmethod
    def _read(cls, data_dir: str, n_images: int) -> tuple[Tensor, Tensor]:
        """Grey images ``[N, H, W]`` in [0, 1] and digits; :class:`ParamError` on ``data_dir``."""
        try:
            images = read_idx(find_idx(data_dir, "train-images-idx3-ubyte"))
            labels = read_idx(find_idx(data_dir, "train-labels-idx1-ubyte"))
        except (OSError, ValueError) as exc:  # IDXError is a ValueError
            raise ParamError(cls.name, "data_dir", str(exc)) from None
        why = None
        if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
            why = f"training images {images.shape} do not match labels {labels.shape}"
        elif labels.size and not 0 <= int(labels.min()) <= int(labels.max()) <= 9:
            why = "training labels must be digits 0-9"
        elif min(n_images or labels.shape[0], labels.shape[0]) < MIN_IMAGES:
            why = f"needs at least {MIN_IMAGES} training images, found {labels.shape[0]}"
        if why is not None:
            raise ParamError(cls.name, "data_dir", f"{data_dir}: {why}")
        count = n_images or labels.shape[0]
        scale = 255.0 if images.dtype == np.uint8 else 1.0
        x = torch.from_numpy(images[:count].astype(np.float64)) / scale
        return x, torch.from_numpy(labels[:count].astype(np.int64))


class ColoredDigits(_Colored):
    """Colored digits: the construction on scikit-learn's bundled 8×8 digits, offline."""

    name = "colored-digits"
    summary = "tanh MLP on colored 8x8 scikit-learn digits, OOD (paper §3's Colored MNIST, offline)"
    Params = ColoredParams
    params: ColoredParams

    def __init__(self, params: ColoredParams) -> None:
        super().__init__(params)
        from sklearn.datasets import load_digits

        data = load_digits()
        images = torch.as_tensor(data.images, dtype=torch.float64) / 16.0
        self._build(images, torch.as_tensor(data.target, dtype=torch.long))
