"""Several leaves polished together, each bit for bit as :func:`~ridgerider.core.ridge.polish`.

A solution leaf is finished by gradient descent (``polish_steps`` steps of ``polish_lr``); with
the rides batched (``core.expand_batched``) these steps become most of a claim's time. Here the
leaves of a claim descend in lockstep: one ``Problem.values_and_gradients`` call per step for
all of them (an override computes them batched, the same bits as autograd one point at a time),
finiteness tests, gradient norms (a row's reduction, its own) and the step ``x − lr·g``
(entrywise) for all rows at once; each leaf stops, reports and diverges exactly as alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ridgerider.core.curvature import value_and_gradient
from ridgerider.core.problem import Problem
from ridgerider.core.ridge import OnStep, Polished, is_finite

__all__ = ["batched_method", "polish_many"]

ValuesAndGradients = Callable[[Sequence[Tensor]], tuple[Tensor, Tensor]]


def batched_method(problem: Problem, batched: str, single: str) -> Callable[..., object] | None:
    """``problem.<batched>`` if written beside the ``<single>`` it batches, else ``None``.

    A batched override is only trusted on the class that defines it and the subclasses that
    keep that class's ``<single>``; a subclass that changes ``<single>`` (or an instance that
    patches either) gets ``None``, and the caller loops ``<single>`` instead.
    """
    cls = type(problem)

    def owner(name: str) -> type:
        return next(k for k in cls.__mro__ if name in vars(k))

    patched = getattr(problem, "__dict__", {})
    if batched in patched or single in patched:
        return None
    if issubclass(owner(batched), owner(single)):
        return getattr(problem, batched)  # type: ignore[no-any-return]
    return None


@dataclass
class _Leaf:
    """One leaf's polish in progress (the locals of ``core.ridge.polish``)."""

    x: Tensor
    prev: Tensor
    on_step: OnStep | None
    offset: int
    done: Polished | Exception | None = None


def polish_many(
    problem: Problem,
    thetas: Sequence[Tensor],
    steps: int,
    lr: float,
    on_step: Sequence[OnStep | None],
    offsets: Sequence[int],
    tol: float = 1e-10,
) -> list[Polished | Exception]:
    """``polish(problem.loss, θ, steps, lr, on_step=…, offset=…)`` of every θ, in lockstep.

    A leaf whose computation raises gets its exception (the others go on).
    """
    found = batched_method(problem, "values_and_gradients", "loss")
    both: ValuesAndGradients = found or Problem.values_and_gradients.__get__(problem)  # type: ignore[assignment]
    leaves = []
    for t, report, offset in zip(thetas, on_step, offsets, strict=True):
        x = t.detach().clone()
        leaves.append(_Leaf(x, x, report, offset))
    for taken in range(steps):
        active = [x for x in leaves if x.done is None]
        if not active:
            break
        try:
            values, grads = both([x.x for x in active])
        except Exception:  # whose: each alone
            for leaf in active:
                _alone(problem, leaf, taken, lr, tol)
            continue
        _step(active, values, grads, taken, lr, tol)
    return [_last(problem, x, steps) for x in leaves]


def _step(
    active: list[_Leaf], values: Tensor, grads: Tensor, taken: int, lr: float, tol: float
) -> None:
    """One polish step of every active leaf (``polish``'s loop body, row by row)."""
    xs = torch.stack([x.x for x in active])
    finite = (torch.isfinite(xs).all(dim=1) & torch.isfinite(grads).all(dim=1)).tolist()
    norms = torch.linalg.vector_norm(grads, dim=1).tolist()
    moved = xs - lr * grads
    for k, (leaf, value) in enumerate(zip(active, values.tolist(), strict=True)):
        if not (math.isfinite(value) and finite[k]):
            leaf.done = Polished(leaf.prev.clone(), max(taken - 1, 0), True)
            continue
        try:
            if leaf.on_step is not None and taken:
                leaf.on_step(leaf.offset + taken, value)
        except Exception as exc:
            leaf.done = exc
            continue
        if norms[k] <= tol:
            leaf.done = Polished(leaf.x.clone(), taken, False)
            continue
        leaf.prev, leaf.x = leaf.x, moved[k]


def _last(problem: Problem, leaf: _Leaf, steps: int) -> Polished | Exception:
    """``polish``'s ending for a leaf that took every step: the last loss, its report."""
    if leaf.done is not None:
        return leaf.done
    try:
        last = float(problem.loss(leaf.x))
        if steps and not is_finite(leaf.x, last):
            return Polished(leaf.prev.clone(), steps - 1, True)
        if leaf.on_step is not None and steps:
            leaf.on_step(leaf.offset + steps, last)
    except Exception as exc:
        return exc
    return Polished(leaf.x.clone(), steps, False)


def _alone(problem: Problem, leaf: _Leaf, taken: int, lr: float, tol: float) -> None:
    """Step ``taken`` of one leaf alone (its batched step raised): autograd's gradient."""
    try:
        value, g = value_and_gradient(problem.loss, leaf.x)
    except Exception as exc:
        leaf.done = exc
        return
    _step([leaf], value[None], g[None], taken, lr, tol)
