"""The baselines of the paper's Table 1 on the colored problems: ERM, IRM, grayscale, chance.

Each trains on the training part of ``train1`` and ``train2`` (the images the Ridge Rider loss
sees: the validation share is held out) and is scored on the pooled training part (``train``),
the held-out validation images and the ``test`` environment, as in
:meth:`ridgerider.problems.colored._Colored.environments`. They follow the IRM reference code for
Colored MNIST (Arjovsky et al., 2019, ``colored_mnist/main.py``):

* the network is ``inputs-h-h-1`` with ReLU, Glorot-uniform weights and zero biases, one logit
  and the binary cross-entropy averaged per environment, then over the two environments;
* full batch, Adam, an L2 term ``l2 · Σ‖W‖²`` over the weight matrices (not the biases);
* **ERM** (:data:`ERM`): hidden 256, lr 1e-3, L2 1e-3, 501 steps, no penalty;
* **IRM** (:data:`IRM`): the IRMv1 penalty ``‖∇_{w|w=1} R_e(w·f)‖²`` per environment, weight 1
  for the first ``anneal`` steps and ``penalty`` afterwards (the loss then divided by it), with
  the tuned values the IRM authors publish for their Colored MNIST result (hidden 390,
  L2 0.00110794568, lr 4.898536566546834e-4, anneal 190, penalty 91257.18613115903, 501 steps);
* **grayscale** (:data:`GRAYSCALE`): ERM on the sum of the two colour channels, so the colour is
  invisible (the IRM code's ``grayscale_model``): the best a model that ignores colour reaches;
* **chance**: a constant prediction of the majority training label.

Computation is float32 on the CPU, seeded by ``seed`` (the initialisation); the data are the
problem's, so the same ``data_seed`` gives every method the same images, labels and colours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ridgerider.problems.colored import Environment

__all__ = [
    "ERM",
    "GRAYSCALE",
    "IRM",
    "BaselineSettings",
    "OODScores",
    "chance",
    "train_baseline",
]

TRAIN_ENVS = ("train1", "train2")


@dataclass(frozen=True)
class BaselineSettings:
    """One baseline of Table 1: network width, optimiser, L2 and the IRM penalty schedule."""

    name: str
    hidden: int = 256
    lr: float = 1e-3
    l2: float = 1e-3
    steps: int = 501
    penalty: float = 0.0
    """IRMv1 penalty weight after ``anneal`` steps (0: ERM)."""
    anneal: int = 0
    """Steps with penalty weight 1 before ``penalty`` applies (IRM only)."""
    grayscale: bool = False
    """Sum the colour channels before the network (the colour becomes invisible)."""


ERM = BaselineSettings("ERM")
IRM = BaselineSettings(
    "IRM",
    hidden=390,
    lr=4.898536566546834e-4,
    l2=0.00110794568,
    penalty=91257.18613115903,
    anneal=190,
)
GRAYSCALE = BaselineSettings("grayscale", grayscale=True)


@dataclass(frozen=True)
class OODScores:
    """Accuracies of one trained model (fractions in [0, 1])."""

    method: str
    train: float
    """The pooled training part of ``train1`` and ``train2``."""
    validation: float | None
    """The held-out share of the training environments (``None``: none held out)."""
    test: float
    """The ``test`` environment (colour flipped with probability 0.9)."""


def _inputs(env: Environment, grayscale: bool) -> Tensor:
    x = env.images.to(torch.float32)
    if grayscale:
        x = x.sum(dim=1)
    return x.reshape(len(env), -1)


def _split(
    envs: dict[str, Environment], grayscale: bool
) -> tuple[list[tuple[Tensor, Tensor]], tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
    """Per-environment training data, the pooled validation data and the test data."""
    train, val_x, val_y = [], [], []
    for key in TRAIN_ENVS:
        env = envs[key]
        x, y = _inputs(env, grayscale), env.labels.to(torch.float32)
        train.append((x[~env.validation], y[~env.validation]))
        val_x.append(x[env.validation])
        val_y.append(y[env.validation])
    test = envs["test"]
    return (
        train,
        (torch.cat(val_x), torch.cat(val_y)),
        (_inputs(test, grayscale), test.labels.to(torch.float32)),
    )


def _network(n_in: int, hidden: int, generator: torch.Generator) -> list[Tensor]:
    """Weights and biases of ``n_in-hidden-hidden-1``: Glorot-uniform weights, zero biases."""
    params = []
    for fan_in, fan_out in ((n_in, hidden), (hidden, hidden), (hidden, 1)):
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        w = (torch.rand(fan_out, fan_in, generator=generator) * 2 - 1) * bound
        params += [w.requires_grad_(), torch.zeros(fan_out, requires_grad=True)]
    return params


def _logits(params: list[Tensor], x: Tensor) -> Tensor:
    w1, b1, w2, b2, w3, b3 = params
    h = F.relu(F.linear(x, w1, b1))
    h = F.relu(F.linear(h, w2, b2))
    return F.linear(h, w3, b3).squeeze(-1)


def _irm_penalty(logits: Tensor, y: Tensor) -> Tensor:
    """IRMv1: the squared gradient of the environment's risk at a dummy scale ``w = 1``."""
    scale = torch.ones((), requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(logits * scale, y)
    (grad,) = torch.autograd.grad(loss, [scale], create_graph=True)
    return grad.pow(2)


def _accuracy(params: list[Tensor], data: tuple[Tensor, Tensor]) -> float | None:
    x, y = data
    if y.numel() == 0:
        return None
    with torch.no_grad():
        return float(((_logits(params, x) > 0).float() == y).float().mean())


def train_baseline(
    envs: dict[str, Environment], settings: BaselineSettings, seed: int
) -> OODScores:
    """Train one baseline on the training environments and score it (see the module)."""
    train, val, test = _split(envs, settings.grayscale)
    generator = torch.Generator().manual_seed(seed)
    params = _network(train[0][0].shape[1], settings.hidden, generator)
    opt = torch.optim.Adam(params, lr=settings.lr)
    for step in range(settings.steps):
        logits = [_logits(params, x) for x, _ in train]
        pairs = list(zip(logits, train, strict=True))
        nll = torch.stack([F.binary_cross_entropy_with_logits(z, y) for z, (_, y) in pairs]).mean()
        loss = nll + settings.l2 * sum(w.pow(2).sum() for w in params[::2])
        if settings.penalty > 0:
            weight = settings.penalty if step >= settings.anneal else 1.0
            pen = torch.stack([_irm_penalty(z, y) for z, (_, y) in pairs]).mean()
            loss = loss + weight * pen
            if weight > 1.0:
                loss = loss / weight
        opt.zero_grad()
        loss.backward()
        opt.step()
    pooled = (torch.cat([x for x, _ in train]), torch.cat([y for _, y in train]))
    acc_train = _accuracy(params, pooled)
    acc_test = _accuracy(params, test)
    assert acc_train is not None and acc_test is not None
    return OODScores(settings.name, acc_train, _accuracy(params, val), acc_test)


def chance(envs: dict[str, Environment]) -> OODScores:
    """A constant prediction: the majority label of the training part, scored everywhere."""
    train, val, test = _split(envs, grayscale=True)
    labels = torch.cat([y for _, y in train])
    guess = float(labels.mean() >= 0.5)

    def acc(y: Tensor) -> float | None:
        return float((y == guess).float().mean()) if y.numel() else None

    acc_train, acc_test = acc(labels), acc(test[1])
    assert acc_train is not None and acc_test is not None
    return OODScores("chance", acc_train, acc(val[1]), acc_test)
