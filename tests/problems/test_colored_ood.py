"""The colored problems' side of ``method="ood"``: environments, head and closed-form Hessian."""

from __future__ import annotations

import pytest
import torch

from ridgerider.problems import create


@pytest.mark.parametrize("hidden", ["5,4", "3", ""])
def test_closed_form_head_hessian_is_autograd_s(hidden: str) -> None:
    problem = create("colored-digits", {"hidden": hidden, "weight_decay": 0.01, "start": "init"})
    noise = torch.randn(problem.n_params, generator=torch.Generator().manual_seed(1))
    theta = problem.start() + 0.3 * noise.double()
    head = problem.head_slice()
    hidden_last = int(hidden.split(",")[-1]) if hidden else 0
    assert head.stop == problem.n_params and head.stop - head.start == 3 * hidden_last + 2 + (
        2 * 128 if not hidden else 0
    )
    for i, got in enumerate(problem.head_hessians(theta)):

        def env_loss(r: torch.Tensor, i: int = i) -> torch.Tensor:
            return problem.environment_losses(torch.cat([theta[: head.start], r]))[i]

        want = torch.autograd.functional.hessian(env_loss, theta[head])
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)


def test_environment_losses_average_to_nearly_the_pooled_loss() -> None:
    problem = create("colored-digits", {"hidden": "4"})
    theta = problem.start()
    first, second = problem.environment_losses(theta)
    # train1 keeps one image more than train2: the pooled mean weighs them almost equally.
    assert float((first + second) / 2) == pytest.approx(float(problem.loss(theta)), rel=1e-3)
