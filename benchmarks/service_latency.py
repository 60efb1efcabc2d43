"""Service latency: ridgerider's reads beside a minimal endpoint, submissions, reads under work.

Three measurements, each against ``ridgerider serve`` on loopback (development mode) in a
separate process, with closed-loop clients (``--clients`` asyncio tasks in this process, each
sending its next request when the last one is answered):

1. **API alone** (``--workers 0``): ``GET /api/v1/jobs/{id}``, ``GET /api/v1/jobs/{id}/tree``
   and ``GET /api/v1/jobs/{id}/tree/compact`` of a finished 1,000-node job (httpx asks for
   gzip: the tree routes compress), each beside the same request to ``minimal_api.py`` (FastAPI +
   SQLAlchemy selecting the same rows, served the same way) in the same run; the ratio of
   requests per second is the figure (two rounds, alternating, summed).
2. **Submissions**: ``POST /api/v1/jobs`` for every built-in problem (``mnist-mlp`` on small
   IDX files this script writes), one client, ``--submits`` each: p50 and p99.
3. **Reads while jobs ride** (``--workers 2`` worker processes, two long tree-rl jobs riding):
   ``GET /jobs/{id}`` p99 with ``--clients`` clients each polling every ``--poll-s`` (what a
   dashboard or ``Client.wait`` does), the workers at niceness 10 (the default) and at 0.

    python benchmarks/service_latency.py --json benchmarks/results/service_latency.json

Errors are any non-2xx answer or connection failure. Timings depend on the machine and its
load: compare rows of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
API = "/api/v1"
PROBLEMS: list[dict[str, Any]] = [
    {"problem": "toy2d"},
    {"problem": "tree-rl", "params": {"depth": 10}},
    {"problem": "lever-game"},
    {"problem": "coord-game"},
    {"problem": "digits-mlp", "settings": {"method": "approx"}},
    {"problem": "digits-mlp", "params": {"image_size": 28}, "settings": {"method": "approx"}},
    {"problem": "mnist-mlp", "params": {"data_dir": "mnist"}, "settings": {"method": "approx"}},
    {"problem": "gym-tabular", "params": {"env_id": "FrozenLake-v1"}},
    {"problem": "gym-policy", "params": {"env_id": "CartPole-v1"}},
    {"problem": "colored-digits", "settings": {"method": "approx"}},
    {"problem": "colored-mnist", "params": {"data_dir": "mnist"}, "settings": {"method": "approx"}},
]
RIDING = {
    "problem": "tree-rl",
    "params": {"depth": 12, "tree_seed": 1},
    "settings": {"max_nodes": 1_000_000, "max_depth": "none"},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served(NamedTuple):
    """A server this script started: its base URL and process id."""

    url: str
    pid: int


@contextlib.contextmanager
def process(cmd: list[str], env: dict[str, str], ready: str) -> Iterator[Served]:
    """Run a server; yield its URL and pid once ``ready`` (a path) answers 200."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([*cmd, "--port", str(port)], env={**os.environ, **env})
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + ready, timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"{cmd} did not start")
            time.sleep(0.2)
        yield Served(url, proc.pid)
    finally:
        proc.terminate()
        proc.wait(60)


def ridgerider(
    db: str, workers: int, extra: dict[str, str] | None = None, src: str | None = None
) -> Any:
    """``ridgerider serve --dev`` of this checkout, or of another one's ``src`` folder."""
    cmd = [sys.executable, "-m", "ridgerider.cli", "serve", "--dev", "--workers", str(workers)]
    env = {"RIDGERIDER_DATABASE_URL": db, "PYTHONPATH": src or str(ROOT / "src"), **(extra or {})}
    return process([*cmd, "--log-level", "warning"], env, "/readyz")


def minimal(db: str) -> Any:
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "minimal_api:app",
        "--app-dir",
        str(ROOT / "benchmarks"),
    ]
    return process([*cmd, "--log-level", "warning"], {"MINIMAL_DATABASE_URL": db}, "/docs")


async def closed_loop(
    url: str, path: str, clients: int, seconds: float, think_s: float = 0.0
) -> dict[str, Any]:
    """``clients`` tasks sending ``GET path`` for ``seconds``, each ``think_s`` after an answer."""
    times: list[float] = []
    errors: list[str] = []
    limits = httpx.Limits(max_connections=clients + 5, max_keepalive_connections=clients + 5)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:
        until = time.monotonic() + seconds

        async def one() -> None:
            while time.monotonic() < until:
                t0 = time.perf_counter()
                try:
                    r = await http.get(path)
                    if r.status_code != 200:
                        errors.append(f"HTTP {r.status_code}")
                except httpx.HTTPError as exc:
                    errors.append(type(exc).__name__)
                times.append(time.perf_counter() - t0)
                if think_s:
                    await asyncio.sleep(think_s)

        t0 = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(clients)))
        wall = time.perf_counter() - t0
    return {
        "requests": len(times),
        "rps": len(times) / wall,
        "errors": len(errors),
        "p50_ms": 1e3 * float(np.percentile(times, 50)),
        "p99_ms": 1e3 * float(np.percentile(times, 99)),
    }


