"""Batched exact rides through the worker: branches per second, batched against one by one.

Each case is one job run twice to the same budget by one :class:`~ridgerider.workers.worker.Worker`
claiming ``--batch`` branches at a time on an in-memory frontier: once riding the claimed branches
one after another (``ride_together=False``, ``core.expand.expand`` per branch) and once together
(``core.expand_batched.expand_each``: rides in lockstep, batched Hessians and ``eigh``). The two
trees must be the same bits (every node's key, loss, steps, end reason, metrics and θ; checked),
so the ratio is a like-for-like speedup. Best of ``--repeats``; one torch thread.

Then one run of each mode under ``cProfile`` splits the time: Hessians (``hessian`` and
``hessians``), LAPACK's ``eigh``, the leaves' polish (gradient descent) and the rest (losses,
signs and overlaps, small tensor ops, the Python around them, the frontier).

    python benchmarks/batched_worker.py --out benchmarks/results

Cases: ``lever-game`` (its default settings; ``--rides-only`` sets ``polish_steps=0``) and
``tree-rl`` depth 10, ``tree_seed`` 5555, each to ``--max-nodes`` nodes in BFS order.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from ridgerider.core import RRSettings
from ridgerider.problems import create
from ridgerider.services import jobs
from ridgerider.services.frontier.memory import MemoryFrontier
from ridgerider.services.storage.memory import InMemoryStorage
from ridgerider.workers.worker import Worker

CASES: list[tuple[str, dict[str, Any]]] = [
    ("lever-game", {}),
    ("tree-rl", {"depth": 10, "tree_seed": 5555}),
]

PROFILE_PARTS = {
    "hessian": ("hessian", "hessians"),
    "eigh": ("torch._C._linalg.linalg_eigh",),
    "polish": ("polish", "polish_many"),
}


def run_job(
    name: str, params: dict[str, Any], settings: RRSettings, batch: int, together: bool
) -> tuple[float, dict[str, Any], int]:
    """One job by one worker: wall seconds, its tree (bits by key) and its ride steps."""
    frontier = MemoryFrontier(InMemoryStorage())
    job = jobs.submit(frontier.storage, frontier, name, params, settings, seed=0)
    worker = Worker(frontier, job_id=job.id, batch=batch, ride_together=together)
    t0 = time.perf_counter()
    worker.run()
    wall = time.perf_counter() - t0
    tree = {}
    for n in frontier.storage.iter_nodes(job.id):
        theta = frontier.storage.node_theta(n.id)
        assert theta is not None
        tree[n.key] = (n.loss.hex(), n.steps, n.end_reason, n.metrics, theta.numpy().tobytes())
    record = frontier.storage.get_job(job.id)
    assert record is not None and record.status == "succeeded", record
    frontier.close()
    return wall, tree, record.steps


def profile(
    name: str, params: dict[str, Any], settings: RRSettings, batch: int, together: bool
) -> dict[str, float]:
    """Seconds in each part of :data:`PROFILE_PARTS` (cumulative, under cProfile), and the rest."""
    prof = cProfile.Profile()
    prof.enable()
    run_job(name, params, settings, batch, together)
    prof.disable()
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    total = max(v[3] for v in stats.values())
    out: dict[str, float] = {}
    for part, names in PROFILE_PARTS.items():
        out[part] = sum(
            v[3]
            for (_f, _l, fn), v in stats.items()
            if fn in names or ("." in names[0] and names[0] in fn)
        )
    out["rest"] = total - sum(out.values())
    out["total"] = total
    return {k: round(v, 4) for k, v in out.items()}


def one_case(name: str, params: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Both modes of one job: rates, ratio, the trees checked equal, the profile."""
    problem = create(name, params)
    over: dict[str, Any] = {"max_nodes": args.max_nodes}
    if args.rides_only:
        over["polish_steps"] = 0
    settings = RRSettings(**{**problem.default_settings(), **over})
    run_job(name, params, replace(settings, max_nodes=20), args.batch, True)  # imports, caches
    best: dict[bool, float] = {}
    trees: dict[bool, dict[str, Any]] = {}
    steps = 0
    for _ in range(args.repeats):
        for together in (False, True):
            wall, tree, steps = run_job(name, params, settings, args.batch, together)
            best[together] = min(best.get(together, float("inf")), wall)
            assert trees.setdefault(together, tree) == tree
    same = trees[False] == trees[True]
    assert same, "the batched tree differs from the one-by-one tree"
    branches = len(trees[True]) - 1  # the root is branched from, not ridden
    row = {
        "problem": name,
        "params": params,
        "n_params": problem.n_params,
        "batch": args.batch,
        "nodes": len(trees[True]),
        "ride_steps": steps,
        "same_tree": same,
        "loop_s": round(best[False], 4),
        "batched_s": round(best[True], 4),
        "loop_branches_per_s": round(branches / best[False], 1),
        "batched_branches_per_s": round(branches / best[True], 1),
        "ratio": round(best[False] / best[True], 2),
    }
    if args.profile:
        row["profile_loop"] = profile(name, params, settings, args.batch, False)
        row["profile_batched"] = profile(name, params, settings, args.batch, True)
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--batch", type=int, default=16, help="branches per claim")
    p.add_argument("--max-nodes", type=int, default=300)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--rides-only", action="store_true", help="polish_steps=0 (no leaf descent)")
    p.add_argument("--no-profile", dest="profile", action="store_false")
    p.add_argument("--cases", default=",".join(c for c, _ in CASES), help="comma-separated")
    p.add_argument("--out", type=Path, default=None, help="folder for batched_worker.json")
    args = p.parse_args()
    torch.set_num_threads(1)
    wanted = args.cases.split(",")
    rows = [one_case(n, dict(prm), args) for n, prm in CASES if n in wanted]
    print("| problem | nodes | steps | one by one (branches/s) | batched (branches/s) | ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['problem']} {r['params']} | {r['nodes']} | {r['ride_steps']} "
            f"| {r['loop_branches_per_s']} | {r['batched_branches_per_s']} | {r['ratio']}× |"
        )
        for mode in ("profile_loop", "profile_batched"):
            if mode in r:
                print(f"  {mode}: {r[mode]}")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        doc = {"batch": args.batch, "rides_only": args.rides_only, "rows": rows}
        (args.out / "batched_worker.json").write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
