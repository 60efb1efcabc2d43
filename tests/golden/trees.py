"""Golden trees: a hash per job of every node's fingerprint, θ bytes and loss.

The jobs are small and fixed. ``python tests/golden/trees.py --write`` records the hashes in
``trees.json`` beside this file; ``tests/test_golden.py`` recomputes them and compares. A change
that alters a tree on purpose rewrites the file in the same commit and says why.

Bits depend on the CPU's float kernels (near-tied eigenvalues can swap), so the hashes are
those of the machine CI runs on, with one torch thread.
"""

from __future__ import annotations

import hashlib
import json
import struct
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

GOLDEN = Path(__file__).with_name("trees.json")

JOBS: dict[str, dict[str, Any]] = {
    "toy2d": {"problem": "toy2d", "params": {}, "settings": {}, "seed": 0},
    "tree-rl-6": {
        "problem": "tree-rl",
        "params": {"depth": 6, "tree_seed": 2},
        "settings": {"max_nodes": 120},
        "seed": 1,
    },
    "tree-rl-8": {
        "problem": "tree-rl",
        "params": {"depth": 8, "tree_seed": 7},
        "settings": {"max_nodes": 80, "order": "dfs"},
        "seed": 2,
    },
    "lever-game": {
        "problem": "lever-game",
        "params": {},
        "settings": {"max_nodes": 60},
        "seed": 0,
    },
    "coord-game": {
        "problem": "coord-game",
        "params": {"classes": "1.0x3,0.6x1"},
        "settings": {"max_nodes": 40},
        "seed": 0,
    },
    "digits-mlp-approx": {
        "problem": "digits-mlp",
        "params": {"hidden": "8", "init_seed": 1},
        "settings": {
            "method": "approx",
            "max_nodes": 3,
            "n_ridges": 2,
            "max_ride_steps": 5,
            "max_depth": 1,
        },
        "seed": 0,
    },
}
CROSSPLAY: dict[str, Any] = {"problem": "lever-game", "replicates": 3, "seed": 0}


def _digest(rows: list[tuple[str, torch.Tensor, float]]) -> str:
    h = hashlib.sha256()
    for key, theta, loss in rows:
        h.update(key.encode())
        h.update(theta.detach().to(torch.float64).contiguous().numpy().tobytes())
        h.update(struct.pack("<d", float(loss)))
    return h.hexdigest()


def tree_hash(name: str) -> dict[str, Any]:
    """Run job ``name`` of :data:`JOBS` with the engine; its node count and hash."""
    from ridgerider.core import RRSettings, run_search
    from ridgerider.problems import create

    job = JOBS[name]
    problem = create(job["problem"], job["params"])
    settings = RRSettings(**{**problem.default_settings(), **job["settings"]})
    result = run_search(problem, settings, seed=job["seed"])
    rows = [(n.key, n.theta, n.loss) for n in result.nodes]
    return {"nodes": len(rows), "hash": _digest(rows)}


def _crossplay_runner() -> Callable[..., Any]:
    try:
        from ridgerider.services.crossplay import run_crossplay
    except ImportError:  # pragma: no cover - older layouts
        from ridgerider.services.crossplay_runs import run_crossplay  # type: ignore
    return run_crossplay


def crossplay_hash() -> dict[str, Any]:
    """Hash of the cross-play report's fingerprints, their leaves' keys and scores."""
    report = _crossplay_runner()(
        CROSSPLAY["problem"], None, CROSSPLAY["replicates"], seed=CROSSPLAY["seed"]
    )
    rows = [
        (r["fingerprint"], r["solution_keys"], r["xp"], r["sp"], r["eigenvalue"])
        for r in report.fingerprints
    ]
    text = json.dumps([rows, report.chosen["fingerprint"]], sort_keys=True)
    return {"fingerprints": len(rows), "hash": hashlib.sha256(text.encode()).hexdigest()}


def compute() -> dict[str, Any]:
    """Every golden hash."""
    torch.set_num_threads(1)
    out: dict[str, Any] = {name: tree_hash(name) for name in JOBS}
    out["crossplay"] = crossplay_hash()
    return out


if __name__ == "__main__":
    result = compute()
    print(json.dumps(result, indent=2))
    if "--write" in sys.argv:
        GOLDEN.write_text(json.dumps(result, indent=2) + "\n")
