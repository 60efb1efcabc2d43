"""The paper-figure benchmark scripts run end to end on tiny settings.

They are run by hand for the figures in ``benchmarks/README.md``; these runs keep them working
as the library changes (a changed return type once broke ``paper_mnist.py`` silently).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def _run(script: str, out: Path, *args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--out", str(out), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((out / script.replace(".py", ".json")).read_text())


def _run_json(script: str, out: Path, *args: str) -> dict:
    """Run a benchmark that writes its result to ``--json out``; that result."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args, "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


def test_paper_mnist_search_and_ablations(tmp_path: Path) -> None:
    out = _run(
        "paper_mnist.py",
        tmp_path,
        *("--hidden", "8,8", "--n-ridges", "2", "--max-nodes", "3"),
        *("--max-ride-steps", "2", "--polish-steps", "3", "--curve", "1"),
    )
    assert set(out["results"]) == {"approx", "fixed", "random"}
    for variant in out["results"].values():
        assert len(variant["nodes"]) == 3  # the root and its two ridges (descent signs)
        leaf = variant["best_leaf"]
        assert 0.0 <= leaf["polished"]["test_accuracy"] <= 1.0
    assert (tmp_path / "paper_mnist.png").stat().st_size > 0


def test_paper_mnist_long_rides(tmp_path: Path) -> None:
    out = _run(
        "paper_mnist_rides.py",
        tmp_path,
        *("--hidden", "8,8", "--n-ridges", "3", "--steps", "30", "--fig5-steps", "20"),
        *("--random-dirs", "2", "--line-points", "11", "--log-every", "10", "--early", "5", "15"),
    )
    curve = out["fig4"]["curve"]
    assert [r["step"] for r in curve] == [0, 10, 20, 30]
    assert curve[-1]["loss"] < curve[0]["loss"]  # the ride descends
    assert out["fig4"]["hvps"] == 3 * 30  # one gradient step on (e, λ) per θ-step
    assert [row["index"] for row in out["fig5"]] == [0, 1, 2]
    assert all(len(row["early"]) == 10 for row in out["fig5"])
    assert len(out["fixed_ev"]) == 3 and len(out["random"]) == 2
    # A line's best point by training loss is never worse than its start.
    start_loss = curve[0]["loss"]
    assert all(r["best_by_train_loss"]["loss"] <= start_loss + 1e-6 for r in out["fixed_ev"])


def test_paper_mnist_long_rides_on_idx_files(tmp_path: Path) -> None:
    """``--data-dir``: the same figures on MNIST IDX files (written here; nothing downloaded)."""
    spec = importlib.util.spec_from_file_location("idx_data", ROOT / "tests/problems/idx_data.py")
    assert spec is not None and spec.loader is not None
    idx_data = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(idx_data)
    data = tmp_path / "idx"
    data.mkdir()
    rng = np.random.default_rng(0)
    for prefix, count in (("train", 60), ("t10k", 20)):
        labels = (np.arange(count) % 10).astype(np.uint8)
        images = rng.integers(0, 255, size=(count, 5, 5), dtype=np.uint8)
        idx_data.write_idx(data / f"{prefix}-images-idx3-ubyte", images)
        idx_data.write_idx(data / f"{prefix}-labels-idx1-ubyte", labels)
    out = _run(
        "paper_mnist_rides.py",
        tmp_path / "out",
        *("--data-dir", str(data), "--n-train", "0", "--hidden", "4,4", "--jobs", "1"),
        *("--n-ridges", "1", "--steps", "4", "--fig5-steps", "2", "--log-every", "2"),
        *("--random-dirs", "1", "--line-points", "3", "--early", "1", "2"),
    )
    assert out["n"] == 25 * 4 + 4 + 4 * 4 + 4 + 4 * 10 + 10  # 25 pixels in, 10 classes out
    assert [r["step"] for r in out["fig4"]["curve"]] == [0, 2, 4]
    assert out["args"]["data_dir"] == str(data)


def test_warm_block_krylov(tmp_path: Path) -> None:
    out = _run("warm_block_krylov.py", tmp_path, "--hidden", "8,8", "--points", "init", "trained")
    assert [r["point"] for r in out["results"]] == ["init", "trained"]
    for row in out["results"]:
        for width in ("10", "13"):
            run = row["krylov"][width]
            assert run["trace"][0][0] == int(width)  # degree 0: the warm block itself
            assert run["products"] == run["trace"][-1][0] and run["trace"][-1][1] <= 1.0
        # Expanding only the unconverged pairs' residuals beats growing the whole block.
        assert row["warm"] < row["krylov"]["13"]["products"]


