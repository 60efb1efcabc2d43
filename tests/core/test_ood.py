"""``method="ood"``: L1 and L2 against hand computations, refinement, determinism, integration."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from click.testing import CliRunner
from torch import Tensor

from ridgerider.cli.main import main
from ridgerider.core import Problem, RRSettings, run_search
from ridgerider.core.errors import SettingsError
from ridgerider.core.ood import head_hessians, refine_direction
from ridgerider.core.ood_losses import OODWeights, correlation, l1_loss, l2_loss
from ridgerider.core.problem import supports_environments
from ridgerider.problems import create

HEAD = slice(9, 20)


class TwoEnvNet(Problem):
    """A 3-3-2 tanh net on two small environments (the head: hidden biases and output layer)."""

    name = "two-env-net"

    def __init__(self, same: bool) -> None:
        g = torch.Generator().manual_seed(0)
        self.data = []
        for _ in range(2):
            if same and self.data:
                self.data.append(self.data[0])
                continue
            x = torch.randn(16, 3, generator=g, dtype=torch.float64)
            y = torch.randint(0, 2, (16,), generator=g)
            self.data.append((x, y))

    @property
    def n_params(self) -> int:
        return 20

    def _loss(self, theta: Tensor, x: Tensor, y: Tensor) -> Tensor:
        h = torch.tanh(x @ theta[:9].reshape(3, 3).T + theta[9:12])
        z = h @ theta[12:18].reshape(2, 3).T + theta[18:20]
        return torch.nn.functional.cross_entropy(z, y)

    def loss(self, theta: Tensor) -> Tensor:
        return sum(self.environment_losses(theta)) / 2

    def environment_losses(self, theta: Tensor) -> list[Tensor]:
        return [self._loss(theta, x, y) for x, y in self.data]

    def head_slice(self) -> slice:
        return HEAD

    def metrics(self, theta: Tensor) -> dict[str, Any]:
        return {}


def _theta() -> Tensor:
    return torch.randn(20, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


def _dense(problem: TwoEnvNet, theta: Tensor) -> list[Tensor]:
    """Each environment's head Hessian by ``torch.autograd.functional.hessian``."""
    out = []
    for x, y in problem.data:

        def f(r: Tensor, x: Tensor = x, y: Tensor = y) -> Tensor:
            return problem._loss(torch.cat([theta[:9], r]), x, y)

        out.append(torch.autograd.functional.hessian(f, theta[HEAD]))
    return out


def test_the_engine_head_hessians_are_autograd_s() -> None:
    problem, theta = TwoEnvNet(same=False), _theta()
    for got, want in zip(head_hessians(problem, theta), _dense(problem, theta), strict=True):
        torch.testing.assert_close(got, want)


def test_l1_and_l2_match_a_hand_computation() -> None:
    problem, theta = TwoEnvNet(same=False), _theta()
    h1, h2 = _dense(problem, theta)
    losses = [x.detach() for x in problem.environment_losses(theta)]
    g = torch.Generator().manual_seed(2)
    e = torch.randn(11, generator=g, dtype=torch.float64)
    e = e / e.norm()
    u = torch.randn(11, 3, generator=g, dtype=torch.float64)
    u = u / u.norm(dim=0)
    w = OODWeights(0.5, 2.0, 3.0, 4.0, 5.0)

    def corr(a: Tensor, b: Tensor) -> float:
        return float(a @ b / (a.norm() * b.norm()))

    want = sum(
        -0.5 * abs(corr(h @ e, e)) + 2.0 * float(e @ h @ e) + 3.0 * float(loss)
        for h, loss in zip((h1, h2), losses, strict=True)
    ) + 4.0 * abs(float(e @ (h1 - h2) @ e))
    assert float(l1_loss(losses, [h1, h2], e, w)) == pytest.approx(want, rel=1e-12)
    terms = []
    for k in range(3):
        v = u[:, k]
        c1, c2 = corr(h1 @ v, v) ** 2, corr(h2 @ v, v) ** 2
        q1, q2 = float(v @ h1 @ v), float(v @ h2 @ v)
        terms.append(abs(c1 - c2) / (c1 + c2) + abs(q1 - q2) / (abs(q1) + abs(q2)))
    assert float(l2_loss([h1, h2], u, w)) == pytest.approx(5.0 * sum(terms) / 3, rel=1e-9)


