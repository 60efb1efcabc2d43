"""Batched exact expansions against ``expand`` one branch at a time: the same bits, every field."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from ridgerider.core import RRSettings, find_mis
from ridgerider.core.aligned import ALIGN_BYTES, aligned_rows
from ridgerider.core.branch import Branch, Node
from ridgerider.core.curvature import symmetric_eigh, value_and_gradient
from ridgerider.core.expand import Expansion, expand
from ridgerider.core.expand_batched import (
    batchable,
    batched_eigh,
    expand_each,
    expand_many,
    hessians_of,
)
from ridgerider.core.polish_batched import polish_many
from ridgerider.core.problem import Problem
from ridgerider.core.ridge import Polished, polish
from ridgerider.core.search import root_branch
from ridgerider.problems import create


def _bits(x: Any) -> Any:
    """A value with its floats and tensors as exact bits (``-0.0``, NaN and all)."""
    if isinstance(x, torch.Tensor):
        return (str(x.dtype), tuple(x.shape), x.detach().contiguous().numpy().tobytes())
    if isinstance(x, float):
        return ("f", x.hex() if not math.isnan(x) else "nan")
    if isinstance(x, list | tuple):
        return tuple(_bits(v) for v in x)
    if isinstance(x, dict):
        return tuple(sorted((k, _bits(v)) for k, v in x.items()))
    return x


def node_bits(node: Node) -> Any:
    """Every field of a node, bit for bit."""
    return _bits([(k, getattr(node, k)) for k in node.__dataclass_fields__])


def branch_bits(branch: Branch) -> Any:
    """Every field of a branch, bit for bit."""
    return _bits([(k, getattr(branch, k)) for k in branch.__dataclass_fields__])


def expansion_bits(e: Expansion) -> Any:
    """A node and its children, bit for bit."""
    return node_bits(e.node), tuple(branch_bits(c) for c in e.children)


def _levels(name: str, params: dict[str, Any], depth: int, **over: Any):  # type: ignore[no-untyped-def]
    """The problem, its settings and the branches of levels 1..depth (expanded one by one)."""
    problem = create(name, params)
    settings = RRSettings(**{**problem.default_settings(), **over})
    level = [root_branch(find_mis(problem), 3)]
    levels = []
    for _ in range(depth):
        level = [c for b in level for c in expand(problem, settings, b).children]
        levels.append(level)
    return problem, settings, levels


def _check(problem, settings, branches: list[Branch]) -> None:  # type: ignore[no-untyped-def]
    assert batchable(problem, settings)
    alone = [expansion_bits(expand(problem, settings, b)) for b in branches]
    together = [expansion_bits(e) for e in expand_many(problem, settings, branches)]
    assert together == alone


CASES = [
    ("lever-game", {}),
    ("tree-rl", {"depth": 6, "tree_seed": 2}),
    ("tree-rl", {"depth": 6, "tree_seed": 10}),
    ("tree-rl", {"depth": 10, "tree_seed": 5555}),
    ("tree-rl", {"depth": 10, "tree_seed": 4}),
    ("tree-rl", {"depth": 10, "tree_seed": 11}),
    ("toy2d", {}),
    ("coord-game", {"classes": "1.0x3,0.6x1"}),
]


@pytest.mark.parametrize(("name", "params"), CASES)
def test_first_level_bit_identical(name: str, params: dict[str, Any]) -> None:
    problem, settings, (first,) = _levels(name, params, 1)
    assert len(first) >= 2
    _check(problem, settings, first)


@pytest.mark.parametrize(
    ("name", "params"), [CASES[0], CASES[1], CASES[3], ("tree-rl", {"depth": 10, "tree_seed": 10})]
)
def test_deeper_branches_bit_identical(name: str, params: dict[str, Any]) -> None:
    """The second level, in claims of 8 mixed across parents (as a worker claims them)."""
    problem, settings, (_, second) = _levels(name, params, 2, max_depth=3)
    for start in range(0, min(len(second), 40), 8):
        _check(problem, settings, second[start : start + 8])


def test_leaves_with_polish_and_max_steps_identical() -> None:
    """Max-depth leaves (polished) and rides cut by ``max_ride_steps``."""
    problem, settings, (first,) = _levels("lever-game", {}, 1, max_depth=1, max_ride_steps=3)
    assert {e.node.end_reason for e in expand_many(problem, settings, first)} >= {"max_steps"}
    _check(problem, settings, first)


def test_roots_and_singletons_go_alone() -> None:
    problem = create("lever-game", {})
    settings = RRSettings(**problem.default_settings())
    root = root_branch(find_mis(problem), 0)
    (out,) = expand_many(problem, settings, [root])
    assert expansion_bits(out) == expansion_bits(expand(problem, settings, root))
    mixed = [root, *out.children[:3]]
    together = [expansion_bits(e) for e in expand_many(problem, settings, mixed)]
    assert together == [expansion_bits(expand(problem, settings, b)) for b in mixed]


def test_not_batchable_settings() -> None:
    problem = create("lever-game", {})
    base = problem.default_settings()
    assert batchable(problem, RRSettings(**base))
    unbatched = (
        {"method": "approx"},
        {"step_rule": "fixed"},
        {"update": "fixed"},
        {"hvp_batch": 8},
    )
    for over in unbatched:
        assert not batchable(problem, RRSettings(**{**base, **over}))


def test_live_progress_per_branch() -> None:
    problem, settings, (first,) = _levels("tree-rl", {"depth": 6, "tree_seed": 10}, 1)
    seen: list[list[int]] = [[] for _ in first]
    reports = [lambda s, _l, i=i: seen[i].append(s) for i in range(len(first))]
    out = expand_many(problem, settings, first, on_step=reports)
    for steps, e in zip(seen, out, strict=True):
        assert steps == list(range(1, e.node.steps + 1))


def test_a_failing_branch_fails_alone() -> None:
    problem, settings, (first,) = _levels("tree-rl", {"depth": 6, "tree_seed": 10}, 1)
    bad = Branch(first[0].theta[:-1], first[0].direction, -1.0, ((0, 1),), 5)
    out = expand_each(problem, settings, [first[0], bad, *first[1:]])
    assert isinstance(out[1], Exception)
    with pytest.raises(type(out[1])):
        expand(problem, settings, bad)
    good = [expansion_bits(e) for e in out if isinstance(e, Expansion)]
    assert good == [expansion_bits(expand(problem, settings, b)) for b in first]
    with pytest.raises(type(out[1])):
        expand_many(problem, settings, [first[0], bad])


@pytest.mark.parametrize(
    ("name", "params"), [("lever-game", {}), ("tree-rl", {"depth": 10, "tree_seed": 5555})]
)
def test_batched_hessians_and_spectra_are_the_single_bits(
    name: str, params: dict[str, Any]
) -> None:
    problem = create(name, params)
    g = torch.Generator().manual_seed(1)
    thetas = [torch.randn(problem.n_params, generator=g, dtype=torch.float64) for _ in range(7)]
    h = hessians_of(problem)(thetas)
    values, vectors = batched_eigh(h)
    for k, theta in enumerate(thetas):
        one = problem.hessian(theta)
        assert _bits(h[k]) == _bits(one)
        v1, e1 = symmetric_eigh(one, signed=False)  # UpdateRidge's spectrum
        assert _bits(values[k]) == _bits(v1)
        assert _bits(vectors[k].clone()) == _bits(e1)
        assert vectors[k].clone().stride() == e1.stride()


def test_a_subclass_hessian_is_not_bypassed() -> None:
    problem = create("lever-game", {})
    assert hessians_of(problem) == problem.hessians

    class Other(type(problem)):  # type: ignore[misc]
        def hessian(self, theta: torch.Tensor) -> torch.Tensor:
            return torch.zeros(theta.numel(), theta.numel(), dtype=theta.dtype)

    other = Other(problem.params)
    assert hessians_of(other)([torch.ones(other.n_params)]).abs().sum() == 0


def test_row_sorts_and_maxima_are_each_rows_own() -> None:
    """What ``continue_many`` batches: ``argsort`` and ``amax`` of a row, ties and zeros too."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(9, 20, generator=g, dtype=torch.float64).round(decimals=1)
    x[:, ::3] = 0.0
    x[2] = x[2].abs()
    x[5, :10] = -x[5, 10:]
    rows = torch.argsort(x.abs(), dim=1, descending=True).tolist()
    assert rows == [torch.argsort(r.clone().abs(), descending=True).tolist() for r in x]
    assert x.abs().amax(dim=1).tolist() == [float(r.abs().max()) for r in x]


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("lever-game", {}),
        ("tree-rl", {"depth": 10, "tree_seed": 5555}),
        ("tree-rl", {"depth": 6, "tree_seed": 10}),
    ],
)
def test_batched_gradients_are_autograds_bits(name: str, params: dict[str, Any]) -> None:
    problem = create(name, params)
    g = torch.Generator().manual_seed(2)
    for scale in (0.1, 1.0, 10.0):
        thetas = [
            scale * torch.randn(problem.n_params, generator=g, dtype=torch.float64)
            for _ in range(6)
        ]
        values, grads = problem.values_and_gradients(thetas)
        norms = torch.linalg.vector_norm(grads, dim=1).tolist()
        for k, theta in enumerate(thetas):
            v, grad = value_and_gradient(problem.loss, theta)
            assert _bits(values[k]) == _bits(v) and _bits(grads[k].clone()) == _bits(grad)
            assert norms[k] == float(grad.norm())


