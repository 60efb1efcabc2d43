"""Zero-shot coordination on the lever game (paper Fig. 6): the cross-play scheme, repeated.

For each lever layout and each master seed, ``run_crossplay`` runs R replicates; fingerprints
are grouped by the payoff class their leaves reach (the modal payoff of player 1's greedy lever
over replicates), and the report gives per class the mean cross-play, the chosen fingerprint,
whether its leaves coordinate on the layout's unique lever, and the baselines.

The paper's protocol is 25 replicates, repeated five times (``--replicates 25 --seeds 5``, the
default). ``--replicates`` takes several values to measure how many replicates the scheme needs
to pick the unique lever reliably (held-out master seeds: ``--seed-start``).

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/crossplay_lever.py
    PYTHONPATH=src python benchmarks/crossplay_lever.py --replicates 4 8 12 16 --seeds 10 \
        --seed-start 100 --layouts paper
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

import torch

from ridgerider.services.crossplay import run_crossplay

LAYOUTS = {
    "paper": "1,1,1,1,1,1,1,0.8,0.8,0.6",
    "other-play": "1,1,1,1,1,1,1,1,1,0.9",
    "three-classes": "1,1,1,1,1,1,0.7,0.7,0.7,0.4",
}
"""Lever payoffs, each with one unique lowest lever that is the zero-shot optimum: the paper's
(7×1.0, 2×0.8, 1×0.6), the original Other-Play game (9×1.0, 1×0.9) and a third (6×1.0,
3×0.7, 1×0.4: the classes' cross-play is about 1/6, 0.7/3 and 0.4)."""


def leaf_class(row: dict[str, Any], payoffs: list[float]) -> float:
    """The payoff most replicates' leaves of this fingerprint coordinate on."""
    levers = [int(k.split("/")[0]) for k in row["solution_keys"]]
    return Counter(payoffs[a] for a in levers).most_common(1)[0][0]


def by_class(report: dict[str, Any]) -> dict[float, list[float]]:
    """Cross-play of every fingerprint, grouped by the payoff class it reaches."""
    payoffs = list(report["params"]["payoffs"])
    out: dict[float, list[float]] = {}
    for row in report["fingerprints"]:
        out.setdefault(leaf_class(row, payoffs), []).append(row["xp"])
    return out


def unique_levers(payoffs: list[float]) -> set[int]:
    """Levers whose payoff no other lever has."""
    counts = Counter(payoffs)
    return {a for a, r in enumerate(payoffs) if counts[r] == 1}


def one_run(layout: str, replicates: int, seed: int) -> dict[str, Any]:
    """One cross-play run (R replicates, one master seed) summarised."""
    t0 = time.perf_counter()
    params = {"payoffs": LAYOUTS[layout]}
    report = run_crossplay("lever-game", params, replicates, seed=seed).to_dict()
    payoffs = list(report["params"]["payoffs"])
    classes = by_class(report)
    levers = report["chosen"]["metrics"]["levers"]
    return {
        "layout": layout,
        "replicates": replicates,
        "seed": seed,
        "chosen": report["chosen"]["fingerprint"],
        "chosen_levers": levers,
        "unique": all(a in unique_levers(payoffs) for a in levers),
        "chosen_xp": report["chosen"]["xp"],
        "xp_by_class": {str(k): statistics.mean(v) for k, v in sorted(classes.items())},
        "fingerprints_by_class": {str(k): len(v) for k, v in sorted(classes.items())},
        "self_play_xp": report["baselines"]["self_play"]["xp"],
        "self_play_sp": report["baselines"]["self_play"]["sp"],
        "rr_self_play_choice": report["baselines"]["rr_self_play"]["fingerprint"],
        "rr_self_play_xp": report["baselines"]["rr_self_play"]["xp"],
        "elapsed_s": time.perf_counter() - t0,
    }


def summary(rows: list[dict[str, Any]]) -> str:
    """Markdown: per layout and replicate count, how often the unique lever was chosen."""
    lines = [
        "| layout | replicates | runs | unique lever chosen | chosen XP (mean) | XP by class |",
        "|---|---|---|---|---|---|",
    ]
    keys = sorted({(r["layout"], r["replicates"]) for r in rows})
    for layout, reps in keys:
        sel = [r for r in rows if r["layout"] == layout and r["replicates"] == reps]
        by: dict[str, list[float]] = {}
        for r in sel:
            for k, v in r["xp_by_class"].items():
                by.setdefault(k, []).append(v)
        classes = ", ".join(f"{k}: {statistics.mean(v):.3f}" for k, v in sorted(by.items()))
        lines.append(
            f"| {layout} | {reps} | {len(sel)} | {sum(r['unique'] for r in sel)}/{len(sel)} "
            f"| {statistics.mean(r['chosen_xp'] for r in sel):.3f} | {classes} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=5, help="repeats (master seeds)")
    parser.add_argument("--seed-start", type=int, default=0, help="first master seed")
    parser.add_argument("--replicates", type=int, nargs="+", default=[25])
    parser.add_argument("--layouts", nargs="+", default=list(LAYOUTS), choices=list(LAYOUTS))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    start = time.perf_counter()
    for layout in args.layouts:
        for reps in args.replicates:
            for seed in range(args.seed_start, args.seed_start + args.seeds):
                row = one_run(layout, reps, seed)
                rows.append(row)
                print(json.dumps(row), flush=True)
    table = summary(rows)
    print(table)
    print(f"{time.perf_counter() - start:.0f} s in all, torch threads 1")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "crossplay_lever.json"
    path.write_text(json.dumps({"args": vars(args) | {"out": str(args.out)}, "runs": rows}))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
