"""Shared test setup: one torch thread (the machine's cores are shared), float64 helpers."""

from __future__ import annotations

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture
def gen() -> torch.Generator:
    """A freshly seeded generator per test, so tests do not depend on each other's draws."""
    return torch.Generator().manual_seed(1234)


@pytest.fixture(autouse=True)
def _archive_in_tmp(tmp_path, monkeypatch):
    """Commands that store jobs write to a per-test SQLite file, never the user's data folder.

    No config file either (a developer's ``~/.config/ridgerider/config.toml`` never leaks in).
    """
    monkeypatch.setenv("RIDGERIDER_DATABASE_URL", f"sqlite:///{tmp_path / 'archive.db'}")
    monkeypatch.setenv("RIDGERIDER_CONFIG", "")
    for name in (
        "RIDGERIDER_DATABASE_URL_FILE",
        "RIDGERIDER_REDIS_URL",
        "RIDGERIDER_REDIS_URL_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
