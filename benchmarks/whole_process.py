"""Whole-process wall time of ``ridgerider run``: in this process against warm worker pools.

Each cell times the whole command, ``ridgerider run tree-rl --set depth=10 --set
tree_seed=5555 --order ORDER`` from the shell's fork to its exit (interpreter start, imports,
migrations check, MIS, the rides, the report), as a user sees it:

- ``w0``: ``--workers 0``, every branch ridden in the command's own process;
- ``w1`` / ``w2``: ``--workers 1`` / ``--workers 2`` with a warm ``ridgerider worker`` pool of
  that many workers already running on the same archive (the command leaves its job to it),
  for each pool kind asked for: ``processes`` (``ridgerider worker --no-ray``) and ``ray``.

Speedups: ``<kind>_wall_w2_over_w1`` (whole command, 2 workers over 1),
``<kind>_wall_w2_over_w0`` (over in-process), the same for the job alone (``_job_``), and
``bound_w2_over_w0``: the most two workers could give the whole command if the job part halved
and the fixed part stayed (Amdahl). A command whose pool has an intake (``cli.intake``) hands
it the whole request and loads no engine, so its fixed part (``<kind>_w<n>_fixed_s``) is not
the in-process one: ``<kind>_bound_w2_over_w1`` is the same bound over one pool worker.

Beside each wall time, the job's own ``elapsed_s`` (from the job's start to its end, as stored:
the part the workers can divide) and the rest, the command's fixed cost. Every tree is compared
with the ``w0`` tree of the same order and backend: every node's rank, key, loss, eigenvalue,
steps and end reason, and every solution, must be equal (``identical`` in each row).

Phases run in turn per backend (``w0`` with no pool running, then each pool started, warmed with
one small job, measured, stopped); repetitions of one cell are consecutive. The machine is
shared and noisy: compare ratios of one run; the medians are reported.

    python benchmarks/whole_process.py --json benchmarks/results/whole_process.json
    python benchmarks/whole_process.py --quick      # seconds: checks that everything runs
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from frontier import PgDatabase
from ridgerider.services.archive import open_archive

ORDERS = ("bfs", "dfs", "priority")


@dataclass
class Args:
    backends: list[str] = field(default_factory=lambda: ["sqlite", "postgres"])
    orders: list[str] = field(default_factory=lambda: list(ORDERS))
    pools: list[str] = field(default_factory=lambda: ["processes", "ray"])
    sizes: list[int] = field(default_factory=lambda: [1, 2])
    depth: int = 10
    tree_seed: int = 5555
    reps: int = 3
    pg_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    json: str | None = None


def cli() -> str:
    found = shutil.which("ridgerider")
    if found is None:
        raise SystemExit("the ridgerider command is not installed (pip install -e .)")
    return found


def run_job(a: Args, url: str, order: str, workers: int, out: Path, env: dict[str, str]) -> dict:
    """One ``ridgerider run``: its wall time, its report and job id."""
    cmd = [cli(), "run", "tree-rl", "--set", f"depth={a.depth}", "--set",
           f"tree_seed={a.tree_seed}", "--order", order, "--workers", str(workers),
           "--database-url", url, "--json", str(out), "-q"]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: rc {proc.returncode}\n{proc.stderr[-2000:]}")
    report = json.loads(out.read_text())
    pooled = "riding on the running worker pool" in " ".join((proc.stdout + proc.stderr).split())
    if workers > 0 and not pooled:
        raise RuntimeError(f"--workers {workers} did not use the warm pool:\n{proc.stdout}")
    return {"wall_s": wall, "elapsed_s": report["elapsed_s"], "job_id": report["job_id"],
            "nodes": report["nodes"], "solutions": report["solutions"]}  # fmt: skip


class Pool:
    """A ``ridgerider worker`` pool of ``n`` workers, started and warmed, until :meth:`stop`."""

    def __init__(self, kind: str, n: int, url: str, env: dict[str, str]) -> None:
        cmd = [cli(), "worker", "--num-workers", str(n), "--database-url", url]
        if kind == "processes":
            cmd.append("--no-ray")
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)  # fmt: skip
        folder = Path(env["XDG_DATA_HOME"]) / "ridgerider" / "pools"
        while not any(folder.glob("*.json")):
            if self.proc.poll() is not None:
                raise RuntimeError(f"pool exited: {self.proc.stdout.read()[-2000:]}")  # type: ignore[union-attr]
            time.sleep(0.1)
        self.start_s = time.perf_counter() - self.t0

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=120)


def tree(url: str, job_id: int) -> list[tuple[Any, ...]]:
    """Every finished node of a job, in rank order: what must be bit-identical."""
    archive = open_archive(url)
    try:
        rows, cursor = [], None
        while True:
            page = archive.storage.list_nodes(job_id, cursor=cursor, trace=False)
            rows += [(n.rank, n.key, n.loss, n.eigenvalue, n.steps, n.end_reason, n.is_solution)
                     for n in page.items]  # fmt: skip
            if page.next_cursor is None:
                return rows
            cursor = page.next_cursor
    finally:
        archive.close()


def backend(a: Args, name: str, tmp: Path) -> list[dict[str, Any]]:
    """Every order, in-process then with each pool kind of 1 and 2 workers, on one backend."""
    if name == "sqlite":
        return rows_on(a, name, f"sqlite:///{tmp / 'archive.db'}", tmp)
    with PgDatabase(a.pg_url, "rr_whole") as url:  # a scratch database, dropped afterwards
        return rows_on(a, name, url, tmp)


def rows_on(a: Args, name: str, url: str, tmp: Path) -> list[dict[str, Any]]:
    """:func:`backend`'s measurements on the archive at ``url``."""
    env = {**os.environ, "XDG_DATA_HOME": str(tmp / "data")}  # pools of this run only
    runs: dict[tuple[str, str, int], list[dict]] = {}
    pool_start: dict[str, float] = {}

    def measure(kind: str, workers: int) -> None:
        for order in a.orders:
            for rep in range(a.reps):
                out = tmp / f"{name}-{kind}-{workers}-{order}-{rep}.json"
                r = run_job(a, url, order, workers, out, env)
                runs.setdefault((kind, order, workers), []).append(r)
                print(json.dumps({"backend": name, "pool": kind, "workers": workers,
                                  "order": order, "wall_s": round(r["wall_s"], 2),
                                  "elapsed_s": round(r["elapsed_s"], 2)}), flush=True)  # fmt: skip

    measure("none", 0)
    for kind in a.pools:
        for n in a.sizes:
            pool = Pool(kind, n, url, env)
            pool_start[f"{kind}-{n}"] = round(pool.start_s, 2)
            try:  # warm: the first job on a pool builds its problem there
                run_job(a, url, "bfs", n, tmp / "warm.json", env)
                measure(kind, n)
            finally:
                pool.stop()
    rows = []
    for order in a.orders:
        base = runs[("none", order, 0)]
        reference = tree(url, base[0]["job_id"])
        row: dict[str, Any] = {"backend": name, "order": order, "nodes": base[0]["nodes"]}
        identical = True
        for (kind, o, w), rs in runs.items():
            if o != order:
                continue
            for r in rs:
                identical &= tree(url, r["job_id"]) == reference
                identical &= r["solutions"] == base[0]["solutions"]
            tag = "w0" if w == 0 else f"{kind}_w{w}"
            row[f"{tag}_wall_s"] = round(statistics.median(r["wall_s"] for r in rs), 3)
            row[f"{tag}_job_s"] = round(statistics.median(r["elapsed_s"] for r in rs), 3)
        for kind in a.pools:
            for n in a.sizes:  # speedups of n workers over in-process, and 2 over 1
                for what in ("wall", "job"):
                    ours = row[f"{kind}_w{n}_{what}_s"]
                    row[f"{kind}_{what}_w{n}_over_w0"] = round(row[f"w0_{what}_s"] / ours, 3)
                    if n == 2 and 1 in a.sizes:
                        one = row[f"{kind}_w1_{what}_s"]
                        row[f"{kind}_{what}_w2_over_w1"] = round(one / ours, 3)
        for kind in a.pools:  # a command handed to a pool's intake has a fixed part of its own
            for n in a.sizes:
                row[f"{kind}_w{n}_fixed_s"] = round(row[f"{kind}_w{n}_wall_s"] -
                                                    row[f"{kind}_w{n}_job_s"], 3)  # fmt: skip
            if 1 in a.sizes:  # Amdahl over one pool worker: its fixed part stays
                one, job = row[f"{kind}_w1_wall_s"], row[f"{kind}_w1_job_s"]
                row[f"{kind}_bound_w2_over_w1"] = round(one / (one - job / 2), 3)
        fixed = row["w0_wall_s"] - row["w0_job_s"]
        row["w0_fixed_s"] = round(fixed, 3)
        # Amdahl: the fixed part stays, the job part at best halves on two workers.
        row["bound_w2_over_w0"] = round(row["w0_wall_s"] / (fixed + row["w0_job_s"] / 2), 3)
        row["identical"] = bool(identical)
        rows.append(row)
    for row in rows:
        row["pool_start_s"] = pool_start
    return rows


