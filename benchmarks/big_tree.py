"""Serving big trees: the compact form against ``/tree``, beside a minimal endpoint, and memory.

Synthetic finished tree-rl jobs (``dashboard_render.build_job``: rows written straight into a
fresh SQLite archive, no search run) served by ``ridgerider serve --dev --workers 0`` on
loopback, in a separate process. Three measurements:

1. **Whole 10,000-node tree**: wall time and bytes on the wire of fetching it whole, as the
   dashboard does (compact pages by rank cursor: 500, then up to 10,000 a page) and in one
   compact page, against ``GET /tree`` (all node fields) in the same run, each with gzip and
   without (``Accept-Encoding: identity``). Median of ``--runs`` fetches after one warm-up.
2. **Requests/s of a 1,000-node tree** at ``--clients`` closed-loop clients:
   ``GET /tree/compact`` against ``minimal_api.py``'s ``GET /jobs/{id}/tree`` (FastAPI +
   SQLAlchemy selecting the same rows' drawn columns, no auth, no middleware) and against
   ridgerider's ``GET /tree``, alternating, two rounds each; both without gzip (the minimal
   endpoint has none: same work) and the compact form with gzip as a client asking for it gets.
3. **Peak server memory while paging**: a fresh server per job size pages through a 10,000- and
   a 100,000-node job (compact pages of 10,000, then ``/nodes`` pages of 1,000); the server
   process's peak resident set (``VmHWM``) after each, and at start.

    python benchmarks/big_tree.py --json benchmarks/results/big_tree.json

Timings depend on the machine and its load: compare rows of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
API = "/api/v1"
GZIP = {"Accept-Encoding": "gzip"}
PLAIN = {"Accept-Encoding": "identity"}


def _module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


latency = _module("service_latency")  # the servers: ridgerider serve, minimal_api
render = _module("dashboard_render")  # build_job: a synthetic finished job


def server(db: str, src: Path = ROOT / "src") -> Any:
    """``ridgerider serve --dev --workers 0`` on ``db`` from ``src``: its URL and process id."""
    return latency.ridgerider(db, 0, src=str(src))


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set so far (``VmHWM``), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def fetch_compact(http: httpx.Client, job_id: int, first: int, limit: int) -> tuple[int, int]:
    """Every node by compact pages (``first`` nodes, then ``limit`` a page): nodes, bytes."""
    nodes, wire, after, size = 0, 0, 0, first
    while True:
        r = http.get(f"{API}/jobs/{job_id}/tree/compact", params={"after": after, "limit": size})
        r.raise_for_status()
        page = r.json()
        nodes, wire = nodes + page["count"], wire + r.num_bytes_downloaded
        if page["next_after"] is None:
            return nodes, wire
        after, size = page["next_after"], limit


def fetch_tree(http: httpx.Client, job_id: int) -> tuple[int, int]:
    r = http.get(f"{API}/jobs/{job_id}/tree")
    r.raise_for_status()
    return len(r.json()["nodes"]), r.num_bytes_downloaded


def whole_tree(url: str, job_id: int, runs: int, landed: str | None) -> dict[str, Any]:
    """Time and bytes of fetching the whole tree, each way, with and without gzip."""
    ways: dict[str, tuple[str, Any]] = {
        "compact_pages": (url, lambda h: fetch_compact(h, job_id, 500, 10_000)),  # dashboard
        "compact_one_page": (url, lambda h: fetch_compact(h, job_id, 10_000, 10_000)),
        "tree": (url, lambda h: fetch_tree(h, job_id)),
    }
    if landed:
        ways["tree_landed"] = (landed, lambda h: fetch_tree(h, job_id))
    out: dict[str, Any] = {}
    for enc, headers in (("gzip", GZIP), ("identity", PLAIN)):
        for name, (base, fetch) in ways.items():
            with httpx.Client(base_url=base, headers=headers, timeout=120) as http:
                fetch(http)  # warm-up
                times, sizes = [], set()
                for _ in range(runs):
                    t0 = time.perf_counter()
                    nodes, wire = fetch(http)
                    times.append(time.perf_counter() - t0)
                    sizes.add(wire)
            out[f"{name}_{enc}"] = {
                "nodes": nodes,
                "median_s": statistics.median(times),
                "min_s": min(times),
                "wire_bytes": max(sizes),
            }
            print(f"{name} {enc}", json.dumps(out[f"{name}_{enc}"]))
    return out


async def closed_loop(
    url: str, path: str, clients: int, seconds: float, headers: dict[str, str]
) -> dict[str, Any]:
    """``clients`` tasks sending ``GET path`` back to back for ``seconds``."""
    times: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=clients + 5, max_keepalive_connections=clients + 5)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits, headers=headers) as h:
        until = time.monotonic() + seconds

        async def one() -> None:
            nonlocal errors
            while time.monotonic() < until:
                t0 = time.perf_counter()
                try:
                    r = await h.get(path)
                    errors += r.status_code != 200
                except httpx.HTTPError:
                    errors += 1
                times.append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(clients)))
        wall = time.perf_counter() - t0
    return {
        "rps": len(times) / wall,
        "errors": errors,
        "p50_ms": 1e3 * float(np.percentile(times, 50)),
        "p99_ms": 1e3 * float(np.percentile(times, 99)),
    }


def throughput(db: str, job_id: int, args: argparse.Namespace) -> dict[str, Any]:
    """Requests/s of the 1,000-node tree: compact and /tree beside the minimal endpoint."""
    cases = {
        "minimal": ("min", f"/jobs/{job_id}/tree", PLAIN),
        "compact": ("rr", f"{API}/jobs/{job_id}/tree/compact", PLAIN),
        "compact_gzip": ("rr", f"{API}/jobs/{job_id}/tree/compact", GZIP),
        "tree": ("rr", f"{API}/jobs/{job_id}/tree", PLAIN),
    }
    if args.landed_src:
        cases["tree_landed"] = ("landed", f"{API}/jobs/{job_id}/tree", PLAIN)
    rows: dict[str, list[dict[str, Any]]] = {k: [] for k in cases}
    with contextlib.ExitStack() as stack:
        urls = {
            "rr": stack.enter_context(server(db))[0],
            "min": stack.enter_context(latency.minimal(db)),
        }
        if args.landed_src:
            urls["landed"] = stack.enter_context(server(db, args.landed_src))[0]
        for _ in range(2):  # alternate, so drift in the machine's load hits all alike
            for name, (which, path, headers) in cases.items():
                res = closed_loop(urls[which], path, args.clients, args.seconds, headers)
                rows[name].append(asyncio.run(res))
    out: dict[str, Any] = {
        k: {
            "rps": sum(r["rps"] for r in v) / len(v),
            "errors": sum(r["errors"] for r in v),
            "p50_ms": max(r["p50_ms"] for r in v),
            "p99_ms": max(r["p99_ms"] for r in v),
        }
        for k, v in rows.items()
    }
    base = out["minimal"]["rps"]
    out["ratio_compact"] = out["compact"]["rps"] / base
    out["ratio_compact_gzip"] = out["compact_gzip"]["rps"] / base
    out["ratio_tree"] = out["tree"]["rps"] / base
    if args.landed_src:
        out["ratio_tree_landed"] = out["tree_landed"]["rps"] / base
    print("throughput", json.dumps(out))
    return out


def paging_memory(db: str, jobs: dict[int, int]) -> dict[str, Any]:
    """Peak server RSS paging through each job (a fresh server per job)."""
    out: dict[str, Any] = {}
    for n, job_id in jobs.items():
        with server(db) as (url, pid), httpx.Client(base_url=url, timeout=300) as http:
            start = peak_rss_mb(pid)
            t0 = time.perf_counter()
            nodes, wire = fetch_compact(http, job_id, 10_000, 10_000)
            compact_s = time.perf_counter() - t0
            after_compact = peak_rss_mb(pid)
            listed, after = 0, None
            while True:
                q = {"limit": 1000} | ({} if after is None else {"after": after})
                page = http.get(f"{API}/jobs/{job_id}/nodes", params=q).json()
                listed += len(page["items"])
                if (after := page["next_after"]) is None:
                    break
            assert nodes == listed == n, (nodes, listed, n)
            out[str(n)] = {
                "start_mb": start,
                "peak_after_compact_mb": after_compact,
                "peak_after_nodes_mb": peak_rss_mb(pid),
                "compact_s": compact_s,
                "compact_wire_bytes": wire,
            }
            print(f"paging {n}", json.dumps(out[str(n)]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--big", type=int, default=100_000, help="nodes of the big paged job")
    parser.add_argument("--only", choices=["whole", "rps", "memory"], default=None)
    parser.add_argument(
        "--landed-src",
        type=Path,
        default=None,
        help="a src/ of the code before (git archive): its /tree measured in the same run",
    )
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    result: dict[str, Any] = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "clients": args.clients,
        "seconds": args.seconds,
        "database": "sqlite",
    }
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{Path(tmp) / 'big_tree.db'}"
        ten = render.build_job(db, 10_000, seed=1)
        if args.only in (None, "whole"):
            with contextlib.ExitStack() as stack:
                url = stack.enter_context(server(db))[0]
                landed = (
                    stack.enter_context(server(db, args.landed_src))[0] if args.landed_src else None
                )
                result["whole_10000"] = whole_tree(url, ten, args.runs, landed)
        if args.only in (None, "rps"):
            result["rps_1000"] = throughput(db, render.build_job(db, 1000, seed=1), args)
        if args.only in (None, "memory"):
            big = render.build_job(db, args.big, seed=1)
            result["paging_memory"] = paging_memory(db, {10_000: ten, args.big: big})
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
