"""Table 1's baselines on colored-digits: the IRMv1 penalty, the grayscale view, ERM's failure."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from ridgerider.problems import create
from ridgerider.problems.colored_baselines import (
    ERM,
    _inputs,
    _irm_penalty,
    chance,
    train_baseline,
)

pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def envs() -> dict:
    return create("colored-digits", {"data_seed": 0}).environments()


def test_the_irm_penalty_is_the_squared_derivative_at_scale_one() -> None:
    g = torch.Generator().manual_seed(0)
    z, y = torch.randn(50, generator=g), (torch.rand(50, generator=g) < 0.5).float()
    # d/dw BCE(w·z, y) at w = 1 is mean((σ(z) − y)·z)
    want = ((torch.sigmoid(z) - y) * z).mean() ** 2
    assert torch.allclose(_irm_penalty(z, y), want, rtol=1e-5)
    # and the penalty is differentiable in the logits (IRM trains through it)
    zz = z.clone().requires_grad_()
    _irm_penalty(zz, y).backward()
    assert zz.grad is not None and float(zz.grad.abs().sum()) > 0
    assert F.binary_cross_entropy_with_logits(z, y) > 0


def test_the_grayscale_view_cannot_see_the_colour(envs: dict) -> None:
    env = envs["train1"]
    swapped = replace(env, images=env.images.flip(1), colours=1 - env.colours)
    assert not torch.equal(_inputs(env, False), _inputs(swapped, False))
    assert torch.equal(_inputs(env, True), _inputs(swapped, True))


def test_erm_learns_the_colour_and_fails_out_of_distribution(envs: dict) -> None:
    erm = train_baseline(envs, replace(ERM, steps=150), seed=0)
    # colour agrees with the label 85 % of the time in training, 10 % in test
    assert erm.train > 0.8 and erm.test < 0.4
    base = chance(envs)
    assert abs(base.train - 0.5) < 0.05 and abs(base.test - 0.5) < 0.1
