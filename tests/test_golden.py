"""Golden trees: refactors must not change what a fixed job computes (see tests/golden)."""

from __future__ import annotations

import json

import pytest
from tests.golden import trees

GOLDEN = json.loads(trees.GOLDEN.read_text())


@pytest.mark.parametrize("name", list(trees.JOBS))
def test_tree_is_unchanged(name: str) -> None:
    assert trees.tree_hash(name) == GOLDEN[name], (
        f"{name}: the tree changed; if on purpose, rerun `python tests/golden/trees.py --write` "
        "and say why in the commit"
    )


def test_crossplay_report_is_unchanged() -> None:
    assert trees.crossplay_hash() == GOLDEN["crossplay"]


def test_the_hash_sees_a_one_ulp_change_of_theta() -> None:
    """Control: the digest is sensitive to θ's last bit, so equal hashes mean equal bits."""
    import torch

    theta = torch.tensor([1.0, 2.0], dtype=torch.float64)
    nudged = theta.clone()
    nudged[1] = torch.nextafter(nudged[1], torch.tensor(3.0, dtype=torch.float64))
    assert trees._digest([("0+", theta, 0.5)]) != trees._digest([("0+", nudged, 0.5)])
