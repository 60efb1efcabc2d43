"""The paper's MNIST figures (Fig. 4 and Fig. 5) on scikit-learn's bundled digits.

Approximate Ridge Rider (GetRidges by the block eigensolver, UpdateRidge by warm Rayleigh–Ritz)
on ``digits-mlp`` (64-128-128-10, 26,122 parameters, tanh, full-batch cross-entropy) from the
problem's documented start, beside two ablations measured in the same run under the same budget:

``fixed``
    the same search with ``update="fixed"``: each ride follows its initial eigenvector without
    re-identifying it (the paper's ``LR_e = 0``);
``random``
    ``ridge_rule="random_ascent"``: random unit directions oriented to descend, followed
    without update (Rand.Ridge+).

and, as the reference for what the leaf polish alone does, plain gradient descent from the start
for the same number of polish steps. Every variant uses the same settings, seed and budget
(``max_nodes`` expansions, ``max_ride_steps`` per ride). Every leaf is then finished by
``polish_steps`` steps of full-batch gradient descent (the engine's optional leaf polish, applied
here so that accuracy is recorded both before and after it).

Fig. 5: per-class test accuracy by the index of the first ridge (``ψ[0]``), for the nodes at
depth 1 (after their ride, before polish) and for the best polished leaf under each of them.

    python benchmarks/paper_mnist.py --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from ridgerider.core import RRSettings, run_search
from ridgerider.core.approx import approx_get_ridges
from ridgerider.core.branch import Node
from ridgerider.core.curvature import gradient
from ridgerider.core.mis import MISResult
from ridgerider.core.ridge import polish
from ridgerider.problems import create

VARIANTS = {
    "approx": {},
    "fixed": {"update": "fixed"},
    "random": {"ridge_rule": "random_ascent", "update": "fixed"},
}
LABELS = {
    "approx": "Approx. RR",
    "fixed": "Fixed-EV (LR_e = 0)",
    "random": "Rand.Ridge+",
    "gd": "GD only (polish budget)",
}


@dataclass
class Args:
    hidden: str = "128,128"
    n_ridges: int = 6
    max_depth: int = 1
    max_nodes: int = 7
    max_ride_steps: int = 10
    alpha: float = 1.0
    alpha_min: float = 1e-3
    overlap_threshold: float = 0.95
    approx_update: str = "paper"
    approx_tol: float = 1e-3
    order: str = "bfs"
    polish_steps: int = 50
    polish_lr: float = 0.5
    curve: tuple[int, ...] = (5, 10, 20)
    """Also record the best leaf's test accuracy after these shorter polishes."""
    seed: int = 0
    threads: int = 1
    variants: tuple[str, ...] = tuple(VARIANTS)
    out: Path = Path("benchmarks/results")


def parse() -> Args:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    d = Args()
    for name, value in asdict(d).items():
        flag = "--" + name.replace("_", "-")
        if name == "variants":
            p.add_argument(flag, nargs="+", choices=list(VARIANTS), default=list(value))
        elif name == "curve":
            p.add_argument(flag, nargs="*", type=int, default=list(value))
        else:
            p.add_argument(flag, type=type(value), default=value)
    ns = vars(p.parse_args())
    ns["variants"] = tuple(ns["variants"])
    ns["curve"] = tuple(ns["curve"])
    return Args(**ns)


def start_point(problem: Any, args: Args) -> MISResult:
    """The documented start as the branch point (no MIS search for two hidden layers)."""
    theta = problem.analytic_mis()
    spec = approx_get_ridges(
        problem.loss,
        theta,
        args.n_ridges,
        tol=args.approx_tol,
        generator=torch.Generator().manual_seed(args.seed),
    )
    return MISResult(
        theta=theta,
        loss=float(problem.loss(theta)),
        grad_norm=float(gradient(problem.loss, theta).norm()),
        negative_eigenvalues=int((spec.values < 0).sum()),
        spectrum=spec.values.tolist(),
        method="start",
        iterations=0,
    )


