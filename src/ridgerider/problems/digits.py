"""``digits-mlp``: an MLP classifier on scikit-learn's bundled 8×8 digits (paper §4, MNIST).

The data are scikit-learn's ``load_digits`` (1,797 images, 64 pixels scaled to [0, 1], 10
classes; bundled with the package, never downloaded). ``image_size`` resamples them bilinearly
(28: MNIST's 28×28 = 784 inputs, so the paper's 784-128-128-10 network, 118,282 parameters,
runs on them without a download). A seeded, stratified split keeps ``test_fraction`` of the
images for testing. The network, loss, starting point and HVP are those of
:mod:`ridgerider.problems.mlp`.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field

from ridgerider.problems.mlp import (
    TRAINING_SEARCH,
    MLPClassifier,
    MLPParams,
    resample,
    stratified_split,
)

__all__ = ["DigitsMLP", "DigitsMLPParams"]


class DigitsMLPParams(MLPParams):
    """The digits split on top of the MLP parameters."""

    split_seed: int = Field(0, ge=0, le=2**31 - 1, description="seed of the train/test split")
    test_fraction: float = Field(0.2, gt=0, lt=1, description="share of images held out")
    image_size: int = Field(
        8,
        ge=8,
        le=32,
        description="side of the input images: the 8x8 digits resampled bilinearly "
        "(28 gives MNIST's 784 inputs, for the paper's 784-128-128-10 network)",
    )


class DigitsMLP(MLPClassifier):
    """Full-batch tanh MLP on scikit-learn's 8×8 digits (see the module docstring)."""

    name = "digits-mlp"
    summary = "tanh MLP on scikit-learn's bundled 8x8 digits, cross-entropy (paper's MNIST case)"
    Params = DigitsMLPParams
    params: DigitsMLPParams

    def __init__(self, params: DigitsMLPParams) -> None:
        super().__init__(params)
        from sklearn.datasets import load_digits

        data = load_digits()
        x = resample(torch.as_tensor(data.data, dtype=torch.float64) / 16.0, params.image_size)
        y = torch.as_tensor(data.target, dtype=torch.long)
        train, test = stratified_split(y, params.test_fraction, params.split_seed)
        self._setup(x[train], y[train], x[test], y[test], 10)

    def default_settings(self) -> dict[str, Any]:
        """A search that trains the network (``mlp.TRAINING_SEARCH``): six rides, polished."""
        return dict(TRAINING_SEARCH)
