"""Shared by the MNIST-style problem tests: IDX files they write, and a plain fit to compare with.

Imported by module name (``tests/problems`` is on ``sys.path`` while its tests run).
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path
from typing import Any

import numpy as np
import torch


def write_idx(path: Path, array: np.ndarray, code: int = 0x08, gz: bool = False) -> None:
    """``array`` as an IDX file (``0x08``: unsigned bytes, ``0x0D``: float32), gzipped if asked."""
    header = bytes([0, 0, code, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    data = header + array.astype(">u1" if code == 0x08 else ">f4").tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as fh:
            fh.write(data)
    else:
        path.write_bytes(data)


def fit_lbfgs(problem: Any, max_iter: int) -> torch.Tensor:
    """Ordinary training: L-BFGS on the loss from the seeded initialisation (seed 0, scale 1)."""
    x = problem.init_params(torch.Generator().manual_seed(0), 1.0).requires_grad_(True)
    opt = torch.optim.LBFGS([x], max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        value = problem.loss(x)
        value.backward()
        return value

    opt.step(closure)
    return x.detach()
