"""Zero-shot coordination on the lever game: the cross-play scheme over several master seeds.

For each master seed, ``run_crossplay`` runs R replicates; fingerprints are grouped by the
payoff class their leaves reach (the modal payoff of player 1's greedy lever over replicates),
and the report gives per class the mean cross-play, the chosen fingerprint and the baselines.

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/crossplay_lever.py --seeds 5 --replicates 8
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--replicates", type=int, default=8)
    parser.add_argument("--payoffs", default=None, help="lever payoffs (default: the paper's)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/crossplay_lever.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    params = {"payoffs": args.payoffs} if args.payoffs else {}
    rows = []
    for seed in range(args.seeds):
        t0 = time.perf_counter()
        report = run_crossplay("lever-game", params, args.replicates, seed=seed).to_dict()
        classes = by_class(report)
        row = {
            "seed": seed,
            "chosen": report["chosen"]["fingerprint"],
            "chosen_levers": report["chosen"]["metrics"]["levers"],
            "chosen_xp": report["chosen"]["xp"],
            "xp_by_class": {str(k): statistics.mean(v) for k, v in sorted(classes.items())},
            "fingerprints_by_class": {str(k): len(v) for k, v in sorted(classes.items())},
            "self_play_xp": report["baselines"]["self_play"]["xp"],
            "self_play_sp": report["baselines"]["self_play"]["sp"],
            "rr_self_play_choice": report["baselines"]["rr_self_play"]["fingerprint"],
            "rr_self_play_xp": report["baselines"]["rr_self_play"]["xp"],
            "elapsed_s": time.perf_counter() - t0,
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"replicates": args.replicates, "params": params, "runs": rows}, indent=2)
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
