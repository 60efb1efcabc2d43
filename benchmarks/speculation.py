"""Speculative orders: simulated scaling of every search order, its bound and its waste.

Branches *sleep* (``--sleep-s``) instead of riding, on a finite wide tree (``--fanout``
children per node down to ``--depth``, then leaves: 4,681 nodes by default). Workers are
threads of this process, each a full ``Worker`` with its own claims, leases and heartbeats
against the frontier (a scratch SQLite file unless ``--database-url``), one branch a claim.

1. **Scaling**: for each order and worker count, a fresh job; the rate is the growth of the
   job's *tree* (its finished prefix: what the one-process loop would have expanded, so rides
   ahead of their turn count only once they join it) per second, over a window of
   ``--window`` rides per worker, once ``--warm`` + 2 per worker nodes are in the tree. Speedup =
   rate ÷ the same order's one-worker rate. ``dfs`` is also run with speculation off
   (``speculation=0``): what the sequencer gave before.
2. **Bound**: a ride starts only after its parent's ride, so a whole job takes at least
   ``depth + 1`` ride times, and ``W`` workers at least ``nodes / W``: the bound on the whole
   job's speedup is ``min(W, nodes / (depth + 1))``. The window rates are bounded by ``W``.
3. **Waste**: per order, one whole job with a node budget (``--budget`` of the tree's
   nodes) at the largest worker count: rides done that never joined the tree ÷ all rides.

    python benchmarks/speculation.py --json benchmarks/results/speculation.json
    python benchmarks/speculation.py --quick     # seconds: checks that everything runs

Timings depend on the machine's load: compare rows of one run.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from ridgerider.services import jobs
from ridgerider.services.archive import Archive, open_archive
from ridgerider.workers.worker import Worker
from synthetic_tree import sleep_expand, start_job, tree_nodes

ORDERS = ("bfs", "dfs", "priority", "random")


@dataclass
class Args:
    database_url: str | None = None
    orders: list[str] = field(default_factory=lambda: list(ORDERS))
    workers: list[int] = field(default_factory=lambda: [1, 16, 64])
    sleep_s: float = 0.5
    fanout: int = 8
    depth: int = 4
    window: int = 20
    """Rides per worker in a measuring window."""
    warm: int = 10
    """Tree nodes done before a window starts, beside two per worker (all busy by then)."""
    budget: float = 0.4
    """The waste part's node budget, as a fraction of the tree."""
    speculation: int = 256
    json: str | None = None

    def tree_nodes(self) -> int:
        """Nodes of the whole synthetic tree."""
        return tree_nodes(self.fanout, self.depth)


def tree_size(archive: Archive, job_id: int) -> int:
    """Nodes in the job's finished tree (its prefix)."""
    job = archive.storage.get_job(job_id)
    assert job is not None
    return job.nodes


def ridden(archive: Archive, job_id: int) -> int:
    """Rows ridden (done), in the tree or ahead of it."""
    return archive.storage.count_nodes(job_id).get("done", 0)


def run_workers(archive: Archive, job_id: int, n: int, args: Args, until: Any) -> float:
    """``n`` worker threads until ``until()``; the wall time from their start."""
    fn = functools.partial(sleep_expand, s=args.sleep_s, fanout=args.fanout, depth=args.depth)
    workers = [Worker(archive.frontier, job_id=job_id, expand_fn=fn, poll_s=0.01) for _ in range(n)]
    threads = [threading.Thread(target=w.run, daemon=True) for w in workers]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    try:
        until()
        return time.monotonic() - t0
    finally:
        for w in workers:
            w.stop()
        for t in threads:
            t.join(120)


def window_rate(archive: Archive, order: str, n: int, args: Args) -> float:
    """Tree nodes per second over ``window`` rides per worker, after ``warm`` nodes."""
    job = start_job(archive, order)
    out: dict[str, float] = {}

    def measure() -> None:
        while tree_size(archive, job) < args.warm + 2 * n:
            time.sleep(0.05)
        t0, n0 = time.monotonic(), tree_size(archive, job)
        time.sleep(args.window * args.sleep_s)
        out["rate"] = (tree_size(archive, job) - n0) / (time.monotonic() - t0)

    try:
        run_workers(archive, job, n, args, measure)
    finally:
        jobs.cancel(archive.storage, job)
    return out["rate"]


