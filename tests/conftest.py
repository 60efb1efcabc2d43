"""Shared test setup: one torch thread (the machine's cores are shared), float64 helpers."""

from __future__ import annotations

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture
def gen() -> torch.Generator:
    """A freshly seeded generator per test, so tests do not depend on each other's draws."""
    return torch.Generator().manual_seed(1234)