def main(a: Args) -> dict[str, Any]:
    """Every backend; the rows, and the machine they ran on."""
    rows: list[dict[str, Any]] = []
    for name in a.backends:
        with tempfile.TemporaryDirectory() as tmp:
            rows += backend(a, name, Path(tmp))
    result = {"args": asdict(a), "machine": {"cpus": os.cpu_count(), "load": os.getloadavg(),
              "python": platform.python_version()}, "rows": rows}  # fmt: skip
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(result, indent=1))
    return result


def parse(argv: list[str] | None = None) -> Args:
    """Command-line arguments as :class:`Args`."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    d = Args()
    p.add_argument("--backends", nargs="+", default=d.backends, choices=["sqlite", "postgres"])
    p.add_argument("--orders", nargs="+", default=d.orders, choices=list(ORDERS))
    p.add_argument("--pools", nargs="+", default=d.pools, choices=["processes", "ray"])
    p.add_argument("--sizes", nargs="+", type=int, default=d.sizes, help="pool sizes")
    p.add_argument("--depth", type=int, default=d.depth)
    p.add_argument("--tree-seed", type=int, default=d.tree_seed)
    p.add_argument("--reps", type=int, default=d.reps)
    p.add_argument("--pg-url", default=d.pg_url)
    p.add_argument("--json", default=None)
    p.add_argument("--quick", action="store_true", help="depth 4, SQLite, bfs, a process pool of 2")
    ns = p.parse_args(argv)
    a = Args(ns.backends, ns.orders, ns.pools, ns.sizes, ns.depth, ns.tree_seed, ns.reps,
             ns.pg_url, ns.json)  # fmt: skip
    if ns.quick:
        a.backends, a.orders, a.pools, a.sizes = ["sqlite"], ["bfs"], ["processes"], [2]
        a.depth, a.reps = 4, 1
    return a


if __name__ == "__main__":
    for r in main(parse())["rows"]:
        print(json.dumps(r))