def test_repeated_eigenvalues(tmp_path: Path) -> None:
    out = _run(
        "repeated_eigenvalues.py",
        tmp_path,
        *("--n", "600", "--seeds", "0", "--multiplicities", "2", "--no-digits"),
    )
    (row,) = out["results"]
    runs = row["runs"]
    assert row["wanted"] == 2
    assert runs["ours"][0]["copies"] == 2 and runs["ours"][0]["converged"]
    assert runs["ours"][0]["error"] <= 1e-4
    assert runs["unverified"][0]["copies"] == 1  # one start vector sees one copy
    assert row["ratio"] == runs["ours"][0]["products"] / runs["arpack"][0]["products"]


def test_gym_dice(tmp_path: Path) -> None:
    out = _run(
        "gym_dice.py",
        tmp_path,
        *("--envs", "FrozenLake 4x4 slippery", "--samples", "30", "--max-nodes", "3"),
        *("--ride-steps", "1", "--pg-steps", "2", "--cartpole-samples", "4"),
        *("--polish-steps", "1", "--sizes", "100"),
    )
    assert out["convergence"][0]["N"] == 100
    lake, cartpole = out["rows"]
    assert {"exact RR", "DiCE RR", "PG random", "PG mis"} <= set(lake)
    assert lake["exact RR"]["samples"] == 0 < lake["DiCE RR"]["samples"]
    assert lake["PG random"]["samples"] <= lake["DiCE RR"]["samples"]
    assert cartpole["DiCE RR"]["samples"] > 0


def _run_here(script: str, monkeypatch: Any, *args: str) -> None:
    """Run a benchmark script's ``main`` in this process (no interpreter start-up to pay)."""
    path = ROOT / "benchmarks" / script
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    monkeypatch.setattr(sys, "argv", [str(path), *args])
    threads = torch.get_num_threads()
    try:
        module.main()
    finally:
        torch.set_num_threads(threads)


def test_paper_tree_rl_with_a_preset(tmp_path: Path, monkeypatch: Any) -> None:
    _run_here(
        "paper_tree_rl.py",
        monkeypatch,
        *("--preset", "paper-fig2", "--depths", "4", "--trees", "1", "--max-steps", "100"),
        *("--baselines", "gd_mis", "fixed_eigenvectors", "--out", str(tmp_path)),
    )
    out = json.loads((tmp_path / "paper_tree_rl.json").read_text())
    (row,) = out["rows"]
    assert (row["depth"], row["tree_seed"]) == (4, 0)
    assert row["rr_stopped_by"] in ("max_steps", "exhausted")
    assert 0 < row["rr_found"] <= row["targets"]
    assert len(row["rr_first_found_steps"]) == row["rr_found"]
    assert {"gd_mis_found", "fixed_eigenvectors_found"} <= set(row)
    assert set(out["table"]["4"]) == {"rr", "gd_mis", "fixed_eigenvectors", "steps"}
    assert (tmp_path / "paper_tree_rl.png").stat().st_size > 0


def test_crossplay_lever_counts_the_unique_lever(tmp_path: Path, monkeypatch: Any) -> None:
    _run_here(
        "crossplay_lever.py",
        monkeypatch,
        *("--replicates", "3", "--seeds", "1", "--layouts", "paper", "--out", str(tmp_path)),
    )
    (run,) = json.loads((tmp_path / "crossplay_lever.json").read_text())["runs"]
    assert run["layout"] == "paper" and run["replicates"] == 3
    assert run["unique"] == (run["chosen_levers"] == [9, 9])


def test_service_latency_submissions(tmp_path: Path) -> None:
    """Its submission phase against a real ``ridgerider serve`` (the other phases take minutes)."""
    out = tmp_path / "latency.json"
    args = ["--only", "submit", "--submits", "1", "--problems", "1", "--json", str(out)]
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "service_latency.py"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert list(result["submit"]) == ["toy2d"]
    assert result["submit"]["toy2d"]["errors"] == 0 and result["submit"]["toy2d"]["p99_ms"] > 0


def test_colored_ood_table(tmp_path: Path, monkeypatch: Any) -> None:
    _run_here(
        "colored_ood.py",
        monkeypatch,
        *("--seeds", "2", "--methods", "ERM", "chance", "--baseline-steps", "5"),
        *("--out", str(tmp_path)),
    )
    out = json.loads((tmp_path / "colored_ood.json").read_text())
    assert [(r["seed"], r["method"]) for r in out["rows"]] == [
        (0, "ERM"),
        (0, "chance"),
        (1, "ERM"),
        (1, "chance"),
    ]
    assert set(out["summary"]) == {"ERM", "chance"} and out["summary"]["ERM"]["seeds"] == 2
    table = (tmp_path / "colored_ood.md").read_text()
    assert "| ERM | 2 |" in table and "87.4 ± 1.70" in table  # ours beside the paper's


