"""Dashboard first view of a 10,000-node job in headless Chromium.

Builds a finished tree-rl job of ``--nodes`` nodes directly in a SQLite archive (rows written
in one transaction: a random Ridge Rider-shaped tree with BFS ranks, per-node results, metrics,
per-step losses and parameters; no search is run), serves it with ``create_app`` under uvicorn
in a separate process (development mode) and opens ``/jobs/{id}`` in Debian's chromium.

Measured per run, in a fresh browser context (empty cache), from the navigation start:
``first view`` = the tree drawn and painted (two animation frames after the page marks the
tree ready), and beside it in the same run the baselines ``GET /tree`` alone (from Python) and
the same page for a small job; then the time to draw the whole tree after "Expand all".

    python benchmarks/dashboard_render.py --nodes 10000 --runs 5
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import torch
from sqlalchemy import update

from ridgerider.core.branch import Branch, tensor_to_bytes
from ridgerider.core.settings import RRSettings
from ridgerider.problems import create
from ridgerider.services import accounts
from ridgerider.services.storage.models import utcnow
from ridgerider.services.storage.records import JobSpec
from ridgerider.services.storage.sql import SQLStorage
from ridgerider.services.storage.tables import JOBS, NODES, SOLUTIONS

CHROMIUM = "/usr/bin/chromium"
PAINTED = (
    "new Promise(r => requestAnimationFrame("
    "() => requestAnimationFrame(() => r(performance.now()))))"
)
"""Resolves once the frame drawn now is on screen, with the time since the navigation start."""
SIZED = (
    "() => { const t = window.ridgerider.state.view.tree;"
    " return !('sizedK' in t) || document.querySelector('#tree').dataset.k === String(t.view.k); }"
)
"""True once node radii and edge labels follow the zoom (at once in versions without sizedK)."""


@dataclass
class Args:
    nodes: int = 10_000
    small: int = 35
    runs: int = 5
    seed: int = 0
    json: str | None = None


def shape(
    n: int, rng: random.Random, max_depth: int = 12, deep: bool = False
) -> list[tuple[int, str, int]]:
    """(parent index, fingerprint key, depth) of ``n`` nodes in BFS order; index 0 is the root.

    ``deep``: nodes are expanded depth first (the newest first), which reaches ``max_depth``
    within a few dozen nodes: a deep, narrow tree instead of a wide one.
    """
    out: list[tuple[int, str, int]] = [(-1, "", 0)]
    todo = deque([0])
    while len(out) < n and todo:
        i = todo.pop() if deep else todo.popleft()
        _, key, depth = out[i]
        # Like RR: up to 6 negative eigenvalues, each ridden both ways; deeper, fewer.
        ridges = rng.randint(1, max(1, 6 - depth // 2)) if depth < max_depth else 0
        kids = []
        for idx in range(ridges):
            for sign in "+-":
                if len(out) < n and rng.random() < 0.8:
                    kids.append(len(out))
                    out.append((i, f"{key}.{idx}{sign}" if key else f"{idx}{sign}", depth + 1))
        todo.extend(reversed(kids) if deep else kids)
    if len(out) < n:
        raise ValueError(f"the random tree ran dry at {len(out)} nodes (try another seed)")
    if deep:  # ranks in BFS order, as the API needs (a parent before its children)
        order = sorted(range(n), key=lambda i: (out[i][2], i))
        rank = {old: new for new, old in enumerate(order)}
        out = [(rank[out[i][0]] if i else -1, out[i][1], out[i][2]) for i in order]
    return out


def build_job(db_url: str, n: int, seed: int, max_depth: int = 12, deep: bool = False) -> int:
    """A finished ``n``-node tree-rl job owned by the development user; returns its id.

    ``max_depth`` and ``deep`` shape the tree (see :func:`shape`).
    """
    rng = random.Random(seed)
    problem = create("tree-rl", {})
    theta = torch.zeros(problem.n_params, dtype=torch.float64)
    storage = SQLStorage(db_url)
    owner = accounts.dev_user(storage)
    spectrum = sorted(rng.uniform(-0.1, 0.05) for _ in range(24))
    mis = {
        "loss": 1.0,
        "grad_norm": 1e-6,
        "negative_eigenvalues": sum(v < 0 for v in spectrum),
        "method": "lbfgs",
        "iterations": 0,
        "spectrum": spectrum,
    }
    spec = JobSpec(
        problem="tree-rl",
        params=problem.params_dict(),
        seed=seed,
        settings=RRSettings(max_nodes=n).to_dict(),
        mis=mis,
        owner_id=owner.id,
    )
    job = storage.create_job(spec, Branch(theta, None, None, (), seed, 1.0))
    nodes = shape(n, rng, max_depth, deep)
    kids = Counter(p for p, _, _ in nodes)
    data = tensor_to_bytes(theta)
    with storage.db.session() as s:
        conn = s.connection()
        root_id = conn.execute(NODES.select().where(NODES.c.job_id == job.id)).one().id
        ids = list(range(root_id, root_id + n))
        rows, sols, now = [], [], utcnow()
        for rank, (parent, key, depth) in enumerate(nodes):
            leaf = kids[rank] == 0
            start = 1.0 - 0.4 * depth + rng.uniform(-0.1, 0.1)
            steps = 0 if depth == 0 else rng.randint(3, 30)
            losses = [start - 0.4 * (k / max(steps, 1)) for k in range(steps + 1)]
            solution = leaf and rng.random() < 0.5
            leafno = rng.randint(0, 63)
            values = {
                "eigenvalue": None if depth == 0 else -rng.uniform(0.001, 0.5),
                "eigenvalue_end": rng.uniform(-0.01, 0.01),
                "loss_start": losses[0],
                "loss": losses[-1],
                "steps": steps,
                "end_reason": None if depth == 0 else rng.choice(["overlap", "no_progress"]),
                "leaf_reason": "no_ridges" if leaf else None,
                "is_leaf": leaf,
                "is_solution": solution,
                "solution_key": str(leafno) if solution else None,
                "n_children": kids[rank],
                "crossings": 0,
                "metrics": {
                    "leaf": leafno,
                    "reward": rng.choice([-1, 1, 10]),
                    "expected_reward": -losses[-1],
                },
                "trace": {"losses": losses, "spectrum": spectrum[:8], "dtype": "float64"},
                "theta_data": data,
                "status": "done",
                "rank": rank,
                "seq": rank,
                "attempts": 1,
                "finished_at": now,
            }
            if rank == 0:
                conn.execute(update(NODES).where(NODES.c.id == root_id).values(**values))
            else:
                rows.append(
                    {
                        "id": ids[rank],
                        "job_id": job.id,
                        "parent_id": ids[parent],
                        "key": key,
                        "depth": depth,
                        "child_index": 0,
                        "branch_loss": losses[0],
                        "branch_data": None,
                        "created_at": now,
                        **values,
                    }
                )
            if solution:
                sols.append(
                    {
                        "job_id": job.id,
                        "node_id": ids[rank],
                        "key": key,
                        "solution_key": str(leafno),
                        "loss": losses[-1],
                        "metrics": values["metrics"],
                        "created_at": now,
                    }
                )
        conn.execute(NODES.insert(), rows)
        if sols:
            conn.execute(SOLUTIONS.insert(), sols)
        steps = sum(r["steps"] for r in rows)
        conn.execute(
            update(JOBS)
            .where(JOBS.c.id == job.id)
            .values(
                status="succeeded",
                stopped_by="max_nodes",
                pushed=n,
                ranked=n,
                prefix=n,
                admitted=n,
                prefix_steps=steps,
                started_at=now,
                finished_at=now,
            )
        )
    storage.close()
    return job.id


def serve(db_url: str) -> tuple[subprocess.Popen[bytes], str]:
    """The app in its own process (development mode, API only), on a free loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = (
        "import uvicorn; from ridgerider.api import create_app; "
        "from ridgerider.config import Settings; "
        f"uvicorn.run(create_app(Settings(database_url={db_url!r}, dev=True, workers=0)), "
        f"host='127.0.0.1', port={port}, log_level='warning')"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the app did not start")


def first_view(browser: Any, url: str) -> dict[str, float]:
    """One cold load of a job page, in ms from the navigation start.

    ``first_view_ms``: the first page of nodes drawn and on screen; ``complete_ms``: every node
    loaded and the tree (levels collapsed as needed) on screen; then "Expand all" timed, and
    zoom and pan on the whole tree (:func:`interact`).
    """
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(url)
    mark = "name => performance.getEntriesByName(name).length > 0"
    page.wait_for_function(mark, arg="tree-ready", timeout=120_000)
    at = "name => performance.getEntriesByName(name)[0].startTime"
    first = page.evaluate(at, "tree-first")
    complete = page.evaluate(at, "tree-ready")
    first_drawn = int(page.evaluate("document.body.dataset.treeFirst"))
    drawn = page.locator("#tree [data-node-id]").count()
    render = page.evaluate("window.ridgerider.state.view.tree.renderMs")
    t0 = time.perf_counter()
    page.click("#expand-all")
    page.evaluate(PAINTED)
    expand = (time.perf_counter() - t0) * 1000
    all_drawn = page.locator("#tree [data-node-id]").count()
    moves = interact(page)
    context.close()
    return moves | {
        "first_view_ms": first,
        "first_loaded": first_drawn,
        "complete_ms": complete,
        "drawn": drawn,
        "render_ms": render,
        "expand_all_ms": expand,
        "all_drawn": all_drawn,
    }


def interact(page: Any) -> dict[str, float]:
    """Zoom and pan the drawn tree, in ms until on screen.

    ``zoom_ms``: one wheel step about the centre; ``zoom_settled_ms``: until node radii and
    edge labels follow the new zoom too; ``pan_ms``: a 10-step drag of 220 px.
    """
    box = page.locator("#tree").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx, cy)
    t0 = time.perf_counter()
    page.mouse.wheel(0, -300)
    page.evaluate(PAINTED)
    zoom = (time.perf_counter() - t0) * 1000
    page.wait_for_function(SIZED)
    page.evaluate(PAINTED)
    settled = (time.perf_counter() - t0) * 1000
    page.mouse.down()
    t0 = time.perf_counter()
    page.mouse.move(cx + 200, cy + 100, steps=10)
    page.evaluate(PAINTED)
    pan = (time.perf_counter() - t0) * 1000
    page.mouse.up()
    return {"zoom_ms": zoom, "zoom_settled_ms": settled, "pan_ms": pan}


