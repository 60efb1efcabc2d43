"""Where a branch is computed: the ``device`` setting (``cpu``, ``cuda`` or ``cuda:N``).

:func:`on_device` runs a block of engine code on a device: the problem's tensors and the branch
are moved there once when the block starts (every factory call inside, e.g. an eigensolver's
basis, allocates there too, through ``torch.device`` as a context manager), and the problem's
tensors are moved back when it ends. Seeded random draws stay on the CPU (see
``eigen_basis.random_rows``), so a CUDA run draws the same start vectors as a CPU run.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import torch
from torch import Tensor

from ridgerider.core.errors import SettingsError

__all__ = ["DEVICE_PATTERN", "check_device", "move_tensors", "on_device", "to_device"]

DEVICE_PATTERN = re.compile(r"^(cpu|cuda(:\d{1,2})?)$")


def check_device(name: str) -> torch.device:
    """The ``torch.device`` of a ``device`` setting; :class:`SettingsError` if unusable."""
    if not isinstance(name, str) or not DEVICE_PATTERN.match(name):
        raise SettingsError("device", f"device must be 'cpu', 'cuda' or 'cuda:N', got {name!r}")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise SettingsError(
                "device", f"device must be 'cpu' here: CUDA is not available (got {name!r})"
            )
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise SettingsError("device", f"device must be cuda:0..cuda:{count - 1}, got {name!r}")
    return device


def move_tensors(obj: Any, device: torch.device) -> dict[str, Tensor]:
    """Move every tensor attribute of ``obj`` to ``device`` in place; return the old values."""
    old: dict[str, Tensor] = {}
    for key, value in list(vars(obj).items()):
        if isinstance(value, Tensor) and value.device != device:
            old[key] = value
            setattr(obj, key, value.to(device))
    return old


@contextmanager
def on_device(problem: Any, device: torch.device | str) -> Iterator[torch.device]:
    """Run the block with ``problem``'s tensors and the default device on ``device``."""
    device = torch.device(device)
    if device.type == "cpu":
        yield device
        return
    old = move_tensors(problem, device)
    try:
        with torch.device(device):
            yield device
    finally:
        for key, value in old.items():
            setattr(problem, key, value)


def to_device(item: Any, device: torch.device | str) -> Any:
    """A copy of a dataclass (branch, node) with its tensor fields on ``device``."""
    changes = {k: v.to(device) for k, v in vars(item).items() if isinstance(v, Tensor)}
    return replace(item, **changes) if changes else item
