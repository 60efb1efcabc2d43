"""``mnist-mlp``: the paper's MNIST experiment on IDX files the user provides (no download).

``data_dir`` must hold the four standard files, plain or gzipped::

    train-images-idx3-ubyte  train-labels-idx1-ubyte  t10k-images-idx3-ubyte  t10k-labels-idx1-ubyte

Pixels are scaled to [0, 1] and flattened (784 inputs for 28×28 images). The network, loss,
metrics, starting point and HVP are the shared MLP's (:mod:`ridgerider.problems.mlp`), as for
``digits-mlp``; the paper's network is the default, two hidden layers of 128. The loss is
full-batch over the first ``n_train`` training images of a seeded permutation (``0``: all), so it
is deterministic.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import Field

from ridgerider.problems.base import ParamError
from ridgerider.problems.mlp import TRAINING_SEARCH, MLPClassifier, MLPParams

__all__ = ["IDXError", "MnistMLP", "MnistMLPParams", "find_idx", "read_idx"]

_IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


class IDXError(ValueError):
    """A missing or malformed IDX file."""


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped): the array with its declared shape and type.

    The format: two zero bytes, a type code (0x08 unsigned byte … 0x0E float64), the number of
    dimensions, each dimension as a big-endian 32-bit integer, then the data in C order.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise IDXError(f"{path}: not an IDX file (bad magic number)")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_TYPES:
        raise IDXError(f"{path}: unknown IDX data type 0x{code:02x}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IDXError(f"{path}: truncated header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = _IDX_TYPES[code]
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if len(raw) - header != count * dtype.itemsize:
        raise IDXError(
            f"{path}: {len(raw) - header} data bytes, expected {count * dtype.itemsize} "
            f"for shape {shape}"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def find_idx(data_dir: str | Path, stem: str) -> Path:
    """The file ``stem`` or ``stem.gz`` in ``data_dir``; :class:`IDXError` if absent.

    Also accepts ``.`` for ``-`` before ``idx``, as some mirrors name the files.
    """
    base = Path(data_dir)
    for name in (stem, stem.replace("-idx", ".idx")):
        for candidate in (base / name, base / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    raise IDXError(f"{base}: missing {stem} (or {stem}.gz)")


class MnistMLPParams(MLPParams):
    """Where the IDX files are and how much of them to use."""

    data_dir: str = Field(..., min_length=1, description="directory holding the MNIST IDX files")
    n_train: int = Field(10000, ge=0, le=10_000_000, description="training images used (0: all)")
    n_test: int = Field(0, ge=0, le=10_000_000, description="test images used (0: all)")
    subset_seed: int = Field(0, ge=0, le=2**31 - 1, description="seed of the subset choice")


class MnistMLP(MLPClassifier):
    """Full-batch tanh MLP on MNIST read from IDX files (see the module docstring)."""

    name = "mnist-mlp"
    path_params = ("data_dir",)
    summary = "tanh MLP on MNIST from local IDX files (param data_dir), cross-entropy (paper)"
    Params = MnistMLPParams
    params: MnistMLPParams

    def default_settings(self) -> dict[str, Any]:
        """``digits-mlp``'s search (``mlp.TRAINING_SEARCH``); not measured on MNIST itself."""
        return dict(TRAINING_SEARCH)

    def __init__(self, params: MnistMLPParams) -> None:
        super().__init__(params)
        try:
            arrays = self._read(params.data_dir)
        except (OSError, IDXError) as exc:  # the CLI's exit 2 and the API's 422 name data_dir
            raise ParamError(self.name, "data_dir", str(exc)) from None
        g = torch.Generator().manual_seed(params.subset_seed)
        x_train, y_train = self._subset(arrays, "train", params.n_train, g)
        x_test, y_test = self._subset(arrays, "test", params.n_test, g)
        n_classes = int(max(int(y_train.max()), int(y_test.max()))) + 1
        self._setup(x_train, y_train, x_test, y_test, max(n_classes, 2))

    @staticmethod
    def _read(data_dir: str) -> dict[str, np.ndarray]:
        """The four IDX arrays of ``data_dir``; :class:`IDXError` if any is missing or wrong."""
        arrays = {key: read_idx(find_idx(data_dir, stem)) for key, stem in _FILES.items()}
        for split in ("train", "test"):
            images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
            if images.ndim < 2 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
                raise IDXError(f"{split}: images {images.shape} do not match labels {labels.shape}")
        if arrays["train_images"].shape[1:] != arrays["test_images"].shape[1:]:
            raise IDXError("train and test images differ in shape")
        return arrays

    @staticmethod
    def _subset(
        arrays: dict[str, np.ndarray], split: str, count: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        images = torch.from_numpy(arrays[f"{split}_images"].astype(np.float64))
        labels = torch.from_numpy(arrays[f"{split}_labels"].astype(np.int64))
        images = images.reshape(images.shape[0], -1) / 255.0
        if 0 < count < images.shape[0]:
            idx = torch.sort(torch.randperm(images.shape[0], generator=generator)[:count]).values
            images, labels = images[idx], labels[idx]
        return images, labels
