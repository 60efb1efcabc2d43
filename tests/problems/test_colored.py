"""colored-mnist (IDX files written by the test) and colored-digits (offline): the IRM construction.

Rates are checked against binomial 4-sigma bounds, so a correct construction fails about once in
15,000 runs per check; every draw is seeded, so in practice the outcome is fixed.
"""

from __future__ import annotations

import importlib
import math
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from idx_data import fit_lbfgs, write_idx

from ridgerider.core.curvature import dense_hessian, gradient
from ridgerider.problems import available, create
from ridgerider.problems.base import ParamError
from ridgerider.problems.colored import (
    COLOUR_FLIP,
    LABEL_FLIP,
    ColoredDigits,
    ColoredMnist,
    split_sizes,
)
from ridgerider.problems.mlp import MLPHessian

pytest.importorskip("sklearn")
torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[2]
N_IMAGES = 2000


def _write_mnist(folder: Path, count: int = N_IMAGES) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-like training files of ``count`` 28×28 images (no pixel zero: channels tell)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    digits = rng.integers(0, 10, size=count).astype(np.uint8)
    images = rng.integers(1, 256, size=(count, 28, 28)).astype(np.uint8)
    write_idx(folder / "train-images-idx3-ubyte", images)
    write_idx(folder / "train-labels-idx1-ubyte", digits)
    return images, digits


@pytest.fixture(scope="module")
def mnist(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, np.ndarray]:
    folder = tmp_path_factory.mktemp("mnist")
    images, digits = _write_mnist(folder)
    return folder, images, digits


def _within(count: int, total: int, p: float) -> bool:
    return abs(count - p * total) <= 4 * math.sqrt(total * p * (1 - p))


def test_construction_rates_channels_shapes_and_sizes(mnist) -> None:
    folder, images, digits = mnist
    p = ColoredMnist.from_params({"data_dir": str(folder), "hidden": "4"})
    envs = p.environments()
    assert set(envs) == {"train1", "train2", "test"}
    assert [len(envs[k]) for k in ("train1", "train2", "test")] == [833, 833, 334]
    assert split_sizes(60_000) == (25_000, 25_000, 10_000)  # the IRM split of MNIST
    sources = {"train1": np.arange(0, 1666, 2), "train2": np.arange(1, 1666, 2)}
    sources["test"] = np.arange(1666, N_IMAGES)
    noisy = 0
    for name, env in envs.items():
        n = len(env)
        assert env.images.shape == (n, 2, 14, 14) and env.images.dtype == torch.float64
        src = torch.from_numpy(images[sources[name]][:, ::2, ::2].astype(np.float64)) / 255
        assert torch.equal(env.digits, torch.from_numpy(digits[sources[name]].astype(np.int64)))
        lit = env.images.flatten(2).amax(dim=2) > 0  # [n, 2]: which channels hold the image
        assert torch.equal(lit.sum(dim=1), torch.ones(n, dtype=torch.long))  # one zeroed
        assert torch.equal(lit[:, 1].long(), env.colours)  # channel = colour
        assert torch.equal(env.images[torch.arange(n), env.colours], src)
        noisy += int((env.labels != (env.digits >= 5).long()).sum())
        flips = int((env.colours != env.labels).sum())
        assert env.colour_flip == COLOUR_FLIP[name]
        assert _within(flips, n, COLOUR_FLIP[name]), (name, flips / n)
    assert _within(noisy, N_IMAGES, LABEL_FLIP), noisy / N_IMAGES
    # The validation share is held out of the training environments only, and of the loss.
    held = [int(envs[k].validation.sum()) for k in ("train1", "train2", "test")]
    assert held == [83, 83, 0]
    assert p.x_train.shape == (1666 - 166, 392) and p.x_val.shape == (166, 392)
    assert p.x_test.shape == (334, 392) and p.n_params == 392 * 4 + 4 + 4 * 2 + 2


def test_the_data_seed_fixes_everything(mnist) -> None:
    folder = str(mnist[0])
    a, b, c = (
        ColoredMnist.from_params(
            {"data_dir": folder, "hidden": "2", "data_seed": s, "n_images": 300}
        )
        for s in (7, 7, 8)
    )
    for name, env in a.environments().items():
        other = b.environments()[name]
        for field in ("images", "labels", "colours", "validation"):
            assert torch.equal(getattr(env, field), getattr(other, field))
    assert len(a.environments()["test"]) == 50  # n_images: the first 300, split 125/125/50
    assert not torch.equal(a.environments()["train1"].labels, c.environments()["train1"].labels)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.start(), b.start())