@pytest.mark.parametrize("lr", [3.0, 1e6])
def test_polish_many_is_polish(lr: float) -> None:
    """Leaves that take every step, that stop on a flat gradient and that diverge."""
    problem = create("lever-game", {})
    g = torch.Generator().manual_seed(3)
    thetas = [torch.randn(problem.n_params, generator=g, dtype=torch.float64) for _ in range(5)]
    thetas.append(problem.analytic_mis())  # a saddle: its gradient is (nearly) zero
    seen: dict[int, list[tuple[int, float]]] = {}
    reports = [lambda s, v, i=i: seen.setdefault(i, []).append((s, v)) for i in range(6)]
    out = polish_many(problem, thetas, 40, lr, reports, [7] * 6, tol=1e-3)
    for i, theta in enumerate(thetas):
        alone: list[tuple[int, float]] = []
        ref = polish(
            problem.loss,
            theta,
            40,
            lr,
            tol=1e-3,
            on_step=lambda s, v, alone=alone: alone.append((s, v)),
            offset=7,
        )
        got = out[i]
        assert isinstance(got, Polished)
        assert (_bits(got.theta), got.steps, got.diverged) == (
            _bits(ref.theta),
            ref.steps,
            ref.diverged,
        )
        assert seen.get(i, []) == alone


