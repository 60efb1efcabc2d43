"""A compacted branch's ridge, recomputed from its parent's end θ and seed, is expand's."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from ridgerider.core.expand import expand, restore
from ridgerider.core.search import branch_point, root_branch
from ridgerider.core.settings import RRSettings
from ridgerider.problems import create

CASES = [
    ("tree-rl", {"depth": 6, "tree_seed": 2}, {"method": "exact"}),
    ("tree-rl", {"depth": 6, "tree_seed": 2}, {"method": "approx"}),
    # approx on minibatch curvature (hvp_batch), the digits' default search, cut short
    ("digits-mlp", {"hidden": "6"}, {"max_ride_steps": 4, "polish_steps": 0, "max_depth": None}),
]


@pytest.mark.parametrize(("name", "params", "overrides"), CASES)
def test_restore_recomputes_the_ridges_bit_for_bit(
    name: str, params: dict, overrides: dict
) -> None:
    problem = create(name, params)
    settings = RRSettings(**{**problem.default_settings(), **overrides})
    mis = branch_point(problem, settings, None, torch.Generator().manual_seed(3))
    root = expand(problem, settings, root_branch(mis, 3))
    assert root.children
    grand = expand(problem, settings, root.children[0]).children  # a ridden parent's children
    cache: dict = {}
    for child in [*root.children, *grand]:
        assert child.parent_seed is not None
        stub = replace(child, direction=None)
        assert stub.compacted
        with pytest.raises(ValueError, match="compacted"):
            expand(problem, settings, stub)
        back = restore(problem, settings, stub, cache)
        assert back.direction is not None and torch.equal(back.direction, child.direction)
        assert back.eigenvalue == child.eigenvalue
    orphan = replace(root.children[0], direction=None, parent_seed=None)
    with pytest.raises(ValueError, match="parent seed"):
        restore(problem, settings, orphan)
