"""The scripts in ``examples/`` run as documented and do what their docstrings say.

The search and cross-play scripts run in this process (their ``main``), the service script as a
subprocess exactly as its docstring shows it (it starts and stops its own service).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_there_are_three_examples_each_documented() -> None:
    scripts = sorted(p.stem for p in EXAMPLES.glob("*.py"))
    assert scripts == ["crossplay", "search_and_plot", "service_and_sdk"]
    for name in scripts:
        doc = load(name).__doc__
        assert doc and f"python examples/{name}.py" in doc, name


def test_search_and_plot_finds_the_four_minima_and_draws_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    load("search_and_plot").main(tmp_path)
    out = capsys.readouterr().out
    assert out.count(" solution ") == 4  # the paper's Fig. 1: two local, two global minima
    assert "loss -6.2500" in out and "loss -1.0000" in out
    for png in ("surface.png", "losses.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_crossplay_chooses_the_unique_lever(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    report = load("crossplay").main(4, tmp_path / "fig6.png")
    chosen = next(
        r for r in report["fingerprints"] if r["fingerprint"] == report["chosen"]["fingerprint"]
    )
    assert set(chosen["solution_keys"]) == {"9/9"}  # the lever paying 0.6, the only unique one
    assert report["chosen"]["xp"] > report["baselines"]["self_play"]["xp"]
    assert (tmp_path / "fig6.png").stat().st_size > 10_000


def test_service_and_sdk_runs_its_own_service_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "nodes.csv"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("RIDGERIDER_TOKEN", None)
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "service_and_sdk.py"), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "succeeded" in proc.stdout and "deleted job" in proc.stdout
    rows = out.read_text().splitlines()
    header = rows[0].split(",")
    assert header[:3] == ["id", "parent_id", "key"]
    solutions = [r for r in rows[1:] if r.split(",")[header.index("is_solution")] == "True"]
    assert len(solutions) == proc.stdout.count("reaches leaf") > 0
