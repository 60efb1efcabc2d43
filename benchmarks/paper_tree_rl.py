"""Reproduce the paper's Fig. 2: percentage of positive leaves found on random tree MDPs.

For each depth (4, 6, 8, 10) and each of 20 random trees, run Ridge Rider with the problem's
default settings (the paper's exact RR, BFS, top N = 6, overlap threshold 0.95 and step budget
T = 10^5; ours: descent signs, three levels of branching, a 50-step polish at leaves), then give
every baseline the number of steps Ridge Rider actually used on that tree, polish included:
gradient descent from random initialisations (GD R), gradient descent from the MIS (GD S),
random unit vectors from the MIS (RandVec S), fixed eigenvectors (Fixed-EV) and random ascent
directions (Rand-Ridge+). Prints a Markdown table and writes a bar chart. Several runs over
disjoint tree seeds (``--tree-start``) can be joined with ``--merge``.

    python benchmarks/paper_tree_rl.py --trees 20 --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ridgerider.core import MISSettings, RRSettings, find_mis, run_search
from ridgerider.core.baselines import BASELINES, run_baseline
from ridgerider.core.search import coverage
from ridgerider.problems import create

LABELS = {
    "rr": "Ridge Rider",
    "gd_random": "GD (R)",
    "gd_mis": "GD (S)",
    "random_vectors": "RandVec (S)",
    "fixed_eigenvectors": "Fixed-EV",
    "random_ascent": "Rand-Ridge+",
}


@dataclass
class Args:
    depths: list[int] = field(default_factory=lambda: [4, 6, 8, 10])
    trees: int = 20
    tree_start: int = 0
    max_steps: int = 100_000
    max_nodes: int = 3000
    merge: list[Path] = field(default_factory=list)
    seed: int = 0
    threads: int = 1
    out: Path = Path("benchmarks/results")
    baselines: list[str] = field(default_factory=lambda: list(BASELINES))


def parse() -> Args:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    d = Args()
    p.add_argument("--depths", type=int, nargs="+", default=d.depths)
    p.add_argument("--trees", type=int, default=d.trees)
    p.add_argument("--tree-start", type=int, default=d.tree_start, help="first tree seed")
    p.add_argument("--max-steps", type=int, default=d.max_steps)
    p.add_argument("--max-nodes", type=int, default=d.max_nodes)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--threads", type=int, default=d.threads)
    p.add_argument("--out", type=Path, default=d.out)
    p.add_argument("--baselines", nargs="*", default=d.baselines, choices=BASELINES)
    p.add_argument(
        "--merge", type=Path, nargs="*", default=d.merge, help="JSON files of earlier runs to join"
    )
    return Args(**vars(p.parse_args()))


def one_tree(depth: int, tree_seed: int, args: Args) -> dict[str, float]:
    problem = create("tree-rl", {"depth": depth, "tree_seed": tree_seed})
    settings = RRSettings(
        **{**problem.default_settings(), "max_steps": args.max_steps, "max_nodes": args.max_nodes}
    )
    gen = torch.Generator().manual_seed(args.seed)
    mis = find_mis(problem, MISSettings(), gen, settings.zero_tol)
    rr = run_search(problem, settings, seed=args.seed, mis=mis)
    cov = coverage(problem, rr.nodes)
    assert cov is not None
    targets = problem.targets()
    row = {"rr": 100.0 * cov["found"] / cov["total"], "steps": float(rr.steps)}
    budget = max(rr.steps, 1)
    for name in args.baselines:
        res = run_baseline(problem, name, budget=budget, mis=mis, settings=settings, seed=args.seed)
        row[name] = 100.0 * res.found(targets) / len(targets)
    return row


def chart(table: dict[int, dict[str, list[float]]], names: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    depths = sorted(table)
    width = 0.8 / len(names)
    fig, ax = plt.subplots(figsize=(9, 4))
    for k, name in enumerate(names):
        means = [statistics.mean(table[d][name]) for d in depths]
        errs = [statistics.pstdev(table[d][name]) / len(table[d][name]) ** 0.5 for d in depths]
        xs = [i + (k - (len(names) - 1) / 2) * width for i in range(len(depths))]
        ax.bar(xs, means, width, yerr=errs, capsize=2, label=LABELS[name])
    ax.set_xticks(range(len(depths)), [f"depth {d}" for d in depths])
    ax.set_ylabel("positive leaves found (%)")
    ax.set_ylim(0, 105)
    ax.legend(fontsize=8, ncols=3, loc="upper center", bbox_to_anchor=(0.5, -0.1))
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def report(table: dict[int, dict[str, list[float]]], names: list[str]) -> str:
    """The Markdown table: mean ± standard deviation per depth and method."""
    header = "| depth | trees | " + " | ".join(LABELS[n] for n in names) + " | RR steps (mean) |"
    lines = [header, "|" + "---|" * (len(names) + 3)]
    for depth in sorted(table):
        cells = [
            f"{statistics.mean(table[depth][n]):.1f} ± {statistics.pstdev(table[depth][n]):.1f}"
            for n in names
        ]
        lines.append(
            f"| {depth} | {len(table[depth]['rr'])} | "
            + " | ".join(cells)
            + f" | {statistics.mean(table[depth]['steps']):.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    args = parse()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    names = ["rr", *args.baselines]
    table: dict[int, dict[str, list[float]]] = {}
    start = time.perf_counter()
    if args.merge:
        elapsed = 0.0
        for path in args.merge:
            run = json.loads(path.read_text())
            elapsed += run["elapsed_s"]
            for depth, cols in run["table"].items():
                for key, values in cols.items():
                    table.setdefault(int(depth), {}).setdefault(key, []).extend(values)
    else:
        for depth in args.depths:
            table[depth] = {name: [] for name in [*names, "steps"]}
            for tree_seed in range(args.tree_start, args.tree_start + args.trees):
                row = one_tree(depth, tree_seed, args)
                for key, value in row.items():
                    table[depth][key].append(value)
                print(
                    f"depth {depth} tree {tree_seed}: "
                    + ", ".join(f"{k} {v:.0f}" for k, v in row.items()),
                    flush=True,
                )
                save(args, table, time.perf_counter() - start)
        elapsed = time.perf_counter() - start
    print(report(table, names))
    print(f"{elapsed:.0f} s in all, torch threads {args.threads}")
    chart(table, names, args.out / "paper_tree_rl.png")
    save(args, table, elapsed)


def save(args: Args, table: dict[int, dict[str, list[float]]], elapsed: float) -> None:
    """Write the rows so far (after every tree, so an interrupted run can still be merged)."""
    (args.out / "paper_tree_rl.json").write_text(
        json.dumps({"table": table, "elapsed_s": elapsed, "args": str(args)}, indent=1)
    )


if __name__ == "__main__":
    main()
