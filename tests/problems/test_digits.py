"""digits-mlp (scikit-learn's bundled digits) and mnist-mlp (IDX files written by the test)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from idx_data import fit_lbfgs, write_idx

from ridgerider.core.approx import approx_get_ridges
from ridgerider.core.curvature import dense_hessian, gradient
from ridgerider.problems.base import ParamError
from ridgerider.problems.digits import DigitsMLP
from ridgerider.problems.mlp import stratified_split
from ridgerider.problems.mnist import IDXError, MnistMLP, read_idx

pytest.importorskip("sklearn")
torch.set_num_threads(1)


def test_default_network_is_the_papers_two_layers_of_128():
    p = DigitsMLP.from_params({})
    assert p.params.hidden == (128, 128)
    assert p.n_params == 64 * 128 + 128 + 128 * 128 + 128 + 128 * 10 + 10
    assert p.start().shape == (p.n_params,)
    assert p.x_train.shape[0] + p.x_test.shape[0] == 1797
    assert float(p.x_train.max()) <= 1.0


def test_hidden_sizes_parse_and_validate():
    assert DigitsMLP.from_params({"hidden": "16, 8"}).params.hidden == (16, 8)
    assert DigitsMLP.from_params({"hidden": ""}).params.hidden == ()
    with pytest.raises(ParamError, match="hidden"):
        DigitsMLP.from_params({"hidden": "16,x"})
    with pytest.raises(ParamError, match="hidden"):
        DigitsMLP.from_params({"hidden": [0]})
    with pytest.raises(ParamError, match="unknown parameter"):
        DigitsMLP.from_params({"depth": 2})


def test_image_size_resamples_the_digits_to_the_papers_mnist_network():
    base = DigitsMLP.from_params({"hidden": "4"})
    assert base.x_train.shape[1] == 64
    p = DigitsMLP.from_params({"hidden": "128,128", "image_size": 28})
    assert p.x_train.shape == (base.x_train.shape[0], 784)
    assert p.n_params == 784 * 128 + 128 + 128 * 128 + 128 + 128 * 10 + 10 == 118_282
    assert torch.equal(p.y_train, base.y_train)  # same split, same labels
    # Bilinear with pixel centres aligned, against a direct evaluation of the formula.
    small, big = base.x_train.reshape(-1, 8, 8), p.x_train.reshape(-1, 28, 28)

    def source(j: int) -> tuple[int, int, float]:
        pos = max((j + 0.5) * 8 / 28 - 0.5, 0.0)
        lo = int(pos)
        return lo, min(lo + 1, 7), pos - lo

    for a, b in [(0, 0), (5, 17), (13, 13), (27, 3), (20, 27)]:
        (r0, r1, wr), (c0, c1, wc) = source(a), source(b)
        top = (1 - wc) * small[:, r0, c0] + wc * small[:, r0, c1]
        bottom = (1 - wc) * small[:, r1, c0] + wc * small[:, r1, c1]
        assert torch.allclose(big[:, a, b], (1 - wr) * top + wr * bottom, atol=1e-12)
    assert float(p.x_train.min()) >= 0.0 and float(p.x_train.max()) <= 1.0
    for bad in (7, 33):
        with pytest.raises(ParamError, match="image_size"):
            DigitsMLP.from_params({"image_size": bad})


def test_split_is_fixed_by_seed_stratified_and_disjoint():
    y = torch.arange(200) % 4
    tr1, te1 = stratified_split(y, 0.25, seed=3)
    tr2, te2 = stratified_split(y, 0.25, seed=3)
    tr3, _ = stratified_split(y, 0.25, seed=4)
    assert torch.equal(tr1, tr2) and torch.equal(te1, te2)
    assert not torch.equal(tr1, tr3)
    assert set(tr1.tolist()).isdisjoint(te1.tolist())
    assert len(tr1) + len(te1) == 200
    assert torch.bincount(y[te1]).tolist() == [12] * 4  # round(0.25 * 50) per class
    a = DigitsMLP.from_params({"hidden": "4", "split_seed": 1})
    b = DigitsMLP.from_params({"hidden": "4", "split_seed": 1})
    assert torch.equal(a.y_test, b.y_test)


def test_loss_is_cross_entropy_of_the_network():
    p = DigitsMLP.from_params({"hidden": "5,4", "weight_decay": 0.1})
    theta = p.start()
    (w1, b1), (w2, b2), (w3, b3) = p.unflatten(theta)
    h = torch.tanh(torch.tanh(p.x_train @ w1.T + b1) @ w2.T + b2)
    ce = torch.nn.functional.cross_entropy(h @ w3.T + b3, p.y_train)
    assert float(p.loss(theta)) == pytest.approx(float(ce) + 0.05 * float(theta @ theta))


@pytest.fixture(scope="module")
def saddle():
    p = DigitsMLP.from_params({"hidden": "4", "test_fraction": 0.9})  # small: dense Hessian
    theta = p.start()
    return p, theta, torch.linalg.eigvalsh(dense_hessian(p.loss, theta))


def test_one_hidden_layer_starts_at_the_symmetric_saddle(saddle):
    p, theta, values = saddle
    assert float(gradient(p.loss, theta).norm()) < 1e-12
    # ±σ_k, each repeated once per hidden unit (RESEARCH.md).
    assert values[0] < 0
    torch.testing.assert_close(values[:4], values[0].expand(4), atol=1e-10, rtol=0)
    torch.testing.assert_close(values[-4:], -values[0].expand(4), atol=1e-10, rtol=0)


def test_approx_get_ridges_finds_every_copy_at_the_saddle(saddle):
    # At the MIS each eigenvalue is repeated once per hidden unit: a block cold start at
    # least that wide finds all copies (a single Lanczos vector would see one per value).
    p, theta, values = saddle
    spec = approx_get_ridges(p.loss, theta, 6, tol=1e-8, block=4, generator=torch.Generator())
    assert spec.converged
    torch.testing.assert_close(spec.values, values[:6], atol=1e-7, rtol=0)


def test_two_layers_start_has_ridges_where_zero_has_none():
    p = DigitsMLP.from_params({"hidden": "3,3", "test_fraction": 0.9})
    at_start = torch.linalg.eigvalsh(dense_hessian(p.loss, p.start()))
    at_saddle = torch.linalg.eigvalsh(dense_hessian(p.loss, p.saddle()))
    assert int((at_start < -1e-2).sum()) >= 20
    assert float(at_saddle[0]) > -1e-2 * float(at_saddle.abs().max())
    assert torch.equal(p.analytic_mis(), p.start())
    g = torch.Generator().manual_seed(5)
    assert not torch.equal(p.random_init(g), p.start())


def test_metrics_and_learning():
    p = DigitsMLP.from_params({"hidden": "16"})
    m0 = p.metrics(p.start())
    assert set(m0) == {"train_accuracy", "test_accuracy", "per_class_accuracy", "train_loss"}
    assert len(m0["per_class_accuracy"]) == 10
    m = p.metrics(fit_lbfgs(p, max_iter=60))
    assert m["train_accuracy"] > 0.95 and m["test_accuracy"] > 0.85
    assert m["train_loss"] < m0["train_loss"]
    assert all(0.0 <= a <= 1.0 for a in m["per_class_accuracy"])


# --------------------------------------------------------------------------- MNIST IDX files


def _mnist_dir(tmp_path: Path, gz: bool = False) -> Path:
    rng = np.random.default_rng(0)
    for prefix, count in (("train", 50), ("t10k", 20)):
        labels = (np.arange(count) % 10).astype(np.uint8)
        images = rng.integers(0, 40, size=(count, 6, 6), dtype=np.uint8)
        images[np.arange(count), labels // 6, labels % 6] = 255  # a learnable pixel per class
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte", images, gz=gz)
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte", labels, gz=gz)
    return tmp_path


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trip(tmp_path, gz):
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "x-idx3-ubyte", a, gz=gz)
    name = "x-idx3-ubyte.gz" if gz else "x-idx3-ubyte"
    out = read_idx(tmp_path / name)
    assert out.shape == (2, 3, 4) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, a)
    f = np.linspace(0, 1, 6, dtype=np.float32)
    write_idx(tmp_path / "f-idx1", f, code=0x0D)
    np.testing.assert_array_equal(read_idx(tmp_path / "f-idx1"), f)


def test_read_idx_rejects_malformed_files(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01")
    with pytest.raises(IDXError, match="magic"):
        read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">I", 10) + b"\x00" * 3)
    with pytest.raises(IDXError, match="expected 10"):
        read_idx(tmp_path / "short")
    (tmp_path / "type").write_bytes(bytes([0, 0, 0x42, 0]))
    with pytest.raises(IDXError, match="type"):
        read_idx(tmp_path / "type")


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_problem_from_idx_files(tmp_path, gz):
    d = _mnist_dir(tmp_path, gz=gz)
    p = MnistMLP.from_params({"data_dir": str(d), "hidden": "8", "n_train": 40})
    assert p.x_train.shape == (40, 36) and p.x_test.shape == (20, 36)
    assert p.n_params == 36 * 8 + 8 + 8 * 10 + 10
    assert float(p.x_train.max()) == 1.0
    x = p.init_params(torch.Generator().manual_seed(0), 1.0)
    for _ in range(300):
        x = x - 1.0 * gradient(p.loss, x)
    m = p.metrics(x)
    assert m["train_accuracy"] == 1.0 and m["test_accuracy"] >= 0.9
    assert len(m["per_class_accuracy"]) == 10


def test_mnist_missing_files_and_params(tmp_path):
    with pytest.raises(ParamError, match=r"data_dir.*missing train-images") as missing:
        MnistMLP.from_params({"data_dir": str(tmp_path)})
    assert missing.value.field == "data_dir"
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"not an IDX file")
    with pytest.raises(ParamError, match=r"data_dir.*magic"):
        MnistMLP.from_params({"data_dir": str(tmp_path)})
    with pytest.raises(ParamError, match="data_dir"):
        MnistMLP.from_params({})


def test_mnist_bad_files_are_exit_2_naming_data_dir(tmp_path):
    from click.testing import CliRunner

    from ridgerider.cli import main

    result = CliRunner().invoke(main, ["run", "mnist-mlp", "--set", f"data_dir={tmp_path}"])
    assert result.exit_code == 2, result.output
    assert "data_dir" in result.output and "missing train-images" in result.output


def test_default_search_is_approximate_bounded_and_finishes_its_leaves():
    """The default search trains (measured in benchmarks/README.md); here: what it is."""
    from ridgerider.core.settings import RRSettings
    from ridgerider.problems.mlp import TRAINING_SEARCH

    rr = RRSettings(**DigitsMLP.default_settings(None))  # type: ignore[arg-type]
    assert MnistMLP.default_settings(None) == TRAINING_SEARCH  # type: ignore[arg-type]
    assert (rr.method, rr.approx_update, rr.step_rule) == ("approx", "paper", "fixed")
    assert rr.max_depth == 1 and rr.n_ridges * rr.max_ride_steps <= 60_000  # a budget that ends
    assert rr.hvp_batch > 0 and rr.polish_steps > 0 and not rr.end_on_convex
