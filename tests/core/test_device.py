"""The ``device`` setting: validation, moving tensors once per branch, and CUDA runs (if any)."""

import pytest
import torch
from click.testing import CliRunner

from ridgerider.cli import main
from ridgerider.core import RRSettings, find_mis
from ridgerider.core.branch import Branch
from ridgerider.core.device import check_device, move_tensors, on_device, to_device
from ridgerider.core.expand import expand
from ridgerider.core.search import root_branch
from ridgerider.problems import create

CUDA = torch.cuda.is_available()


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", "CPU", "", "cuda:123"])
def test_bad_device_names_the_field(bad):
    with pytest.raises(ValueError, match=r"^device must be"):
        RRSettings(device=bad)


@pytest.mark.skipif(CUDA, reason="checks the error raised where CUDA is missing")
def test_cuda_without_cuda_is_refused_clearly():
    with pytest.raises(ValueError, match="device must be 'cpu' here: CUDA is not available"):
        RRSettings(device="cuda")


def test_device_round_trips_through_dict():
    s = RRSettings(device="cpu")
    assert RRSettings.from_dict(s.to_dict()) == s
    assert check_device("cpu") == torch.device("cpu")


class _Holder:
    def __init__(self) -> None:
        self.x = torch.ones(3)
        self.y = torch.zeros(2)
        self.name = "kept"


def test_on_device_moves_problem_tensors_and_restores_them():
    """On the meta device (always present): tensors move in, factories allocate there, then back."""
    holder = _Holder()
    x, y = holder.x, holder.y
    with on_device(holder, "meta") as device:
        assert holder.x.device == device and holder.y.device == device
        assert torch.empty(2).device == device
    assert holder.x is x and holder.y is y and holder.name == "kept"
    assert torch.empty(2).device.type == "cpu"


def test_on_device_restores_after_an_error():
    holder = _Holder()
    x = holder.x
    with pytest.raises(RuntimeError), on_device(holder, "meta"):
        raise RuntimeError("boom")
    assert holder.x is x


def test_move_tensors_reports_only_what_moved():
    holder = _Holder()
    assert move_tensors(holder, torch.device("cpu")) == {}
    old = move_tensors(holder, torch.device("meta"))
    assert set(old) == {"x", "y"}


def test_to_device_copies_a_branch():
    b = Branch(torch.ones(3), torch.zeros(3), -1.0, ((0, 1),), 5, 0.5)
    m = to_device(b, "meta")
    assert m.theta.device.type == "meta" and m.direction.device.type == "meta"
    assert b.theta.device.type == "cpu" and m.fingerprint == b.fingerprint


def test_cli_run_refuses_a_bad_device_with_exit_2(tmp_path):
    out = tmp_path / "out.json"
    result = CliRunner().invoke(main, ["run", "toy2d", "--device", "gpu", "--json", str(out)])
    assert result.exit_code == 2, result.output
    assert "device" in result.output
    assert not out.exists()


def _compare_expansions(cpu, gpu):
    assert gpu.node.theta.device.type == "cpu"
    assert torch.allclose(gpu.node.theta, cpu.node.theta, atol=1e-6)
    assert [c.fingerprint for c in gpu.children] == [c.fingerprint for c in cpu.children]
    for c, g in zip(cpu.children, gpu.children, strict=True):
        assert g.direction.device.type == "cpu"
        assert g.eigenvalue == pytest.approx(c.eigenvalue, rel=1e-5, abs=1e-8)


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
@pytest.mark.parametrize(
    ("name", "params", "method"),
    [("lever-game", {}, "exact"), ("digits-mlp", {"hidden": "16"}, "approx")],
)
def test_cuda_expand_matches_cpu(name, params, method):
    problem = create(name, params)
    given = {"method": method, "n_ridges": 3, "max_ride_steps": 20}
    settings = RRSettings(**{**problem.default_settings(), **given})
    mis = find_mis(problem)
    root = root_branch(mis, 0)
    cpu = expand(problem, settings, root)
    gpu = expand(problem, settings.with_(device="cuda"), root)
    _compare_expansions(cpu, gpu)
    child = cpu.children[0]
    _compare_expansions(
        expand(problem, settings, child), expand(problem, settings.with_(device="cuda"), child)
    )
