"""Shared test setup: one torch thread (the machine's cores are shared), float64 helpers."""

from __future__ import annotations

import os

import pytest
import torch

torch.set_num_threads(1)


MAX_XDIST_WORKERS = 4
"""``-n auto`` (pyproject's addopts) runs one test process per core, at most this many: the
end-to-end tests start services and workers of their own, and more at once only wait longer."""


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """How many processes ``-n auto`` starts (see :data:`MAX_XDIST_WORKERS`)."""
    return max(1, min(MAX_XDIST_WORKERS, os.cpu_count() or 1))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``ray`` and the benchmark scripts' runs share one test process, in turn.

    (``--dist loadgroup``.) A local Ray started while another runs on the machine connects to
    it instead (measured: ``ray.init(num_cpus=...)`` then refuses), so Ray tests must not
    overlap; and a Ray whose workers start while benchmark scripts keep both cores busy once
    rode nothing for 300 s, so those wait for each other too.
    """
    for item in items:
        if item.get_closest_marker("ray") is not None or item.path.name.startswith(
            "test_benchmark"
        ):
            item.add_marker(pytest.mark.xdist_group("ray-and-benchmarks"))


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
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # no developer's worker pool
    monkeypatch.setenv("RIDGERIDER_CONFIG", "")
    for name in (
        "RIDGERIDER_DATABASE_URL_FILE",
        "RIDGERIDER_REDIS_URL",
        "RIDGERIDER_REDIS_URL_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
