"""Groups of equal eigenvalues: GetRidges' ``one_per_group`` on whole and partial spectra.

A ridge's eigen-index is its position in the ascending spectrum. With one ridge per group of
repeated eigenvalues, each group is represented by its first index, which counts every copy of
every lower eigenvalue; so a partial spectrum (approximate GetRidges, the ``k`` lowest pairs)
gives the same indices as the whole one only once it holds every copy of the groups below the
last one used (:func:`groups_fixed`).
"""

from __future__ import annotations

from torch import Tensor

__all__ = ["group_starts", "groups_fixed"]


def group_starts(
    values: Tensor, idx: Tensor, repeat_tol: float, scale: float | None = None
) -> list[int]:
    """First index of each group of (relatively) equal eigenvalues among ``idx``.

    ``values`` is ascending; consecutive eigenvalues more than ``repeat_tol·scale`` apart start
    a new group. ``scale`` defaults to the largest ``|value|``: the spectral radius for a whole
    spectrum. Pass ``‖H‖`` for a partial one, so both are grouped alike.
    """
    if scale is None:
        scale = float(values.abs().max()) if values.numel() else 1.0
    starts: list[int] = []
    last: float | None = None
    for i in idx.tolist():
        v = float(values[i])
        if last is None or abs(v - last) > repeat_tol * max(scale, 1e-300):
            starts.append(i)
        last = v
    return starts


def groups_fixed(
    values: Tensor, count: int, repeat_tol: float, scale: float, zero_tol: float, margin: float
) -> bool:
    """Whether the ``k`` lowest eigenvalues ``values`` fix the first indices of ``count`` groups.

    ``values`` must hold every copy of every eigenvalue below ``values[-1] − margin`` (what
    :func:`~ridgerider.core.eigensolver.bottom_eigenpairs` certifies, with ``margin`` its
    threshold). The first index of the ``j``-th group below ``-zero_tol`` is fixed once every
    lower group is complete, i.e. lies below that bound. Fewer than ``count`` groups are fixed
    when the bound reaches ``-zero_tol`` (no further negative eigenvalue exists).
    """
    negative = (values < -zero_tol).nonzero().flatten()
    starts = group_starts(values, negative, repeat_tol, scale)
    if len(starts) < count:
        return bool(values.numel() and float(values[-1]) - margin >= -zero_tol)
    if count <= 1:
        return True
    below_last = float(values[starts[count - 1] - 1])  # the top of the group before the last
    return below_last < float(values[-1]) - margin
