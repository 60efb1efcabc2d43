"""Scaling: branch throughput of Ray workers, the Ray path's overhead, and a simulated wide run.

Three measurements on one archive (a scratch SQLite file unless ``--database-url``):

1. **Compute-bound**: branches per second of ``tree-rl`` (depth 10, exact RR, BFS) ridden by 1
   and by 2 Ray workers (one CPU and one torch thread each), timed over the same 300 branches
   (a fresh job per measurement; BFS completes them in a deterministic order), five
   interleaved repetitions, for claims of one branch (the default) and ``batch="auto"``.
   The speedup is the median of the per-repetition ratios. Target: 2 workers ≥ 1.8× one.
2. **Overhead**: one Ray worker against one in-process worker on branches that compute for a
   fixed time (a busy loop of ~10 ms and ~100 ms; the tree is synthetic, two children per
   node). Overhead = in-process rate ÷ Ray rate − 1. Target: ≤ 10 % at 100 ms.
3. **Simulated wide run**: branches that *sleep* (default 1 s) instead of computing, with 1, 4,
   16 and 64 workers (threads of this process, each a full worker with its own claims, leases
   and heartbeats against the frontier), eight children per node. Shows whether the queue
   becomes the bottleneck. Targets: ≥ 14× at 16 workers, ≥ 45× at 64.

Rates are completions per second of the database's ``done`` rows, counted from the moment every
worker is warm (problem built, first branch done): over a fixed number of branches (part 1) or
a time window (parts 2 and 3). The simulated expand steps
live only in this file; nothing is added to the problem registry.

    python benchmarks/scaling.py --json benchmarks/results/scaling.json --markdown scaling.md
    python benchmarks/scaling.py --quick      # a short check (seconds per window, fewer sizes)

Every process uses one torch thread. On a shared machine the figures are only indicative:
compare rows of one run.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import ray
import torch

from ridgerider.core.branch import Branch
from ridgerider.core.expand import Expansion
from ridgerider.core.ridge import OnStep
from ridgerider.core.settings import RRSettings
from ridgerider.problems import RegisteredProblem, create
from ridgerider.services import jobs
from ridgerider.services.archive import Archive, open_archive
from ridgerider.workers.ray import WorkerOptions, ensure_ray, start_workers
from ridgerider.workers.worker import BatchSize, Worker
from synthetic_tree import sleep_expand, start_job, synthetic

torch.set_num_threads(1)


@dataclass
class Args:
    quick: bool = False
    database_url: str | None = None
    """Archive (default: a scratch SQLite file)."""
    compute_params: dict[str, Any] = field(default_factory=lambda: {"depth": 10, "tree_seed": 1})
    compute_branches: int = 300
    """Branches measured per worker count: the same ones (BFS order is deterministic)."""
    compute_batches: list[str] = field(default_factory=lambda: ["1", "auto"])
    """Claim sizes of the compute-bound part (1: the Ray workers' default; ``auto``)."""
    compute_repeats: int = 5
    """Interleaved repetitions (the speedup is the median of the per-repetition ratios)."""
    overhead_ms: list[float] = field(default_factory=lambda: [10.0, 100.0])
    overhead_window_s: float = 20.0
    sim_workers: list[int] = field(default_factory=lambda: [1, 4, 16, 64])
    sim_sleep_s: float = 1.0
    sim_window_s: float = 20.0
    parts: list[str] = field(default_factory=lambda: ["compute", "overhead", "simulated"])
    json: str | None = None
    markdown: str | None = None

    def shrink(self) -> None:
        """``--quick``: short windows and fewer sizes (checks that everything runs)."""
        self.compute_branches, self.overhead_window_s, self.sim_window_s = 120, 4.0, 3.0
        self.compute_repeats, self.compute_batches = 1, ["1"]
        self.sim_sleep_s = 0.25
        self.sim_workers = [1, 4, 16]


# -- simulated branches ----------------------------------------------------------------------


def busy_expand(
    problem: RegisteredProblem,
    settings: RRSettings,
    branch: Branch,
    on_step: OnStep | None = None,
    *,
    ms: float,
) -> Expansion:
    """Compute (a busy loop) for ``ms`` milliseconds, then two children."""
    end = time.perf_counter() + ms / 1000
    x = 0
    while time.perf_counter() < end:
        x += 1
    return synthetic(branch, 2)


# -- measuring -------------------------------------------------------------------------------


def done(archive: Archive, job_id: int) -> int:
    return archive.storage.count_nodes(job_id).get("done", 0)


def wait_warm(warm: Callable[[], bool]) -> None:
    """Return once ``warm()`` holds (every worker built its problem and finished a branch)."""
    deadline = time.monotonic() + 300
    while not warm():
        if time.monotonic() > deadline:
            raise TimeoutError("workers did not warm up in 300 s")
        time.sleep(0.02)


def rate(archive: Archive, job_id: int, warm: Callable[[], bool], window_s: float) -> float:
    """Completions per second in a window that starts once ``warm()`` holds."""
    wait_warm(warm)
    t0, n0 = time.monotonic(), done(archive, job_id)
    time.sleep(window_s)
    t1, n1 = time.monotonic(), done(archive, job_id)
    return (n1 - n0) / (t1 - t0)


def span_rate(archive: Archive, job_id: int, warm: Callable[[], bool], branches: int) -> float:
    """Completions per second over the next ``branches`` completions once ``warm()`` holds.

    A BFS job's branches complete in a deterministic order, so every worker count is timed on
    the same branches (a fixed time window would compare different parts of the tree).
    """
    wait_warm(warm)
    t0, n0 = time.monotonic(), done(archive, job_id)
    while (n1 := done(archive, job_id)) < n0 + branches:
        time.sleep(0.2)  # the count is a query on the archive: poll it rarely
    return (n1 - n0) / (time.monotonic() - t0)


def ray_rate(
    archive: Archive,
    url: str,
    job_id: int,
    n: int,
    window_s: float | None,
    expand_fn: Any = None,
    branches: int = 0,
    batch: BatchSize = "auto",
) -> float:
    """Rate of ``n`` Ray workers: over ``window_s`` seconds, or over the next ``branches``."""
    options = WorkerOptions(num_cpus=1, batch=batch)
    pool = start_workers(
        url, None, n, job_id=job_id, options=options, expand_fn=expand_fn, reaper=False
    )
    try:

        def warm() -> bool:
            info = pool.info()
            return len(info) == n and all(i["completed"] >= 1 for i in info)

        if window_s is None:
            return span_rate(archive, job_id, warm, branches)
        return rate(archive, job_id, warm, window_s)
    finally:
        pool.stop()
        jobs.cancel(archive.storage, job_id)


def thread_rate(
    archive: Archive,
    job_id: int,
    n: int,
    window_s: float,
    expand_fn: Any,
    warm_nodes: int,
    batch: BatchSize = 1,
) -> float:
    """``n`` in-process workers (threads), each with its own claims and heartbeats."""
    workers = [
        Worker(archive.frontier, job_id=job_id, expand_fn=expand_fn, poll_s=0.01, batch=batch)
        for _ in range(n)
    ]
    threads = [threading.Thread(target=w.run, daemon=True) for w in workers]
    for t in threads:
        t.start()
    try:
        return rate(archive, job_id, lambda: done(archive, job_id) >= warm_nodes, window_s)
    finally:
        for w in workers:
            w.stop()
        for t in threads:
            t.join(120)
        jobs.cancel(archive.storage, job_id)


def compute_bound(archive: Archive, url: str, args: Args) -> dict[str, Any]:
    problem = create("tree-rl", args.compute_params)
    # no depth limit: the tree must outlast both windows (tree-rl defaults stop at three levels)
    settings = RRSettings(
        **{**problem.default_settings(), "max_nodes": 100_000, "max_depth": 10**6}
    )
    rows = []
    for b in args.compute_batches:
        batch: BatchSize = "auto" if b == "auto" else int(b)
        reps: dict[int, list[float]] = {1: [], 2: []}
        for rep in range(args.compute_repeats):  # interleaved: 1, 2, 1, 2, ... workers
            for n in (1, 2):
                job = jobs.submit(
                    archive.storage, archive.frontier, "tree-rl", args.compute_params, settings,
                    seed=3,
                )  # fmt: skip
                r = ray_rate(
                    archive, url, job.id, n, None, branches=args.compute_branches, batch=batch
                )
                reps[n].append(r)
                print(f"compute-bound, batch {b}, rep {rep}: {n} Ray worker(s): {r:.2f} branches/s")
        ratios = [two / one for one, two in zip(reps[1], reps[2], strict=True)]
        rows.append(
            {
                "batch": b,
                "rates_1": reps[1],
                "rates_2": reps[2],
                "ratios": ratios,
                "rate_1": statistics.median(reps[1]),
                "rate_2": statistics.median(reps[2]),
                "speedup_2": statistics.median(ratios),
            }
        )
    return {
        "problem": {"name": "tree-rl", "params": args.compute_params},
        "branches": args.compute_branches,
        "rows": rows,
    }


def overhead(archive: Archive, url: str, args: Args) -> list[dict[str, Any]]:
    rows = []
    for ms in args.overhead_ms:
        fn = functools.partial(busy_expand, ms=ms)
        job, window = start_job(archive), args.overhead_window_s
        local = thread_rate(archive, job, 1, window, fn, 3, batch="auto")
        remote = ray_rate(archive, url, start_job(archive), 1, window, fn, batch="auto")
        row = {
            "branch_ms": ms,
            "in_process_per_s": local,
            "ray_per_s": remote,
            "overhead": local / remote - 1,
            "overhead_ms_per_branch": 1000 / remote - 1000 / local,
        }
        print(f"overhead at {ms:g} ms: {row['overhead']:+.1%}", flush=True)
        rows.append(row)
    return rows


def warm_nodes(n: int, fanout: int) -> int:
    """Nodes done once ``n`` workers are all busy: the levels narrower than ``n``, then ``n``."""
    before, width = 0, 1
    while width < n:
        before, width = before + width, width * fanout
    return before + n


def simulated(archive: Archive, args: Args) -> list[dict[str, Any]]:
    fn = functools.partial(sleep_expand, s=args.sim_sleep_s, fanout=8)
    rows: list[dict[str, Any]] = []
    for n in args.sim_workers:
        job = start_job(archive)
        window = max(args.sim_window_s, 20 * args.sim_sleep_s)  # >= 20 branches per worker
        r = thread_rate(archive, job, n, window, fn, warm_nodes(n, 8))
        base = rows[0]["per_s"] if rows else r
        rows.append({"workers": n, "per_s": r, "speedup": r / base})
        print(f"simulated: {n} workers: {r:.1f} branches/s ({r / base:.1f}x)", flush=True)
    return rows


def markdown(res: dict[str, Any]) -> str:
    lines = ["| measurement | value | target |", "|---|---|---|"]
    if "compute_bound" in res:
        for c in res["compute_bound"]["rows"]:
            lines += [
                f"| compute-bound, batch {c['batch']}, 1 Ray worker | {c['rate_1']:.2f} "
                "branches/s | |",
                f"| compute-bound, batch {c['batch']}, 2 Ray workers | {c['rate_2']:.2f} "
                f"branches/s (median ratio {c['speedup_2']:.2f}×, per repetition "
                + ", ".join(f"{x:.2f}" for x in c["ratios"])
                + ") | ≥ 1.8× |",
            ]
    for o in res.get("overhead", []):
        target = "≤ 10 %" if o["branch_ms"] >= 100 else ""
        lines.append(
            f"| Ray overhead, {o['branch_ms']:g} ms branches | {o['overhead']:+.1%} "
            f"({o['overhead_ms_per_branch']:+.2f} ms/branch) | {target} |"
        )
    targets = {16: "≥ 14×", 64: "≥ 45×"}
    for s in res.get("simulated", []):
        lines.append(
            f"| simulated, {s['workers']} workers ({res['args']['sim_sleep_s']:g} s branches) | "
            f"{s['per_s']:.1f} branches/s ({s['speedup']:.1f}×) | {targets.get(s['workers'], '')} |"
        )
    return "\n".join(lines) + "\n"


def main(args: Args) -> dict[str, Any]:
    tmp = tempfile.TemporaryDirectory()
    url = args.database_url or f"sqlite:///{tmp.name}/scaling.db"
    archive = open_archive(url)
    archive.frontier.start_reaper()
    started = ensure_ray(None, num_cpus=2) if set(args.parts) - {"simulated"} else False
    t0 = time.time()
    try:
        res: dict[str, Any] = {
            "args": asdict(args),
            "machine": {
                "cpus": os.cpu_count(),
                "load_avg_start": os.getloadavg(),
                "python": platform.python_version(),
                "torch": torch.__version__,
                "ray": ray.__version__,
                "backend": archive.storage.db.dialect,
            },
        }
        if "compute" in args.parts:
            res["compute_bound"] = compute_bound(archive, url, args)
        if "overhead" in args.parts:
            res["overhead"] = overhead(archive, url, args)
        if "simulated" in args.parts:
            res["simulated"] = simulated(archive, args)
        res["machine"]["load_avg_end"] = os.getloadavg()
        res["elapsed_s"] = time.time() - t0
    finally:
        archive.close()
        if started:
            ray.shutdown()
        tmp.cleanup()
    return res


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="short windows, fewer sizes")
    p.add_argument("--database-url", default=None)
    p.add_argument("--parts", nargs="+", choices=["compute", "overhead", "simulated"])
    p.add_argument("--compute-batches", nargs="+", default=None, help="claim sizes or auto")
    p.add_argument("--sim-workers", type=int, nargs="+", default=None)
    p.add_argument("--sim-sleep-s", type=float, default=None)
    p.add_argument("--json", default=None)
    p.add_argument("--markdown", default=None)
    ns = p.parse_args()
    args = Args(database_url=ns.database_url, json=ns.json, markdown=ns.markdown)
    if ns.quick:
        args.quick = True
        args.shrink()
    if ns.parts:
        args.parts = ns.parts
    if ns.compute_batches:
        args.compute_batches = ns.compute_batches
    if ns.sim_workers:
        args.sim_workers = ns.sim_workers
    if ns.sim_sleep_s:
        args.sim_sleep_s = ns.sim_sleep_s
    result = main(args)
    table = markdown(result)
    print(table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table)
