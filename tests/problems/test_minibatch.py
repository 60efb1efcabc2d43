"""Curvature from seeded minibatches (``RRSettings.hvp_batch``) on the MLP classifiers."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from ridgerider.cli import main
from ridgerider.core.branch import Branch
from ridgerider.core.curvature import dense_hessian
from ridgerider.core.errors import SettingsError
from ridgerider.core.expand import expand
from ridgerider.core.minibatch import batch_indices, check_minibatch, curvature_at
from ridgerider.core.settings import RRSettings
from ridgerider.problems import create

pytest.importorskip("sklearn")
torch.set_num_threads(1)

SMALL = {"hidden": "4", "start": "init"}
RIDE = RRSettings(
    method="approx",
    approx_update="paper",
    approx_steps=1,
    step_rule="fixed",
    alpha=0.02,
    approx_lr_e=0.05,
    n_ridges=2,
    signs="descent",
    max_ride_steps=6,
    max_depth=2,
    end_on_convex=False,
    hvp_batch=64,
)


def test_a_batch_product_is_the_dense_hessian_of_the_batch_loss() -> None:
    problem = create("digits-mlp", SMALL)
    g = torch.Generator().manual_seed(3)
    theta = problem.start() + 0.2 * torch.randn(problem.n_params, generator=g, dtype=torch.float64)
    at = curvature_at(problem, RIDE, seed=11)
    assert at is not None
    idx = batch_indices(problem.n_examples, 64, seed=11, step=4)
    assert idx.numel() == 64 == idx.unique().numel()
    x, y = problem.x_train[idx], problem.y_train[idx]

    def batch_loss(t: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(problem.logits(t, x), y)

    h = dense_hessian(batch_loss, theta)
    v = torch.randn(problem.n_params, 2, generator=g, dtype=torch.float64)
    curv = at(4)
    assert curv.hvp is not None
    op = curv.hvp(theta)
    assert op is not None
    torch.testing.assert_close(op(v), h @ v, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(curv.loss(theta), batch_loss(theta))
    full = dense_hessian(problem.loss, theta)
    assert not torch.allclose(h, full, atol=1e-3)  # it is a batch, not the training set
    # A batch at least the training set's size is the full batch.
    assert curvature_at(problem, RIDE.with_(hvp_batch=problem.n_examples), seed=11) is None


def _child(problem, settings: RRSettings, seed: int) -> Branch:
    root = Branch(problem.start(), None, None, (), seed)
    return expand(problem, settings, root).children[0]


def test_the_same_branch_gives_the_same_node_and_the_full_batch_loss_is_recorded() -> None:
    problem = create("digits-mlp", SMALL)
    child = _child(problem, RIDE, seed=5)
    first = expand(problem, RIDE, child).node
    again = expand(create("digits-mlp", SMALL), RIDE, child).node
    assert torch.equal(first.theta, again.theta)
    assert first.spectrum == again.spectrum and first.losses == again.losses
    assert first.steps == 6
    # The recorded losses are the full training loss at each step of the ride.
    assert first.losses[-1] == pytest.approx(float(problem.loss(first.theta)), rel=1e-12)
    # Another branch seed draws other batches; full-batch curvature rides elsewhere too.
    other = expand(
        problem,
        RIDE,
        Branch(child.theta, child.direction, child.eigenvalue, child.fingerprint, child.seed + 1),
    ).node
    full = expand(problem, RIDE.with_(hvp_batch=0), child).node
    assert not torch.equal(first.theta, other.theta)
    assert not torch.equal(first.theta, full.theta)


def test_a_problem_without_training_examples_refuses_the_setting(tmp_path) -> None:
    toy = create("toy2d", {})
    with pytest.raises(SettingsError) as info:
        check_minibatch(toy, RRSettings(hvp_batch=8))
    assert info.value.field == "hvp_batch"
    check_minibatch(toy, RRSettings())  # 0: full batch, allowed everywhere
    url = f"sqlite:///{tmp_path / 'a.db'}"
    args = ["run", "toy2d", "--setting", "hvp_batch=8", "--quiet", "--database-url", url]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert "hvp_batch" in result.output