def polished(problem: Any, theta: Any, args: Args) -> tuple[dict[int, float], dict[str, Any]]:
    """Test accuracy after each ``curve`` budget, and the metrics after ``polish_steps``."""
    curve: dict[int, float] = {}
    done = 0
    for budget in sorted(b for b in args.curve if b < args.polish_steps):
        theta, _, _ = polish(problem.loss, theta, budget - done, args.polish_lr)
        done = budget
        curve[budget] = problem.metrics(theta)["test_accuracy"]
    theta, _, _ = polish(problem.loss, theta, args.polish_steps - done, args.polish_lr)
    return curve, problem.metrics(theta)


def summary(problem: Any, node: Node, args: Args) -> dict[str, Any]:
    """A node's metrics after its ride and, for leaves, after the polish."""
    row: dict[str, Any] = {
        "fingerprint": [list(c) for c in node.fingerprint],
        "steps": node.steps,
        "end_reason": node.end_reason,
        "leaf": node.is_leaf,
        "ride": node.metrics,
    }
    if node.is_leaf and node.fingerprint:
        row["curve"], row["polished"] = polished(problem, node.theta, args)
    return row


def run_variant(problem: Any, name: str, mis: MISResult, args: Args) -> dict[str, Any]:
    settings = RRSettings(
        **{
            **problem.default_settings(),
            "method": "approx",
            "approx_tol": args.approx_tol,
            "signs": "descent",
            "n_ridges": args.n_ridges,
            "alpha": args.alpha,
            "alpha_min": args.alpha_min,
            "overlap_threshold": args.overlap_threshold,
            "approx_update": args.approx_update,
            "order": args.order,
            "max_depth": args.max_depth,
            "max_nodes": args.max_nodes,
            "max_ride_steps": args.max_ride_steps,
            **VARIANTS[name],
        }
    )
    t0 = time.perf_counter()
    result = run_search(problem, settings, seed=args.seed, mis=mis)
    search_s = time.perf_counter() - t0
    nodes = [summary(problem, n, args) for n in result.nodes]
    leaves = [n for n in nodes if "polished" in n]
    best = max(leaves, key=lambda n: n["polished"]["test_accuracy"], default=None)
    best_ride = max(
        (n for n in nodes if n["fingerprint"]),
        key=lambda n: n["ride"]["test_accuracy"],
        default=None,
    )
    return {
        "nodes": nodes,
        "steps": result.steps,
        "search_s": search_s,
        "total_s": time.perf_counter() - t0,
        "best_leaf": best,
        "best_ride": best_ride,
    }


def gd_only(problem: Any, mis: MISResult, args: Args) -> dict[str, Any]:
    curve, metrics = polished(problem, mis.theta, args)
    return {**metrics, "curve": curve}


def pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def label(choice: list[int]) -> str:
    """``3+`` for the choice (eigen-index 3, sign +1)."""
    return f"{choice[0]}{'+' if choice[1] > 0 else '−'}"