def build_job(db: str, n: int) -> int:
    spec = importlib.util.spec_from_file_location(
        "dashboard_render", ROOT / "benchmarks" / "dashboard_render.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return int(module.build_job(db, n, seed=1))


def api_alone(db: str, job_id: int, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        rr_url = stack.enter_context(ridgerider(db, 0)).url
        min_url = stack.enter_context(minimal(db)).url
        old_url = (
            stack.enter_context(ridgerider(db, 0, src=args.landed_src)).url
            if args.landed_src
            else None
        )
        for name, rr_path, min_path in (
            ("job", f"{API}/jobs/{job_id}", f"/jobs/{job_id}"),
            ("tree_1000", f"{API}/jobs/{job_id}/tree", f"/jobs/{job_id}/tree"),
            # the compact form (what the dashboard draws), beside the same minimal endpoint
            ("tree_compact_1000", f"{API}/jobs/{job_id}/tree/compact", f"/jobs/{job_id}/tree"),
        ):
            targets = {"minimal": (min_url, min_path), "ridgerider": (rr_url, rr_path)}
            if old_url is not None and not name.startswith("tree_compact"):
                targets["landed"] = (old_url, rr_path)  # the same route of the older code
            rows: dict[str, list[dict[str, Any]]] = {k: [] for k in targets}
            for _ in range(2):  # alternate, so drift in the machine's load hits all alike
                for key, (url, path) in targets.items():
                    rows[key].append(
                        asyncio.run(closed_loop(url, path, args.clients, args.seconds))
                    )
            summary = {
                k: {
                    "rps": sum(r["rps"] for r in v) / len(v),
                    "errors": sum(r["errors"] for r in v),
                    "p99_ms": max(r["p99_ms"] for r in v),
                }
                for k, v in rows.items()
            }
            summary["ratio"] = summary["ridgerider"]["rps"] / summary["minimal"]["rps"]
            if "landed" in summary:
                summary["landed_ratio"] = summary["landed"]["rps"] / summary["minimal"]["rps"]
            out[name] = summary
            print(name, json.dumps(summary))
    return out


def write_mnist(folder: Path) -> None:
    rng = np.random.default_rng(0)
    for prefix, count in (("train", 600), ("t10k", 100)):
        for kind, array in (
            ("images", rng.integers(0, 255, (count, 28, 28))),
            ("labels", np.arange(count) % 10),
        ):
            dims = b"".join(int(d).to_bytes(4, "big") for d in array.shape)
            data = bytes([0, 0, 8, array.ndim]) + dims + array.astype(np.uint8).tobytes()
            (folder / f"{prefix}-{kind}-idx{array.ndim}-ubyte").write_bytes(data)


def submissions(db: str, root: Path, args: argparse.Namespace) -> dict[str, Any]:
    (root / "mnist").mkdir(exist_ok=True)
    write_mnist(root / "mnist")
    out: dict[str, Any] = {}
    with (
        ridgerider(db, 0, {"RIDGERIDER_DATA_ROOT": str(root)}) as (url, _),
        httpx.Client(base_url=url, timeout=120) as http,
    ):
        for body in PROBLEMS if args.problems is None else PROBLEMS[: args.problems]:
            label = body["problem"] + "".join(
                f" {k}={v}" for k, v in body.get("params", {}).items() if k != "data_dir"
            )
            times, errors = [], 0
            for i in range(args.submits + 2):
                t0 = time.perf_counter()
                r = http.post(f"{API}/jobs", json={**body, "seed": i})
                if i >= 2:  # the first two warm the problem's caches
                    times.append(time.perf_counter() - t0)
                errors += r.status_code != 201
                if r.status_code == 201:  # no work left behind for the next phase's workers
                    http.delete(f"{API}/jobs/{r.json()['id']}")
            out[label] = {
                "p50_ms": 1e3 * float(np.percentile(times, 50)),
                "p99_ms": 1e3 * float(np.percentile(times, 99)),
                "errors": errors,
            }
            print(label, json.dumps(out[label]))
    return out


def under_work(db: str, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for nice in ("10", "0"):
        with ridgerider(db, 2, {"RIDGERIDER_WORKER_NICE": nice}) as (url, _):
            ids = [
                httpx.post(f"{url}{API}/jobs", json={**RIDING, "seed": s}, timeout=60).json()["id"]
                for s in (1, 2)
            ]
            time.sleep(3)  # the workers are riding
            path = f"{API}/jobs/{ids[0]}"
            res = asyncio.run(closed_loop(url, path, args.clients, args.seconds, args.poll_s))
            nodes = httpx.get(f"{url}{API}/jobs/{ids[0]}", timeout=60).json()["nodes"]
            for job_id in ids:
                httpx.post(f"{url}{API}/jobs/{job_id}/cancel", timeout=60)
            out[f"nice_{nice}"] = {**res, "nodes_ridden": nodes}
            print(f"nice {nice}", json.dumps(out[f"nice_{nice}"]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--submits", type=int, default=20)
    parser.add_argument("--poll-s", type=float, default=0.2, help="pause of a polling client")
    parser.add_argument("--only", choices=["alone", "submit", "work"], default=None)
    parser.add_argument("--problems", type=int, default=None, help="only the first N problems")
    parser.add_argument(
        "--landed-src", default=None, help="also serve this src/ (older code) in the API phase"
    )
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.database_url or f"sqlite:///{Path(tmp) / 'latency.db'}"
        result: dict[str, Any] = {
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
            "clients": args.clients,
            "seconds": args.seconds,
            "database": db.split(":")[0],
        }
        if args.only in (None, "alone"):
            result["api_alone"] = api_alone(db, build_job(db, 1000), args)
        if args.only in (None, "submit"):
            result["submit"] = submissions(db, Path(tmp), args)
        if args.only in (None, "work"):
            result["under_work"] = under_work(db, args)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
