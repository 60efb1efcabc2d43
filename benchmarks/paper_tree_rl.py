"""Reproduce the paper's Fig. 2 and Fig. 3: percentage of positive leaves found on random trees.

For each depth (4, 6, 8, 10) and each of 20 random trees, run Ridge Rider with the problem's
default settings (the paper's exact RR, BFS, top N = 6, overlap threshold 0.95 and step budget
T = 10^5; ours: descent signs, three levels of branching, a 50-step polish at leaves), or with
a preset's (``--preset paper-fig2``: the settings the paper states and only those, on the
paper's kind of tree, see ``ridgerider.problems.presets``), then give
every baseline the number of steps Ridge Rider actually used on that tree, polish included:
gradient descent from random initialisations (GD R), gradient descent from the MIS (GD S),
random unit vectors from the MIS (RandVec S), fixed eigenvectors (Fixed-EV) and random ascent
directions (Rand-Ridge+). Prints a Markdown table and writes a bar chart. Several runs over
disjoint tree seeds (``--tree-start``) can be joined with ``--merge``. ``--protocol fig2`` /
``fig3`` runs the paper's whole protocol (Fig. 3: ten trees of depth 12, RR against Fixed-EV
and Rand-Ridge+ at the same budget, with ``--preset paper-fig3``); ``--setting KEY=VALUE`` and
``--set KEY=VALUE`` change one search setting or tree parameter (ablations). Per-tree rows are
in the JSON file.

    python benchmarks/paper_tree_rl.py --trees 20 --out benchmarks/results
    python benchmarks/paper_tree_rl.py --protocol fig2 --preset paper-fig2
    python benchmarks/paper_tree_rl.py --protocol fig3 --preset paper-fig3
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ridgerider.core import MISSettings, RRSettings, find_mis, run_search
from ridgerider.core.baselines import BASELINES, run_baseline
from ridgerider.core.search import coverage
from ridgerider.problems import create
from ridgerider.problems.presets import PRESETS

PROTOCOLS: dict[str, dict[str, Any]] = {
    "fig2": {"depths": [4, 6, 8, 10], "trees": 20, "baselines": list(BASELINES)},
    "fig3": {
        "depths": [12],
        "trees": 10,
        "baselines": ["fixed_eigenvectors", "random_ascent"],
    },
}
"""The paper's protocols: trees per depth and the baselines beside Ridge Rider."""

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
    preset: str | None = None
    protocol: str | None = None
    setting: list[str] = field(default_factory=list)
    set: list[str] = field(default_factory=list)
    tag: str = "paper_tree_rl"


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
    p.add_argument("--preset", choices=sorted(PRESETS), default=None, help="paper settings")
    p.add_argument("--protocol", choices=sorted(PROTOCOLS), default=None, help="paper protocol")
    p.add_argument("--setting", nargs="*", default=[], metavar="KEY=VALUE", help="search setting")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="tree parameter")
    p.add_argument("--tag", default=d.tag, help="name of the JSON and PNG files")
    args = Args(**vars(p.parse_args()))
    if args.protocol:  # the protocol's values, unless given explicitly
        given = {a.split("=")[0].lstrip("-").replace("-", "_") for a in sys.argv[1:]}
        for key, value in PROTOCOLS[args.protocol].items():
            if key not in given:
                setattr(args, key, value)
    return args


