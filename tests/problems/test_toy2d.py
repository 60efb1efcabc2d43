import math

import pytest
import torch

from ridgerider.core import RRSettings, run_search
from ridgerider.core.baselines import gradient_descent
from ridgerider.problems import ParamError, create


@pytest.fixture(scope="module")
def toy():
    return create("toy2d")


def test_shape_of_the_surface(toy):
    h = toy.hessian(torch.zeros(2, dtype=torch.float64))
    values = torch.linalg.eigvalsh(h)
    assert values.tolist() == pytest.approx([-4.0, -1.0])  # a maximum, x the steep direction
    minima = toy.minima()
    local = float(toy.loss(torch.tensor(minima["x+"], dtype=torch.float64)))
    glob = float(toy.loss(torch.tensor(minima["y+"], dtype=torch.float64)))
    assert local == pytest.approx(-1.0)
    assert glob == pytest.approx(-6.25)
    for point in minima.values():
        x = torch.tensor(point, dtype=torch.float64)
        assert torch.linalg.eigvalsh(toy.hessian(x)).min() > 0


def test_gradient_descent_from_a_ring_near_the_origin_finds_only_local_minima(toy):
    found = set()
    for k in range(16):
        angle = (k + 0.5) * 2 * math.pi / 16
        start = 0.05 * torch.tensor([math.cos(angle), math.sin(angle)], dtype=torch.float64)
        theta, _ = gradient_descent(toy, start, lr=0.05, max_steps=5_000, tol=1e-6)
        found.add(toy.solution_key(theta))
    assert found == {"x+", "x-"}


def test_ridge_rider_from_the_maximum_finds_all_four_minima(toy):
    result = run_search(toy, RRSettings(**toy.default_settings()), seed=0)
    keys = {n.solution_key for n in result.solutions}
    assert keys == {"x+", "x-", "y+", "y-"}
    # The low-curvature ridges (eigen-index 1) are the ones that reach the global minima.
    by_first = {n.fingerprint[0][0]: set() for n in result.solutions}
    for n in result.solutions:
        by_first[n.fingerprint[0][0]].add(n.solution_key)
    assert by_first[1] == {"y+", "y-"}
    assert by_first[0] == {"x+", "x-"}


@pytest.mark.parametrize(
    ("params", "field"),
    [({"a": 0.1}, "params"), ({"a": -1}, "a"), ({"zz": 1}, "zz"), ({"c": "x"}, "c")],
)
def test_bad_parameters_name_the_field(params, field):
    with pytest.raises(ParamError) as info:
        create("toy2d", params)
    assert info.value.field == field