def test_colored_ood_reads_mnist_idx_files(tmp_path: Path, monkeypatch: Any) -> None:
    from problems.idx_data import write_idx

    rng = np.random.default_rng(0)
    data = tmp_path / "mnist"
    data.mkdir()
    write_idx(data / "train-images-idx3-ubyte", rng.integers(0, 256, (120, 28, 28), np.uint8))
    write_idx(data / "train-labels-idx1-ubyte", rng.integers(0, 10, 120).astype(np.uint8))
    _run_here(
        "colored_ood.py",
        monkeypatch,
        *("--problem", "colored-mnist", "--data-dir", str(data), "--seeds", "1"),
        *("--methods", "ERM", "--baseline-steps", "2", "--out", str(tmp_path)),
    )
    out = json.loads((tmp_path / "colored_ood.json").read_text())
    assert out["problem"] == "colored-mnist" and [r["method"] for r in out["rows"]] == ["ERM"]


def test_sequencer_round_joins_the_same_tree_with_both_stores(tmp_path: Path) -> None:
    res = _run_json("sequencer_round.py", tmp_path / "rounds.json", "--quick")
    rows = {(r["order"], r["store"]): r for r in res["rows"]}
    assert set(rows) == {(o, s) for o in ("dfs", "priority") for s in ("plain", "buffered")}
    for order in ("dfs", "priority"):  # the whole tree but its root joins in the one round
        assert rows[order, "plain"]["ranks"] == rows[order, "buffered"]["ranks"] == 14
        assert rows[order, "buffered"]["statements"] < 14


def test_speculation_scaling_and_waste(tmp_path: Path) -> None:
    res = _run_json("speculation.py", tmp_path / "speculation.json", "--quick")
    orders = {"bfs", "dfs", "priority", "random"}
    assert {r["order"] for r in res["scaling"]} == orders
    assert any(r["speculation"] == 0 for r in res["scaling"])  # dfs without, for comparison
    for w in res["waste"]:  # whole budgeted jobs: the tree is the budget, rides at least that
        assert w["tree"] == w["budget"] and w["rides"] >= w["tree"]
        assert w["wasted"] == w["rides"] - w["tree"]
    assert {w["order"] for w in res["waste"]} == orders


def test_batched_worker_compares_the_same_trees(tmp_path: Path) -> None:
    out = _run(
        "batched_worker.py",
        tmp_path,
        *("--max-nodes", "12", "--repeats", "1", "--batch", "4", "--rides-only"),
    )
    assert [r["problem"] for r in out["rows"]] == ["lever-game", "tree-rl"]
    for row in out["rows"]:
        assert row["same_tree"] and row["nodes"] == 12
        assert row["loop_branches_per_s"] > 0 and row["batched_branches_per_s"] > 0
        assert set(row["profile_batched"]) == {"hessian", "eigh", "polish", "rest", "total"}


def test_whole_process_compares_the_same_trees_with_warm_pools(tmp_path: Path) -> None:
    (row,) = _run_json("whole_process.py", tmp_path / "whole_process.json", "--quick")["rows"]
    assert row["identical"] and row["nodes"] >= 2  # every pooled tree is the in-process one
    assert set(row["pool_start_s"]) == {"processes-2"} and row["processes_wall_w2_over_w0"] > 0
    assert row["w0_wall_s"] > row["w0_job_s"] > 0 and row["bound_w2_over_w0"] > 1


@pytest.mark.postgres
def test_frontier_runs_beside_the_plain_queue(tmp_path: Path) -> None:
    """Needs PostgreSQL (the plain queue, and the script's scratch database)."""
    import psycopg

    from services.conftest import PG_URL, _pg_admin

    try:
        _pg_admin().close()
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    args = ["--backends", "plain", "sqlite", "postgres", "--workers", "1", "--seconds", "0.5"]
    args += ["--batch", "4", "--no-optuna", "--postgres-url", PG_URL]
    args += ["--drop", "ix_nodes_spec", "fk_nodes_parent_id_nodes", "--plan-cache-mode", "auto"]
    res = _run_json("frontier.py", tmp_path / "frontier.json", *args)
    assert res["cycles_per_s"]["plain/1"] > 0 and res["cycles_per_s"]["sqlite/1"] > 0
    assert res["cycles_per_s"]["postgres/1"] > 0 and res["plan_cache_mode"] == "auto"
    assert "ix_nodes_spec" not in res["nodes_indexes"] and "pk_nodes" in res["nodes_indexes"]
    bad = [*args[:-5], "--drop", "no_such_index"]
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "frontier.py"), *bad],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode != 0 and "no_such_index" in proc.stderr  # a typo fails loudly
    ratio = res["ratio_vs_plain/sqlite/1"]
    assert ratio == round(res["cycles_per_s"]["sqlite/1"] / res["cycles_per_s"]["plain/1"], 3)