def _pairs(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings as a dict, values read as JSON where they parse (else text)."""
    out: dict[str, Any] = {}
    for item in items:
        key, _, text = item.partition("=")
        try:
            out[key] = None if text == "none" else json.loads(text)
        except json.JSONDecodeError:
            out[key] = text
    return out


def problem_and_settings(depth: int, tree_seed: int, args: Args) -> tuple[Any, RRSettings]:
    """The tree and the search settings: the problem's defaults, the preset, the overrides."""
    preset = PRESETS[args.preset] if args.preset else None
    params = {**(preset.params if preset else {}), **_pairs(args.set)}
    problem = create("tree-rl", {**params, "depth": depth, "tree_seed": tree_seed})
    budgets = {"max_steps": args.max_steps}
    if preset is None:
        budgets["max_nodes"] = args.max_nodes
    given = {**(preset.settings if preset else {}), **budgets, **_pairs(args.setting)}
    return problem, RRSettings(**{**problem.default_settings(), **given})


def one_tree(depth: int, tree_seed: int, args: Args) -> tuple[dict[str, float], dict[str, Any]]:
    """The table's numbers for one tree, and its detail row (what RR's search did)."""
    problem, settings = problem_and_settings(depth, tree_seed, args)
    gen = torch.Generator().manual_seed(args.seed)
    t0 = time.perf_counter()
    mis = find_mis(problem, MISSettings(), gen, settings.zero_tol)
    targets = problem.targets()
    first: dict[str, int] = {}  # target -> RR's steps when it was first reached

    def on_node(node: Any, steps: int) -> None:
        if node.is_solution and node.solution_key in targets:
            first.setdefault(node.solution_key, steps)

    rr = run_search(problem, settings, seed=args.seed, mis=mis, on_node=on_node)
    cov = coverage(problem, rr.nodes)
    assert cov is not None
    row = {"rr": 100.0 * cov["found"] / cov["total"], "steps": float(rr.steps)}
    detail: dict[str, Any] = {
        "depth": depth,
        "tree_seed": tree_seed,
        "targets": len(targets),
        "terminals": len(problem.tree.rewards),
        "mis_grad_norm": mis.grad_norm,
        "mis_negative": mis.negative_eigenvalues,
        "rr_found": cov["found"],
        "rr_nodes": len(rr.nodes),
        "rr_steps": rr.steps,
        "rr_stopped_by": rr.stopped_by,
        "rr_first_found_steps": sorted(first.values()),
        "rr_node_ends": dict(Counter(str(n.leaf_reason or "branched") for n in rr.nodes)),
        "rr_solutions": len(rr.solutions),
        "rr_ride_ends": dict(Counter(n.end_reason for n in rr.nodes)),
        # Targets that some node's greedy policy reached, leaf or not (a looser count).
        "rr_touched": len({str(n.metrics.get("leaf")) for n in rr.nodes} & set(targets)),
        "rr_s": time.perf_counter() - t0,
    }
    budget = max(rr.steps, 1)
    for name in args.baselines:
        res = run_baseline(problem, name, budget=budget, mis=mis, settings=settings, seed=args.seed)
        row[name] = 100.0 * res.found(targets) / len(targets)
        detail[f"{name}_found"] = res.found(targets)
    detail["elapsed_s"] = time.perf_counter() - t0
    return row, detail


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
    rows: list[dict[str, Any]] = []
    start = time.perf_counter()
    if args.merge:
        elapsed = 0.0
        for path in args.merge:
            run = json.loads(path.read_text())
            elapsed += run["elapsed_s"]
            rows += run.get("rows", [])
            for depth, cols in run["table"].items():
                for key, values in cols.items():
                    table.setdefault(int(depth), {}).setdefault(key, []).extend(values)
    else:
        for depth in args.depths:
            table[depth] = {name: [] for name in [*names, "steps"]}
            for tree_seed in range(args.tree_start, args.tree_start + args.trees):
                row, detail = one_tree(depth, tree_seed, args)
                rows.append(detail)
                for key, value in row.items():
                    table[depth][key].append(value)
                print(json.dumps(detail), flush=True)
                save(args, table, rows, time.perf_counter() - start)
        elapsed = time.perf_counter() - start
    print(report(table, names))
    print(f"{elapsed:.0f} s in all, torch threads {args.threads}")
    chart(table, names, args.out / f"{args.tag}.png")
    save(args, table, rows, elapsed)


def save(
    args: Args, table: dict[int, dict[str, list[float]]], rows: list[dict[str, Any]], elapsed: float
) -> None:
    """Write the rows so far (after every tree, so an interrupted run can still be merged)."""
    (args.out / f"{args.tag}.json").write_text(
        json.dumps(
            {"table": table, "rows": rows, "elapsed_s": elapsed, "args": str(args)}, indent=1
        )
    )


if __name__ == "__main__":
    main()
