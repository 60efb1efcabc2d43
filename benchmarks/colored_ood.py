"""The paper's Table 1: out-of-distribution accuracy on Colored MNIST, our figures beside its own.

For each seed (the data seed of the construction and the initialisation seed), one problem is
built (``colored-digits`` by default, offline; ``colored-mnist`` with ``--data-dir``) and every
method runs on the same environments:

* **RR**: the out-of-distribution Ridge Rider search (``method="ood"``, the problem's default
  settings plus ``--setting``), its solutions found on the training environments alone; the one
  with the highest validation accuracy is *chosen* (``core.selection``), and its train / test
  accuracy is the row's;
* **ERM**, **IRM**, **grayscale**, **chance** (``problems.colored_baselines``: the IRM reference
  code's models and schedules).

Train accuracy is on the pooled training part of both training environments, test accuracy on
the test environment (colour agreeing with the label 10 % of the time). Each cell is the mean
over seeds with a 95 % t-interval (half-width).

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/colored_ood.py              # 10 seeds
    PYTHONPATH=src python benchmarks/colored_ood.py --problem colored-mnist --data-dir DIR
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from scipy import stats

from ridgerider.core import RRSettings, run_search
from ridgerider.core.selection import choose
from ridgerider.core.settings import METHODS
from ridgerider.problems import create
from ridgerider.problems.colored_baselines import (
    ERM,
    GRAYSCALE,
    IRM,
    OODScores,
    chance,
    train_baseline,
)

PAPER = {
    "RR": (65.5, 1.68, 58.4, 2.41),
    "ERM": (87.4, 1.70, 17.8, 1.33),
    "IRM": (69.7, 0.71, 65.7, 1.42),
    "grayscale": (None, None, None, None),
    "chance": (50.0, None, 50.0, None),
    "optimum": (75.0, None, 75.0, None),
}
"""Table 1 of the paper (train mean, ±, test mean, ±; Colored MNIST, 30 runs for RR)."""

METHODS_RUN = ("RR", "ERM", "IRM", "grayscale", "chance")


def parse_setting(text: str) -> tuple[str, Any]:
    """``key=value`` with the value read as JSON where it parses (numbers, booleans)."""
    key, _, raw = text.partition("=")
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw


def run_rr(problem: Any, seed: int, overrides: dict[str, Any]) -> dict[str, Any]:
    """One OOD Ridge Rider search; the validation-chosen solution's scores and the tree's size."""
    settings = RRSettings(**{**problem.default_settings(), "method": "ood", **overrides})
    start = time.perf_counter()
    result = run_search(problem, settings, seed=seed)
    elapsed = time.perf_counter() - start
    best = choose(result.solutions)
    row: dict[str, Any] = {
        "method": "RR",
        "nodes": len(result.nodes),
        "solutions": len(result.solutions),
        "search_s": round(elapsed, 2),
        "solution_scores": [
            {
                "fingerprint": [list(c) for c in n.fingerprint],
                **{k: n.metrics.get(f"{k}_accuracy") for k in ("train", "validation", "test")},
            }
            for n in result.solutions
        ],
    }
    if best is None:
        return row | {"train": None, "validation": None, "test": None}
    return row | {
        "fingerprint": [list(c) for c in best.fingerprint],
        "train": best.metrics["train_accuracy"],
        "validation": best.metrics["validation_accuracy"],
        "test": best.metrics["test_accuracy"],
    }


def _scores(s: OODScores) -> dict[str, Any]:
    return {"method": s.method, "train": s.train, "validation": s.validation, "test": s.test}


def run_seed(args: argparse.Namespace, seed: int, overrides: dict[str, Any]) -> list[dict]:
    """Every method on the problem of one seed."""
    params: dict[str, Any] = {"data_seed": seed, "init_seed": seed}
    if args.problem == "colored-mnist":
        params |= {"data_dir": args.data_dir, "n_images": args.n_images}
    problem = create(args.problem, params)
    envs = problem.environments()
    rows: list[dict[str, Any]] = []
    for name in args.methods:
        start = time.perf_counter()
        if name == "RR":
            row = run_rr(problem, seed, overrides)
        elif name == "chance":
            row = _scores(chance(envs))
        else:
            base = {"ERM": ERM, "IRM": IRM, "grayscale": GRAYSCALE}[name]
            if args.baseline_steps:
                base = replace(base, steps=args.baseline_steps)
            row = _scores(train_baseline(envs, base, seed))
        row |= {"seed": seed, "wall_s": round(time.perf_counter() - start, 2)}
        rows.append(row)
        print(
            f"seed {seed} {name:9s} train {_pct(row['train'])} val {_pct(row['validation'])} "
            f"test {_pct(row['test'])}  ({row['wall_s']} s)",
            flush=True,
        )
    return rows


def _pct(x: float | None) -> str:
    return "  -  " if x is None else f"{100 * x:5.1f}"


def interval(values: list[float]) -> tuple[float, float]:
    """Mean and 95 % t-interval half-width, in percent."""
    pct = [100 * v for v in values]
    if len(pct) < 2:
        return pct[0], math.nan
    half = stats.t.ppf(0.975, len(pct) - 1) * statistics.stdev(pct) / math.sqrt(len(pct))
    return statistics.fmean(pct), float(half)


def summarise(rows: list[dict[str, Any]], methods: list[str]) -> dict[str, Any]:
    """Mean ± 95 % interval of train and test accuracy per method (seeds without a result out)."""
    out: dict[str, Any] = {}
    for name in methods:
        mine = [r for r in rows if r["method"] == name and r["test"] is not None]
        if not mine:
            continue
        out[name] = {
            "seeds": len(mine),
            "train": interval([r["train"] for r in mine]),
            "test": interval([r["test"] for r in mine]),
        }
    return out


def table(summary: dict[str, Any], problem: str) -> str:
    """Markdown: ours beside the paper's Table 1."""

    def cell(mean: float | None, half: float | None) -> str:
        if mean is None:
            return "–"
        return f"{mean:.1f}" if half is None or math.isnan(half) else f"{mean:.1f} ± {half:.2f}"

    lines = [
        f"| method | seeds | train ({problem}) | test ({problem}) | paper train | paper test |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in [*METHODS_RUN, "optimum"]:
        ours = summary.get(name)
        paper = PAPER[name]
        lines.append(
            f"| {name} | {ours['seeds'] if ours else '–'} | "
            f"{cell(*ours['train']) if ours else '–'} | {cell(*ours['test']) if ours else '–'} | "
            f"{cell(paper[0], paper[1])} | {cell(paper[2], paper[3])} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--problem", default="colored-digits", choices=["colored-digits", "colored-mnist"]
    )
    parser.add_argument("--data-dir", help="MNIST IDX files (colored-mnist)")
    parser.add_argument("--n-images", type=int, default=0, help="colored-mnist: first n images")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--seed-start", type=int, default=0)
    parser.add_argument("--methods", nargs="+", default=list(METHODS_RUN), choices=METHODS_RUN)
    parser.add_argument(
        "--baseline-steps", type=int, default=0, help="Adam steps of ERM/IRM (0: their 501)"
    )
    parser.add_argument("--setting", action="append", default=[], help="RR setting key=value")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--tag", default="colored_ood")
    args = parser.parse_args()
    if args.problem == "colored-mnist" and not args.data_dir:
        parser.error("--data-dir is required for colored-mnist")
    if "RR" in args.methods and "ood" not in METHODS:
        parser.error("this build has no method 'ood'")
    torch.set_num_threads(1)
    overrides = dict(parse_setting(s) for s in args.setting)
    rows: list[dict[str, Any]] = []
    start = time.perf_counter()
    for seed in range(args.seed_start, args.seed_start + args.seeds):
        rows += run_seed(args, seed, overrides)
    summary = summarise(rows, args.methods)
    text = table(summary, args.problem)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    report = {
        "problem": args.problem,
        "seeds": list(range(args.seed_start, args.seed_start + args.seeds)),
        "rr_settings": overrides,
        "rows": rows,
        "summary": summary,
        "paper": PAPER,
        "wall_s": round(time.perf_counter() - start, 1),
    }
    (args.out / f"{args.tag}.json").write_text(json.dumps(report, indent=2))
    (args.out / f"{args.tag}.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
