"""The browser tests' harness: the app under uvicorn, a worker that rides jobs, Chromium pages.

Used by ``tests/test_dashboard_browser.py`` (which skips before importing this module when
Playwright or Chromium is missing).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.sync_api import sync_playwright

from dashboard.needs import CHROMIUM
from ridgerider.api import create_app
from ridgerider.config import Settings
from ridgerider.services.archive import open_archive
from ridgerider.workers.worker import Worker

API = "/api/v1"
JOB = {"problem": "tree-rl", "params": {"depth": 5, "tree_seed": 4}, "seed": 2}
"""A search that exhausts its tree: 35 nodes, 12 solutions."""
SHOTS_ENV = os.environ.get("RIDGERIDER_SCREENSHOTS")
SHOTS = Path(SHOTS_ENV) if SHOTS_ENV else None
"""Where screenshots are also copied (e.g. ``docs/img``), when set."""


class Server:
    """The app under uvicorn in a thread, on a free loopback port."""

    def __init__(self, app: Any) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the app did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.sock.close()


@pytest.fixture(scope="module")
def db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('dashboard') / 'archive.db'}"


@pytest.fixture(scope="module")
def dev_server(db_url: str) -> Iterator[Server]:
    """Development mode (no token), API only: this test module's worker rides the jobs."""
    app = create_app(Settings(database_url=db_url, dev=True, workers=0, events_poll_s=0.1))
    with Server(app) as server:
        yield server


@pytest.fixture(scope="module")
def api(dev_server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=dev_server.url + API, timeout=60) as client:
        yield client


def ride(db_url: str, job_id: int, delay_s: float = 0.0) -> None:
    """Work on one job in this process until it finishes, pausing ``delay_s`` after each node."""
    archive = open_archive(db_url)
    try:
        pause: Callable[[Any, int], None] = lambda node, steps: time.sleep(delay_s)  # noqa: E731
        Worker(archive.frontier, job_id=job_id, on_node=pause if delay_s else None).run()
    finally:
        archive.close()


def submit(api: httpx.Client) -> dict[str, Any]:
    r = api.post("/jobs", json=JOB)
    assert r.status_code in (200, 201), r.text
    return r.json()


@pytest.fixture(scope="module")
def finished_job(api: httpx.Client, db_url: str) -> dict[str, Any]:
    """A finished tree-rl job."""
    job = submit(api)
    ride(db_url, job["id"])
    job = api.get(f"/jobs/{job['id']}").json()
    assert job["status"] == "succeeded"
    return job


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@contextmanager
def checked_page(browser: Any, width: int, height: int, **options: Any) -> Iterator[Any]:
    """A page in a context of its own; an uncaught error in the page fails the test."""
    context = browser.new_context(viewport={"width": width, "height": height}, **options)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    try:
        yield pg
    finally:
        context.close()
    assert not errors, errors


@pytest.fixture
def page(browser: Any, tmp_path: Path) -> Iterator[Any]:
    with checked_page(browser, 1400, 1000, accept_downloads=True) as pg:
        yield pg


def shot(page: Any, tmp_path: Path, name: str, selector: str | None = None) -> Path:
    """Save a screenshot in the test's folder (and in $RIDGERIDER_SCREENSHOTS when set)."""
    path = tmp_path / f"{name}.png"
    if selector:
        page.locator(selector).screenshot(path=str(path))
    else:
        page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    if SHOTS is not None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, SHOTS / path.name)
    return path


def drawn(page: Any) -> list[tuple[int, str]]:
    """(node id, fingerprint) of every node element drawn in the tree."""
    return [
        (int(i), f)
        for i, f in page.eval_on_selector_all(
            "#tree [data-node-id]", "els => els.map(e => [e.dataset.nodeId, e.dataset.fingerprint])"
        )
    ]


def open_job(page: Any, base: str, job_id: int) -> None:
    page.goto(f"{base}/jobs/{job_id}")
    page.wait_for_selector("body[data-tree-ready]")


def descendants(nodes: list[dict], node_id: int) -> set[int]:
    """Ids of every node below ``node_id`` in an API tree."""
    out: set[int] = set()
    frontier = [node_id]
    while frontier:
        parent = frontier.pop()
        for n in nodes:
            if n["parent_id"] == parent:
                out.add(n["id"])
                frontier.append(n["id"])
    return out


def render_benchmark() -> Any:
    """``benchmarks/dashboard_render.py`` as a module (its ``build_job`` writes synthetic trees)."""
    path = Path(__file__).parents[2] / "benchmarks" / "dashboard_render.py"
    spec = importlib.util.spec_from_file_location("dashboard_render", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, bench)  # its dataclass looks itself up there
    spec.loader.exec_module(bench)
    return bench