def waste(archive: Archive, order: str, n: int, args: Args) -> dict[str, Any]:
    """A whole job with a node budget: rides that never joined the tree, of all rides."""
    budget = int(args.budget * args.tree_nodes())
    job = start_job(archive, order, max_nodes=budget)

    def finished() -> None:
        while (rec := archive.storage.get_job(job)) is not None and rec.status == "running":
            time.sleep(0.05)

    wall = run_workers(archive, job, n, args, finished)
    nodes, rides = tree_size(archive, job), ridden(archive, job)
    return {"order": order, "workers": n, "budget": budget, "tree": nodes, "rides": rides,
            "wasted": rides - nodes, "waste_fraction": (rides - nodes) / max(rides, 1),
            "wall_s": wall}  # fmt: skip


def main(args: Args) -> dict[str, Any]:
    tmp = tempfile.TemporaryDirectory()
    url = args.database_url or f"sqlite:///{tmp.name}/speculation.db"
    archive = open_archive(url)
    archive.frontier.speculation = args.speculation  # type: ignore[attr-defined]
    archive.frontier.start_reaper()
    nodes = args.tree_nodes()
    res: dict[str, Any] = {
        "args": asdict(args),
        "tree_nodes": nodes,
        "machine": {
            "cpus": os.cpu_count(),
            "load_avg_start": os.getloadavg(),
            "python": platform.python_version(),
            "backend": archive.storage.db.dialect,
        },
        "scaling": [],
        "waste": [],
    }
    t0 = time.time()
    try:
        for order in args.orders:
            base = None
            for n in args.workers:
                r = window_rate(archive, order, n, args)
                base = base or r
                bound = min(n, nodes / (args.depth + 1))
                row = {"order": order, "workers": n, "per_s": r, "speedup": r / base,
                       "bound": bound, "speculation": args.speculation}  # fmt: skip
                res["scaling"].append(row)
                print(f"{order:8s} {n:3d} workers: {r:7.2f} nodes/s  {r / base:5.1f}x", flush=True)
            if order == "dfs" and base is not None:
                archive.frontier.speculation = 0  # type: ignore[attr-defined]
                n = args.workers[-1]
                r = window_rate(archive, order, n, args)
                archive.frontier.speculation = args.speculation  # type: ignore[attr-defined]
                row = {"order": order, "workers": n, "per_s": r, "speedup": r / base}
                res["scaling"].append(row | {"bound": 1.0, "speculation": 0})
                print(f"dfs, no speculation, {n} workers: {r / base:.1f}x", flush=True)
            w = waste(archive, order, args.workers[-1], args)
            res["waste"].append(w)
            print(f"{order:8s} waste: {w['wasted']} of {w['rides']} rides", flush=True)
        res["machine"]["load_avg_end"] = os.getloadavg()
        res["elapsed_s"] = time.time() - t0
    finally:
        archive.close()
        tmp.cleanup()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    return res


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a small tree and short windows")
    p.add_argument("--database-url", default=None)
    p.add_argument("--orders", nargs="+", choices=ORDERS, default=None)
    p.add_argument("--workers", type=int, nargs="+", default=None)
    p.add_argument("--sleep-s", type=float, default=None)
    p.add_argument("--speculation", type=int, default=None, help="cap of rides ahead a job")
    p.add_argument("--json", default=None)
    ns = p.parse_args()
    a = Args(database_url=ns.database_url, json=ns.json)
    if ns.quick:
        a.workers, a.sleep_s, a.depth, a.window = [1, 2], 0.02, 2, 3
    a.orders = ns.orders or a.orders
    a.workers = ns.workers or a.workers
    a.sleep_s = ns.sleep_s or a.sleep_s
    a.speculation = ns.speculation if ns.speculation is not None else a.speculation
    main(a)
