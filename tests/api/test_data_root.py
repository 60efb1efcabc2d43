"""File parameters (``mnist-mlp``'s ``data_dir``): only inside the service's data root."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

API = "/api/v1"


def write_mnist(folder: Path) -> Path:
    """Four tiny IDX files (6×6 images) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, count in (("train", 30), ("t10k", 10)):
        labels = (np.arange(count) % 10).astype(np.uint8)
        images = rng.integers(0, 255, size=(count, 6, 6), dtype=np.uint8)
        for name, a in (("images-idx3-ubyte", images), ("labels-idx1-ubyte", labels)):
            head = bytes([0, 0, 0x08, a.ndim]) + b"".join(struct.pack(">I", d) for d in a.shape)
            (folder / f"{prefix}-{name}").write_bytes(head + a.tobytes())
    return folder


def body(data_dir: object) -> dict:
    params = {"data_dir": data_dir, "hidden": "4", "n_train": 0}
    return {"problem": "mnist-mlp", "params": params, "settings": {"max_nodes": 1}}


def refused(response, field: str) -> str:
    assert response.status_code == 422, response.text
    detail = response.json()["detail"][0]
    assert detail["loc"][-2:] == ["params", field]
    return detail["msg"]


def test_no_data_root_means_no_local_files(make_client, tmp_path: Path) -> None:
    folder = write_mnist(tmp_path / "mnist")
    with make_client(dev=True, workers=0) as c:
        msg = refused(c.post(f"{API}/jobs", json=body(str(folder))), "data_dir")
        assert "RIDGERIDER_DATA_ROOT" in msg
        assert c.get(f"{API}/jobs").json()["items"] == []  # nothing stored


@pytest.mark.parametrize("escape", ["../outside", "/etc", "mnist/../../outside"])
def test_paths_outside_the_data_root_are_refused(make_client, tmp_path: Path, escape) -> None:
    write_mnist(tmp_path / "root" / "mnist")
    write_mnist(tmp_path / "outside")
    with make_client(dev=True, workers=0, data_root=tmp_path / "root") as c:
        msg = refused(c.post(f"{API}/jobs", json=body(escape)), "data_dir")
        assert "inside the data root" in msg
        assert c.get(f"{API}/jobs").json()["items"] == []


def test_a_folder_inside_the_data_root_is_read(make_client, tmp_path: Path) -> None:
    write_mnist(tmp_path / "root" / "mnist")
    with make_client(dev=True, workers=0, data_root=tmp_path / "root") as c:
        created = c.post(f"{API}/jobs", json=body("mnist"))
        assert created.status_code == 201, created.text
        stored = created.json()["params"]["data_dir"]
        assert stored == str((tmp_path / "root" / "mnist").resolve())  # what the workers read
        missing = c.post(f"{API}/jobs", json=body("nowhere"))
        assert "does not exist" in refused(missing, "data_dir")


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("mnist\x00", "NUL"),
        ("\x00", "NUL"),
        ("x" * 300, "not a usable path"),  # one name over NAME_MAX
        ("x/" * 3000, "at most 4096 characters"),
        ("mnist\ud800", "not a usable path"),  # a lone surrogate: no file system encoding
        (5, "must be a path (a string), got int"),
        (["mnist"], "got list"),
        ({"dir": "mnist"}, "got dict"),
        (True, "got bool"),
    ],
)
def test_odd_paths_are_422_naming_the_field(make_client, tmp_path: Path, value, words) -> None:
    write_mnist(tmp_path / "root" / "mnist")
    with make_client(dev=True, workers=0, data_root=tmp_path / "root") as c:
        raw = json.dumps(body(value))  # escaped: a lone surrogate travels as \ud800
        r = c.post(f"{API}/jobs", content=raw, headers={"Content-Type": "application/json"})
        assert words in refused(r, "data_dir")
        assert r.json()["detail"][0]["loc"] == ["body", "params", "data_dir"]
        assert c.get(f"{API}/jobs").json()["items"] == []
