"""Golden trees: refactors must not change what a fixed job computes (see tests/golden)."""

from __future__ import annotations

import json

import pytest
from tests.golden import trees

GOLDEN = json.loads(trees.GOLDEN.read_text())


@pytest.mark.parametrize("name", list(trees.JOBS))
def test_tree_is_unchanged(name: str) -> None:
    why = trees.matches(trees.tree_hash(name), GOLDEN[name])
    assert why is None, (
        f"{name}: the tree changed ({why}); if on purpose, rerun "
        "`python tests/golden/trees.py --write` and say why in the commit"
    )


def test_crossplay_report_is_unchanged() -> None:
    why = trees.matches(trees.crossplay_hash(), GOLDEN["crossplay"])
    assert why is None, why


def test_the_comparison_sees_a_small_change_and_forgives_rounding() -> None:
    """Control: a relative change of 1e-5 in one θ fails, one of 1e-9 (rounding) does not."""
    import torch

    theta = torch.tensor([1.0, 2.0], dtype=torch.float64)
    want = trees._summary([("0+", theta, 0.5)])
    assert trees.matches(trees._summary([("0+", theta * (1 + 1e-9), 0.5)]), want) is None
    assert trees.matches(trees._summary([("0+", theta * (1 + 1e-5), 0.5)]), want) is not None
    assert trees.matches(trees._summary([("0-", theta, 0.5)]), want) == "keys differ"