def main(args: Args) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="rr-dashboard-"))
    db_url = f"sqlite:///{tmp / 'archive.db'}"
    t0 = time.perf_counter()
    big = build_job(db_url, args.nodes, args.seed)
    small = build_job(db_url, args.small, args.seed + 1)
    build_s = time.perf_counter() - t0
    proc, url = serve(db_url)
    out: dict[str, Any] = {"args": asdict(args), "build_s": build_s, "runs": []}
    out["loadavg_before"] = os.getloadavg()  # the machine may be shared: say how busy it was
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            first_view(browser, f"{url}/jobs/{small}")  # warm the server and the browser
            for _ in range(args.runs):
                t = time.perf_counter()
                tree = httpx.get(f"{url}/api/v1/jobs/{big}/tree", timeout=60)
                api_ms = (time.perf_counter() - t) * 1000
                run = first_view(browser, f"{url}/jobs/{big}")
                run |= {"api_tree_ms": api_ms, "tree_bytes": len(tree.content)}
                run["small_first_view_ms"] = first_view(browser, f"{url}/jobs/{small}")[
                    "first_view_ms"
                ]
                out["runs"].append(run)
                print(json.dumps(run))
            browser.close()
    finally:
        proc.terminate()
        proc.wait(30)
    out["loadavg_after"] = os.getloadavg()
    med = {k: statistics.median(r[k] for r in out["runs"]) for k in out["runs"][0]}
    out["median"] = med
    print(
        f"{args.nodes} nodes (median of {args.runs}): first view {med['first_view_ms']:.0f} ms "
        f"({med['first_loaded']:.0f} loaded), complete {med['complete_ms']:.0f} ms "
        f"({med['drawn']:.0f} drawn); GET /tree alone {med['api_tree_ms']:.0f} ms "
        f"({med['tree_bytes'] / 1e6:.1f} MB); {args.small}-node job "
        f"{med['small_first_view_ms']:.0f} ms; expand all {med['expand_all_ms']:.0f} ms "
        f"({med['all_drawn']:.0f} drawn); zoom {med['zoom_ms']:.0f} ms (settled "
        f"{med['zoom_settled_ms']:.0f} ms), pan {med['pan_ms']:.0f} ms"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    for name, default in asdict(Args()).items():
        ap.add_argument(
            f"--{name.replace('_', '-')}",
            type=type(default) if default is not None else str,
            default=default,
        )
    main(Args(**vars(ap.parse_args())))
