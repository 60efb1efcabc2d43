"""Golden trees: refactors must not change what a fixed job computes (see tests/golden)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from tests.golden import trees

RECORDED = trees.recorded()
HERE = trees.platform_key()


def check(name: str, got: dict[str, Any]) -> None:
    """``got`` matches this platform's record; elsewhere any record, or the test skips."""
    if HERE in RECORDED:
        why = trees.matches(got, RECORDED[HERE][name])
        assert why is None, (
            f"{name}: the tree changed on {HERE} ({why}); if on purpose, rerun "
            "`python tests/golden/trees.py --write` and say why in the commit"
        )
        return
    if any(trees.matches(got, record[name]) is None for record in RECORDED.values()):
        return
    pytest.skip(
        f"no golden trees recorded for {HERE!r}, and {name} differs from every record "
        f"({', '.join(RECORDED)}): record them with `python tests/golden/trees.py --write` "
        "on a commit whose trees are known good"
    )


@pytest.mark.parametrize("name", list(trees.JOBS))
def test_tree_is_unchanged(name: str) -> None:
    check(name, trees.tree_hash(name))


def test_crossplay_report_is_unchanged() -> None:
    check("crossplay", trees.crossplay_hash())


def test_this_platform_has_a_record_or_says_so() -> None:
    """The key names the CPU and torch's kernels; records are keyed by it (or the legacy one)."""
    assert "torch" in HERE and torch.backends.cpu.get_cpu_capability() in HERE
    assert set(RECORDED) - {trees.LEGACY} == {k for k in RECORDED if " torch " in k}


def test_the_comparison_sees_a_small_change_and_forgives_rounding() -> None:
    """Control: a relative change of 1e-5 in one θ fails, one of 1e-9 (rounding) does not."""
    import torch

    theta = torch.tensor([1.0, 2.0], dtype=torch.float64)
    want = trees._summary([("0+", theta, 0.5)])
    assert trees.matches(trees._summary([("0+", theta * (1 + 1e-9), 0.5)]), want) is None
    assert trees.matches(trees._summary([("0+", theta * (1 + 1e-5), 0.5)]), want) is not None
    assert trees.matches(trees._summary([("0-", theta, 0.5)]), want) == "keys differ"
