"""The fixed choices of command options, kept here so showing a command's help imports no engine.

The engine's own lists (``ridgerider.core.settings.ORDERS``, ``ridgerider.problems.presets``)
import torch; ``tests/test_cli_startup.py`` checks these copies against them.
"""

from __future__ import annotations

__all__ = ["CROSSPLAY_PRESETS", "ORDERS", "PRESETS"]

ORDERS = ("bfs", "dfs", "priority", "random")
"""Search orders (``ridgerider.core.settings.ORDERS``)."""

PRESETS = ("paper-fig2", "paper-fig3", "paper-fig6", "paper-mnist")
"""Preset names (``ridgerider.problems.presets.PRESETS``), sorted."""

CROSSPLAY_PRESETS = ("paper-fig6",)
"""The presets that state a number of cross-play replicates."""
