"""Batched UpdateRidge and trial losses against one lane at a time: the same bits."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from ridgerider.core import RRSettings
from ridgerider.core.aligned import ALIGN_BYTES
from ridgerider.core.continue_batched import continue_alone, continue_many
from ridgerider.core.curvature import canonical_sign
from ridgerider.core.expand_batched import batched_eigh
from ridgerider.core.polish_batched import batched_method
from ridgerider.core.update_ridge import continuation, update_exact
from ridgerider.problems import create


def _bits(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return (tuple(x.shape), x.detach().contiguous().numpy().tobytes())
    if isinstance(x, float):
        return x.hex() if not math.isnan(x) else "nan"
    if isinstance(x, tuple):
        return tuple(_bits(v) for v in x)
    return x


def _spectra(n: int, lanes: int, seed: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Symmetric matrices, half with a threefold eigenvalue, and previous ridges for each.

    A previous ridge is an even mix of the repeated eigenvalue's eigenvectors (a cluster: the
    continuation is a projection), one eigenvector nudged (a single match) or random.
    """
    g = torch.Generator().manual_seed(seed)
    hs, prevs = [], []
    for k in range(lanes):
        q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
        lam = torch.linspace(-2.0, 3.0, n, dtype=torch.float64)
        if k % 2 == 0:
            lam[1:4] = lam[1]  # a repeated eigenvalue: eigh splits it by rounding only
        hs.append(q @ torch.diag(lam) @ q.T)
        noise = 1e-3 * torch.randn(n, generator=g, dtype=torch.float64)
        prev = [q[:, 1] + q[:, 2] + q[:, 3], q[:, 5] + noise][k % 2]
        if k % 4 == 3:
            prev = torch.randn(n, generator=g, dtype=torch.float64)
        prevs.append(prev / prev.norm())
    return torch.stack(hs), prevs


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_continue_many_is_each_lanes_continuation(seed: int) -> None:
    settings = RRSettings()
    h, prevs = _spectra(12, 18, seed)
    values, vectors = batched_eigh(h)
    got = continue_many(values, vectors, prevs, settings)
    clusters = 0
    for k, (found, prev) in enumerate(zip(got, prevs, strict=True)):
        assert not isinstance(found, Exception)
        want = continuation(values[k].clone(), vectors[k].clone(), prev, settings)
        assert _bits(tuple(found)) == _bits(want), k
        e = found[0]
        assert e.is_contiguous() and e.data_ptr() % ALIGN_BYTES == 0  # as a fresh vector
        clusters += not torch.equal(e.abs(), vectors[k][:, found[3]].abs())
    assert clusters >= 3  # the projection path was taken, not only single eigenvectors


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_continuation_does_not_depend_on_the_eigenvectors_signs(seed: int) -> None:
    """UpdateRidge skips the sign rule: signed, unsigned or flipped columns give the same bits."""
    settings = RRSettings()
    h, prevs = _spectra(12, 18, seed)
    unsigned = batched_eigh(h)
    signed = [canonical_sign(v.clone()) for v in unsigned[1]]  # each laid out as eigh's
    flips = torch.where(torch.arange(12) % 3 == 0, -1.0, 1.0).to(torch.float64)
    assert not all(torch.equal(s, v * flips) for s, v in zip(signed, unsigned[1], strict=True))
    lanes = continue_many(*unsigned, prevs, settings)
    for k, prev in enumerate(prevs):
        want = continuation(unsigned[0][k].clone(), signed[k], prev, settings)
        for vectors in (unsigned[1][k].clone(), (unsigned[1][k] * flips).clone()):
            assert _bits(continuation(unsigned[0][k].clone(), vectors, prev, settings)) == _bits(
                want
            )
        assert _bits(tuple(lanes[k])) == _bits(want), k  # type: ignore[arg-type]


def test_continue_alone_is_update_exact() -> None:
    settings = RRSettings()
    h, prevs = _spectra(10, 6, 3)
    for m, prev in zip(h, prevs, strict=True):

        def hessian(_: torch.Tensor, m: torch.Tensor = m) -> torch.Tensor:
            return m

        theta = torch.zeros(10, dtype=torch.float64)
        got = continue_alone(hessian, theta, prev, settings)
        assert _bits(got) == _bits(update_exact(hessian, theta, prev, settings))
    assert isinstance(continue_alone(lambda _: 1 / 0, theta, prev, settings), ZeroDivisionError)


def test_a_lane_whose_choice_raises_fails_alone() -> None:
    h, prevs = _spectra(8, 4, 4)
    values, vectors = batched_eigh(h)
    bad = RRSettings()
    object.__setattr__(bad, "cluster_tol", None)  # the choice itself raises (a TypeError)
    got = continue_many(values, vectors, prevs, bad)
    assert all(isinstance(x, TypeError) for x in got)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("lever-game", {}),
        ("lever-game", {"payoffs": (1.0, 1.0, 1.0, 0.9)}),
        ("tree-rl", {"depth": 10, "tree_seed": 5555}),
        ("tree-rl", {"depth": 6, "tree_seed": 10}),
        ("toy2d", {}),
    ],
)
def test_batched_losses_are_the_single_bits(name: str, params: dict[str, Any]) -> None:
    problem = create(name, params)
    g = torch.Generator().manual_seed(5)
    for scale in (0.1, 1.0, 10.0):
        for lanes in (1, 5, 37):
            thetas = [
                scale * torch.randn(problem.n_params, generator=g, dtype=torch.float64)
                for _ in range(lanes)
            ]
            losses = problem.losses(thetas).tolist()
            assert [x.hex() for x in losses] == [float(problem.loss(t)).hex() for t in thetas]


def test_a_subclass_loss_is_not_bypassed() -> None:
    problem = create("lever-game", {})
    assert batched_method(problem, "losses", "loss") == problem.losses

    class Other(type(problem)):  # type: ignore[misc]
        def loss(self, theta: torch.Tensor) -> torch.Tensor:
            return theta.sum()

    assert batched_method(Other(problem.params), "losses", "loss") is None