def test_missing_or_malformed_files_name_data_dir(tmp_path: Path) -> None:
    with pytest.raises(ParamError, match=r"data_dir.*missing train-images") as info:
        ColoredMnist.from_params({"data_dir": str(tmp_path)})
    assert info.value.field == "data_dir"
    images, digits = _write_mnist(tmp_path, count=20)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x01\x02\x08\x01")
    with pytest.raises(ParamError, match=r"data_dir.*magic"):
        ColoredMnist.from_params({"data_dir": str(tmp_path)})
    for bad, words in (
        (digits[:10], "do not match"),
        (digits + 5, "digits 0-9"),
    ):
        write_idx(tmp_path / "train-images-idx3-ubyte", images)
        write_idx(tmp_path / "train-labels-idx1-ubyte", bad)
        with pytest.raises(ParamError, match=f"data_dir.*{words}"):
            ColoredMnist.from_params({"data_dir": str(tmp_path)})
    write_idx(tmp_path / "train-labels-idx1-ubyte", digits)
    with pytest.raises(ParamError, match="at least 12"):
        ColoredMnist.from_params({"data_dir": str(tmp_path), "n_images": 5})
    with pytest.raises(ParamError, match="data_dir"):
        ColoredMnist.from_params({})


def test_cli_exits_2_and_the_api_answers_422_naming_data_dir(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from ridgerider.api import create_app
    from ridgerider.cli import main
    from ridgerider.config import Settings

    (tmp_path / "root" / "empty").mkdir(parents=True)
    url = f"sqlite:///{tmp_path / 'a.db'}"
    args = ["run", "colored-mnist", "--set", f"data_dir={tmp_path / 'root' / 'empty'}"]
    result = CliRunner().invoke(main, [*args, "--quiet", "--database-url", url])
    assert result.exit_code == 2, result.output
    assert "data_dir" in result.output and "missing train-images" in result.output
    settings = Settings(database_url=url, dev=True, workers=0, data_root=tmp_path / "root")
    body = {"problem": "colored-mnist", "params": {"data_dir": "empty"}}
    with TestClient(create_app(settings)) as client:
        r = client.post("/api/v1/jobs", json=body)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"][0]
    assert detail["loc"][-2:] == ["params", "data_dir"] and "missing" in detail["msg"]


def test_colored_digits_offline_and_erm_learns_the_colour() -> None:
    p = create("colored-digits", {"hidden": "16"})
    envs = p.environments()
    assert [len(envs[k]) for k in ("train1", "train2", "test")] == [749, 748, 300]
    assert envs["test"].images.shape == (300, 2, 8, 8) and float(envs["test"].images.max()) == 1
    m0 = p.metrics(p.start())
    keys = {"train_accuracy", "train1_accuracy", "train2_accuracy", "validation_accuracy"}
    assert keys | {"test_accuracy", "per_class_accuracy", "train_loss"} == set(m0)
    m = p.metrics(fit_lbfgs(p, max_iter=40))
    # Empirical risk minimisation takes the colour: above the digit's 75% in training and far
    # below chance on the test environment, where the colour is reversed (paper: 87% / 18%).
    assert m["train_accuracy"] > 0.8 and m["validation_accuracy"] > 0.75
    assert m["train2_accuracy"] > m["train1_accuracy"]  # colour flips 10% vs 20%
    assert m["test_accuracy"] < 0.4 and m["train_loss"] < m0["train_loss"]
    no_val = ColoredDigits.from_params({"hidden": "2", "validation_fraction": 0})
    assert no_val.metrics(no_val.start())["validation_accuracy"] is None


def test_loss_is_logistic_and_the_r_op_matches_autograd() -> None:
    p = create("colored-digits", {"hidden": "2", "weight_decay": 0.01, "validation_fraction": 0.5})
    g = torch.Generator().manual_seed(1)
    theta = p.start() + 0.3 * torch.randn(p.n_params, generator=g, dtype=torch.float64)

    def logistic(t: torch.Tensor) -> torch.Tensor:
        z = p.logits(t, p.x_train)
        bce = torch.nn.functional.binary_cross_entropy_with_logits(
            z[:, 1] - z[:, 0], p.y_train.double()
        )
        return bce + 0.005 * t.pow(2).sum()

    assert float(p.loss(theta)) == pytest.approx(float(logistic(theta)), rel=1e-12)
    torch.testing.assert_close(gradient(p.loss, theta), gradient(logistic, theta))
    op = p.exact_hvp(theta)
    assert isinstance(op, MLPHessian)
    v = torch.randn(p.n_params, 2, generator=g, dtype=torch.float64)
    torch.testing.assert_close(op(v), dense_hessian(logistic, theta) @ v, rtol=1e-9, atol=1e-12)


def test_registered_in_the_registry_and_in_pyproject() -> None:
    assert available()["colored-mnist"] is ColoredMnist
    assert available()["colored-digits"] is ColoredDigits
    assert ColoredMnist.path_params == ("data_dir",) and ColoredDigits.path_params == ()
    table = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    for name, cls in (("colored-mnist", ColoredMnist), ("colored-digits", ColoredDigits)):
        module, _, attr = table["ridgerider.problems"][name].partition(":")
        assert getattr(importlib.import_module(module), attr) is cls
