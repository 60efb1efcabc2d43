"""Exact UpdateRidge for a batch of spectra: each lane's :func:`continuation`, the same bits.

``core.update_ridge.continuation`` picks, from one spectrum, the eigenvector of largest
|overlap| with the previous ridge (or the projection on a cluster of close eigenvalues). A
batched ride (``core.expand_batched``) has one spectrum per lane and used to do that lane by
lane: a handful of small tensor calls each (a row's values, vectors and overlaps, a column
times its sign), which was the largest share of its Python. Here the choice itself runs on
Python lists of the same floats, and the usual outcome, a single eigenvector, is taken for
every lane in one gather and one sign product (entrywise: the same bits as the lane's own
``vectors[:, i] * ±1``), each row laid out as a fresh vector (``core.aligned``) for the BLAS
products it meets next. The overlaps ``Vᵀe`` stay per lane (BLAS; their rounding depends on
how a call is blocked), and so does a cluster's projection. The rule itself is
``update_ridge``'s, shared with the one-branch ride: ``cluster`` picks the eigenvectors,
``projection`` projects on several.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from ridgerider.core.aligned import aligned_rows
from ridgerider.core.settings import RRSettings
from ridgerider.core.update_ridge import cluster, projection, update_exact

Continued = tuple[Tensor, float, float, int]
"""``continuation``'s result: the direction, its eigenvalue, the overlap, the spectral rank."""

__all__ = ["Continued", "continue_alone", "continue_many"]


def continue_many(
    values: Tensor, vectors: Tensor, prevs: Sequence[Tensor], settings: RRSettings
) -> list[Continued | Exception]:
    """``continuation(values[k], vectors[k], prevs[k], settings)`` for every lane ``k``.

    ``values`` ``[B, n]`` and ``vectors`` ``[B, n, n]`` are ``batched_eigh``'s (ascending
    values; the columns' signs do not matter). A lane whose choice raises gets its exception.
    """
    own = [m.mT for m in aligned_rows(vectors.mT)]  # laid out as symmetric_eigh's
    overlaps = torch.stack([v.T @ e for v, e in zip(own, prevs, strict=True)])
    orders = torch.argsort(overlaps.abs(), dim=1, descending=True).tolist()
    ovs, vals, tops = overlaps.tolist(), values.tolist(), values.abs().amax(dim=1).tolist()
    out: list[Continued | Exception | None] = [None] * len(prevs)
    singles: list[int] = []
    picked: list[int] = []
    signs: list[float] = []
    for k in range(len(prevs)):
        try:
            members, mass = cluster(orders[k], ovs[k], vals[k], tops[k], settings)
            i = members[0]
            if len(members) > 1:
                out[k] = projection(values[k], own[k], overlaps[k], members, mass)
                continue
        except Exception as exc:  # this lane's alone
            out[k] = exc
            continue
        singles.append(k)
        picked.append(i)
        signs.append(1.0 if ovs[k][i] >= 0 else -1.0)
    if singles:
        sign = torch.tensor(signs, dtype=vectors.dtype, device=vectors.device)[:, None]
        rows = aligned_rows(vectors[singles, :, picked] * sign)
        for k, i, e in zip(singles, picked, rows, strict=True):
            out[k] = (e, vals[k][i], abs(ovs[k][i]), i)
    return [x for x in out if x is not None]


def continue_alone(
    hessian: Callable[[Tensor], Tensor], theta: Tensor, e_prev: Tensor, settings: RRSettings
) -> Continued | Exception:
    """One lane's UpdateRidge computed alone (``update_exact``), or the exception it raises."""
    try:
        return update_exact(hessian, theta, e_prev, settings)
    except Exception as exc:
        return exc
