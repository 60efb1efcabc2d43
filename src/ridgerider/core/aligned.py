"""Rows of a batch in memory laid out like fresh tensors, for per-row BLAS calls.

Batched code that must give, row by row, exactly the bits of a one-point computation runs the
BLAS calls of that computation (dot, matrix-vector and matrix products) per row. MKL may pick
its kernel by the operands' alignment as well as by their shapes and strides, so each row is
handed over as the one-point code would hand it: contiguous, with its own shape, starting on a
64-byte boundary as a fresh CPU tensor does. One buffer and one copy serve the whole batch (a
``clone`` per row would do the same at one allocation and one call per row).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["ALIGN_BYTES", "aligned_rows"]

ALIGN_BYTES = 64
"""The CPU allocator's alignment of a fresh tensor (``c10::alloc_cpu``)."""


def aligned_rows(x: Tensor) -> tuple[Tensor, ...]:
    """``x[0], x[1], …`` as contiguous tensors, each starting on a 64-byte boundary."""
    b, per = x.shape[0], x[0].numel()
    step = -(-per * x.element_size() // ALIGN_BYTES) * ALIGN_BYTES // x.element_size()
    buf = torch.empty(b, step, dtype=x.dtype, device=x.device)
    rows = buf[:, :per]
    rows.copy_(x.reshape(b, per))
    return rows.view(b, *x.shape[1:]).unbind(0)