def test_settings_with_a_huge_polish_step_identical() -> None:
    problem, settings, (first,) = _levels("lever-game", {}, 1, max_depth=1, polish_lr=1e6)
    _check(problem, settings, first)


class _Quartic(Problem):
    """``Σθ⁴``: gradient descent with a large step leaves the finite numbers."""

    name = "quartic"

    @property
    def n_params(self) -> int:
        return 3

    def loss(self, theta: torch.Tensor) -> torch.Tensor:
        return (theta**4).sum()

    def metrics(self, theta: torch.Tensor) -> dict[str, Any]:
        return {}


def test_polish_many_diverges_as_polish() -> None:
    problem = _Quartic()
    thetas = [torch.full((3,), x, dtype=torch.float64) for x in (0.01, 0.5, 2.0, 30.0)]
    out = polish_many(problem, thetas, 60, 0.5, [None] * 4, [0] * 4)
    assert any(isinstance(o, Polished) and o.diverged for o in out)
    for got, theta in zip(out, thetas, strict=True):
        ref = polish(problem.loss, theta, 60, 0.5)
        assert isinstance(got, Polished)
        assert (_bits(got.theta), got.steps, got.diverged) == (
            _bits(ref.theta),
            ref.steps,
            ref.diverged,
        )


def test_aligned_rows_are_laid_out_like_fresh_tensors() -> None:
    x = torch.arange(5 * 3 * 7, dtype=torch.float64).reshape(5, 3, 7)
    for row, ref in zip(aligned_rows(x), x, strict=True):
        fresh = ref.clone()
        assert row.is_contiguous() and row.stride() == fresh.stride()
        assert row.data_ptr() % ALIGN_BYTES == 0 and torch.equal(row, ref)
    cols = [m.mT for m in aligned_rows(x.mT)]  # column-major rows, as eigh's vectors
    assert all(c.stride() == (1, 3) and torch.equal(c, r) for c, r in zip(cols, x, strict=True))