def test_identical_environments_zero_l2_and_eigenvalue_gap() -> None:
    problem, theta = TwoEnvNet(same=True), _theta()
    h1, h2 = _dense(problem, theta)
    zeros = [torch.zeros((), dtype=torch.float64)] * 2
    e = torch.ones(11, dtype=torch.float64) / math.sqrt(11)
    u = torch.eye(11, dtype=torch.float64)[:, :4]
    assert float(l2_loss([h1, h2], u, OODWeights())) == 0.0
    only_gap = OODWeights(beta1=0.0, beta2=0.0, beta3=0.0, beta4=1.0)
    assert float(l1_loss(zeros, [h1, h2], e, only_gap)) == 0.0


def test_correlation_term_is_minus_beta1_per_environment_at_a_common_eigenvector() -> None:
    problem, theta = TwoEnvNet(same=True), _theta()
    h1, h2 = _dense(problem, theta)
    vectors = torch.linalg.eigh(h1).eigenvectors
    zeros = [torch.zeros((), dtype=torch.float64)] * 2
    only_corr = OODWeights(beta1=0.7, beta2=0.0, beta3=0.0, beta4=0.0)
    for i in (0, -1):  # the most negative and the largest eigenvalue
        got = float(l1_loss(zeros, [h1, h2], vectors[:, i], only_corr))
        assert got == pytest.approx(-2 * 0.7, abs=1e-9)  # EPS in the denominators


def test_refinement_approaches_an_eigenvector_of_identical_environments() -> None:
    problem, theta = TwoEnvNet(same=True), _theta()
    h1, h2 = _dense(problem, theta)
    e0 = torch.randn(11, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    before = abs(float(correlation(h1 @ e0, e0)))
    e = refine_direction([h1, h2], e0, RRSettings(method="ood", ood_lr_e=0.02), steps=800)
    after = abs(float(correlation(h1 @ e, e)))
    assert after > max(0.99, before)
    residual = h1 @ e - float(e @ h1 @ e) * e
    assert float(residual.norm()) < 0.15 * float(torch.linalg.matrix_norm(h1, 2))


def test_ood_settings_name_the_field() -> None:
    for field, value in [("ood_ride_steps", 0), ("ood_lr", 0.0), ("ood_beta3", -1.0)]:
        with pytest.raises(SettingsError) as info:
            RRSettings(method="ood", **{field: value})
        assert info.value.field == field


TINY = {"hidden": "4", "data_seed": 1, "init_seed": 1}
FAST = {
    "method": "ood",
    "ood_ridges": 1,
    "ood_ride_steps": 2,
    "ood_inner_steps": 2,
    "ood_refine_steps": 5,
    "ood_mis_steps": 5,
    "ood_mis_tries": 1,
}


def test_a_tiny_colored_digits_search_gives_solutions_with_three_accuracies() -> None:
    problem = create("colored-digits", TINY)
    assert supports_environments(problem) and not supports_environments(create("toy2d", {}))
    result = run_search(problem, RRSettings(**FAST), seed=4)
    assert result.mis.method == "ood"
    assert len(result.nodes) == 3 and len(result.solutions) == 2  # the root and both signs
    for node in result.solutions:
        assert len(node.fingerprint) == 1 and node.steps >= 1
        assert node.theta[: problem.head_slice().start].ne(result.mis.theta[:-14]).any()
        for key in ("train_accuracy", "validation_accuracy", "test_accuracy"):
            assert 0.0 <= node.metrics[key] <= 1.0
    again = run_search(problem, RRSettings(**FAST), seed=4)
    assert [n.fingerprint for n in again.nodes] == [n.fingerprint for n in result.nodes]
    for a, b in zip(again.nodes, result.nodes, strict=True):
        assert torch.equal(a.theta, b.theta) and a.losses == b.losses


def test_ood_on_a_problem_without_environments_is_refused() -> None:
    with pytest.raises(SettingsError) as info:
        run_search(create("toy2d", {}), RRSettings(method="ood"))
    assert info.value.field == "method"
    result = CliRunner().invoke(main, ["run", "toy2d", "--method", "ood", "--quiet"])
    assert result.exit_code == 2, result.output
    assert "--method" in result.output and "ood" in result.output