def fig4_table(results: dict[str, Any], gd: dict[str, Any], args: Args) -> str:
    lines = [
        "| variant | best leaf test (after polish) | its train | best test after ride only "
        "| ride steps | search s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, res in results.items():
        best, ride = res["best_leaf"], res["best_ride"]
        lines.append(
            f"| {LABELS[name]} | {pct(best and best['polished']['test_accuracy'])} "
            f"| {pct(best and best['polished']['train_accuracy'])} "
            f"| {pct(ride and ride['ride']['test_accuracy'])} "
            f"| {res['steps']} | {res['search_s']:.0f} |"
        )
    lines.append(
        f"| {LABELS['gd']} ({args.polish_steps} steps from the start) "
        f"| {pct(gd['test_accuracy'])} | {pct(gd['train_accuracy'])} | – | – | – |"
    )
    return "\n".join(lines)


def curve_table(results: dict[str, Any], gd: dict[str, Any], args: Args) -> str:
    """Best leaf test accuracy (%) after each polish budget (0 = the rides alone)."""
    budgets = sorted(b for b in args.curve if b < args.polish_steps)
    head = "| variant | 0 | " + " | ".join(str(b) for b in budgets) + f" | {args.polish_steps} |"
    lines = [head, "|---" * (len(budgets) + 3) + "|"]
    for name, res in results.items():
        leaves = [n for n in res["nodes"] if "polished" in n]
        cells = [max((n["ride"]["test_accuracy"] for n in leaves), default=None)]
        cells += [max((n["curve"][b] for n in leaves), default=None) for b in budgets]
        cells.append(max((n["polished"]["test_accuracy"] for n in leaves), default=None))
        lines.append(f"| {LABELS[name]} | " + " | ".join(pct(c) for c in cells) + " |")
    start = gd["curve"]
    cells = [None, *(start[b] for b in budgets), gd["test_accuracy"]]
    lines.append("| GD from the start | " + " | ".join(pct(c) for c in cells) + " |")
    return "\n".join(lines)


def fig5_table(res: dict[str, Any], key: str) -> str:
    """Per-class test accuracy (%) of each depth-1 node, by first-ridge index and sign."""
    lines = ["| ψ[0] | " + " | ".join(str(c) for c in range(10)) + " | all |", "|---" * 12 + "|"]
    for n in res["nodes"]:
        if len(n["fingerprint"]) != 1 or key not in n:
            continue
        m = n[key]
        cells = " | ".join(pct(a) for a in m["per_class_accuracy"])
        lines.append(f"| {label(n['fingerprint'][0])} | {cells} | {pct(m['test_accuracy'])} |")
    return "\n".join(lines)


def chart(results: dict[str, Any], gd: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    names = list(results)
    for k, key in enumerate(("ride", "polished")):
        vals = []
        for name in names:
            best = results[name]["best_ride" if key == "ride" else "best_leaf"]
            vals.append(100 * best[key]["test_accuracy"] if best else 0.0)
        xs = [i + (k - 0.5) * 0.4 for i in range(len(names))]
        ax1.bar(xs, vals, 0.4, label="after ride" if key == "ride" else "after polish")
    ax1.axhline(100 * gd["test_accuracy"], color="k", ls="--", lw=1, label="GD only")
    ax1.set_xticks(range(len(names)), [LABELS[n] for n in names], fontsize=8)
    ax1.set_ylabel("best test accuracy (%)")
    ax1.set_ylim(0, 100)
    ax1.legend(fontsize=8)
    rows = [n for n in results.get("approx", {"nodes": []})["nodes"] if len(n["fingerprint"]) == 1]
    if rows:
        grid = [[100 * (a or 0.0) for a in n["ride"]["per_class_accuracy"]] for n in rows]
        im = ax2.imshow(grid, aspect="auto", cmap="viridis", vmin=0, vmax=100)
        labels = [label(n["fingerprint"][0]) for n in rows]
        ax2.set_yticks(range(len(rows)), labels, fontsize=7)
        ax2.set_xticks(range(10))
        ax2.set_xlabel("digit")
        ax2.set_ylabel("first ridge ψ[0]")
        ax2.set_title("per-class test accuracy after the first ride", fontsize=9)
        fig.colorbar(im, ax=ax2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    args = parse()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    problem = create("digits-mlp", {"hidden": args.hidden})
    t0 = time.perf_counter()
    mis = start_point(problem, args)
    print(f"{problem.n_params} parameters; start loss {mis.loss:.4f}, ‖∇L‖ {mis.grad_norm:.3f}")
    results = {}
    for name in args.variants:
        results[name] = run_variant(problem, name, mis, args)
        best = results[name]["best_leaf"]
        print(
            f"{name}: {results[name]['steps']} ride steps, {results[name]['search_s']:.0f} s, "
            f"best leaf test {pct(best and best['polished']['test_accuracy'])} %",
            flush=True,
        )
    gd = gd_only(problem, mis, args)
    elapsed = time.perf_counter() - t0
    print(fig4_table(results, gd, args))
    print("\nBest leaf test accuracy by polish steps (0: after the rides):")
    print(curve_table(results, gd, args))
    if "approx" in results:
        print("\nPer-class test accuracy after the first ride (approx. RR):")
        print(fig5_table(results["approx"], "ride"))
        print("\nPer-class test accuracy after the leaf polish (approx. RR):")
        print(fig5_table(results["approx"], "polished"))
    print(f"\n{elapsed:.0f} s in all, torch threads {args.threads}")
    chart(results, gd, args.out / "paper_mnist.png")
    (args.out / "paper_mnist.json").write_text(
        json.dumps(
            {
                "args": {**asdict(args), "out": str(args.out)},
                "gd_only": gd,
                "results": results,
                "elapsed_s": elapsed,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
