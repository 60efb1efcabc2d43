"""Service load: concurrent clients submitting jobs and polling them over loopback.

Starts ``ridgerider serve --dev`` (embedded SQLite unless ``--database-url``) on a free port,
then runs two phases against it:

1. baseline: one client polls ``GET /jobs/{id}`` of a finished job for ``--baseline-seconds``;
2. load: ``--clients`` clients each loop ``submit a small job → poll GET /jobs/{id} every
   --poll-s until it finishes`` for ``--seconds``.

It reports errors (any non-2xx answer or connection failure), p50/p99 of ``GET /jobs/{id}``
under load and at baseline (and their ratio), p50/p99 of submissions, and jobs finished.

    python benchmarks/load.py --seconds 60 --json benchmarks/results/load.json

The machine's cores are shared with the service's workers and the clients; compare rows of one
run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
JOB = {"problem": "tree-rl", "params": {"depth": 3, "tree_seed": 1}, "settings": {"max_nodes": 5}}


@dataclass
class Args:
    clients: int = 50
    seconds: float = 60.0
    baseline_seconds: float = 5.0
    poll_s: float = 0.2
    workers: int = 2
    database_url: str | None = None
    json: str | None = None


@dataclass
class Stats:
    get_s: list[float] = field(default_factory=list)
    submit_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    finished: int = 0


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def timed(stats: Stats, bucket: list[float], send: Any) -> httpx.Response | None:
    t0 = time.perf_counter()
    try:
        response = await send
    except httpx.HTTPError as exc:
        stats.errors.append(f"{type(exc).__name__}: {exc}")
        return None
    bucket.append(time.perf_counter() - t0)
    if response.status_code >= 300:
        stats.errors.append(f"HTTP {response.status_code}: {response.text[:200]}")
        return None
    return response


async def client_loop(http: httpx.AsyncClient, stats: Stats, until: float, poll_s: float) -> None:
    while time.monotonic() < until:
        r = await timed(stats, stats.submit_s, http.post("/api/v1/jobs", json=JOB))
        if r is None:
            await asyncio.sleep(poll_s)
            continue
        job_id = r.json()["id"]
        while time.monotonic() < until:
            r = await timed(stats, stats.get_s, http.get(f"/api/v1/jobs/{job_id}"))
            if r is not None and r.json()["status"] not in ("queued", "running"):
                stats.finished += 1
                break
            await asyncio.sleep(poll_s)


async def baseline(url: str, seconds: float) -> Stats:
    stats = Stats()
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        r = await http.post("/api/v1/jobs", json=JOB)
        job_id = r.json()["id"]
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            await timed(stats, stats.get_s, http.get(f"/api/v1/jobs/{job_id}"))
    return stats


async def load(url: str, args: Args) -> Stats:
    stats = Stats()
    limits = httpx.Limits(max_connections=args.clients + 5)
    until = time.monotonic() + args.seconds
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:
        await asyncio.gather(
            *(client_loop(http, stats, until, args.poll_s) for _ in range(args.clients))
        )
    return stats


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(args: Args, folder: Path) -> Any:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    db = args.database_url or f"sqlite:///{folder / 'load.db'}"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "ridgerider.cli", "serve", "--dev", "--port", str(port)]
    cmd += ["--database-url", db, "--workers", str(args.workers), "--log-level", "warning"]
    proc = subprocess.Popen(cmd, env=env)
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the service did not start")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(120)


def ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for name, default in asdict(Args()).items():
        kind = type(default) if default is not None else str
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, default=default)
    args = Args(**vars(parser.parse_args()))
    with tempfile.TemporaryDirectory() as tmp, serve(args, Path(tmp)) as url:
        base = asyncio.run(baseline(url, args.baseline_seconds))
        t0 = time.perf_counter()
        stats = asyncio.run(load(url, args))
        wall = time.perf_counter() - t0
    p99, p99_base = pct(stats.get_s, 0.99), pct(base.get_s, 0.99)
    result = {
        "args": asdict(args),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "wall_s": round(wall, 1),
        "errors": len(stats.errors) + len(base.errors),
        "error_samples": (stats.errors + base.errors)[:5],
        "get_requests": len(stats.get_s),
        "get_per_s": round(len(stats.get_s) / wall, 1),
        "get_p50_ms": ms(pct(stats.get_s, 0.5)),
        "get_p99_ms": ms(p99),
        "submit_requests": len(stats.submit_s),
        "submit_p50_ms": ms(pct(stats.submit_s, 0.5)),
        "submit_p99_ms": ms(pct(stats.submit_s, 0.99)),
        "jobs_finished": stats.finished,
        "baseline_get_p50_ms": ms(pct(base.get_s, 0.5)),
        "baseline_get_p99_ms": ms(p99_base),
        "p99_vs_baseline": round(p99 / p99_base, 1) if p99 and p99_base else None,
        "baseline_mean_ms": ms(statistics.fmean(base.get_s)) if base.get_s else None,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
