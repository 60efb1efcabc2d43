"""``ridgerider serve`` as a real process: SDK round trips equal ``ridgerider run``; SIGKILL.

Each test starts the service on a free port (the embedded default: a SQLite file in the data
folder of a temporary home) and talks to it with the SDK. PostgreSQL, Redis, tokens and Ray
workers together, as deployed: ``tests/deploy/test_stack_processes.py``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from ridgerider.cli import main
from ridgerider.client import Client
from ridgerider.core import RRSettings, run_search
from ridgerider.problems import create
from ridgerider.services.storage.sql import SQLStorage

from .conftest import PARAMS, PROBLEM, reference

pytestmark = pytest.mark.slow
SRC = Path(__file__).resolve().parents[2] / "src"
SEED = 3
CLI = [sys.executable, "-m", "ridgerider.cli"]


def children_of(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, timeout=30)
    return [int(p) for p in out.stdout.split()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"  # a zombie has exited


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    """A ``ridgerider serve`` subprocess."""

    def __init__(self, home: Path, *args: str, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("RIDGERIDER_")}
        env |= {"PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1", "XDG_DATA_HOME": str(home)}
        cmd = [*CLI, "serve", "--port", str(self.port), *args]
        self.log = (home / f"serve-{self.port}-{time.time_ns()}.log").open("w")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, Path(self.log.name).read_text()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise AssertionError("service did not become ready: " + Path(self.log.name).read_text())

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout=120)
        self.log.close()
        return code


@contextlib.contextmanager
def serving(home: Path, *args: str) -> Iterator[Service]:
    service = Service(home, *args)
    try:
        yield service
    finally:
        service.stop()


def cli_run(home: Path, *args: str) -> dict[str, Any]:
    """``ridgerider run`` (in this process: the command, not a subprocess); its JSON report."""
    out = home / f"run-{uuid.uuid4().hex[:6]}.json"
    sets = [f"--set={k}={v}" for k, v in PARAMS.items()]
    cmd = ["run", PROBLEM, *sets, "--seed", str(SEED), *args, "--json", str(out), "--quiet"]
    result = CliRunner().invoke(main, cmd)
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text())


def check_same_as_run(rr: Client, job_id: int, report: dict[str, Any], **settings: Any) -> None:
    """The service's tree equals the reference search, its solutions ``ridgerider run``'s."""
    ref = reference(seed=SEED, **settings)
    tree = rr.tree(job_id)
    assert tree.complete
    assert [(tuple(map(tuple, n.fingerprint)), n.loss, n.steps) for n in tree.nodes] == [
        (n.fingerprint, n.loss, n.steps) for n in ref.nodes
    ]
    sols = [
        {"fingerprint": [list(c) for c in s.fingerprint], "loss": s.loss, "metrics": s.metrics}
        for s in rr.solutions(job_id)
    ]
    assert sols == report["solutions"] and len(tree.nodes) == report["nodes"]


def test_embedded_default_matches_ridgerider_run(tmp_path: Path) -> None:
    report = cli_run(tmp_path, "--order", "dfs", "--database-url", f"sqlite:///{tmp_path}/r.db")
    with serving(tmp_path, "--dev", "--workers", "2") as service:
        rr = Client(service.url)
        job = rr.submit(PROBLEM, PARAMS, seed=SEED, order="dfs")
        assert rr.wait(job.id, timeout=300, poll_s=0.1).status == "succeeded"
        check_same_as_run(rr, job.id, report, order="dfs")
    assert (tmp_path / "ridgerider" / "archive.db").is_file()  # the embedded default location


def test_sigkill_mid_job_loses_nothing(tmp_path: Path) -> None:
    big = {"depth": 8, "tree_seed": 2}
    # The worker batches its claims: between the first node seen and the kill it completed
    # 60-130 more (measured under load), so the job must be several times that.
    budget = 600
    deep = 64  # past tree-rl's default of three levels, so the tree outlasts the budget
    port = free_port()
    service = Service(tmp_path, "--dev", "--workers", "1", port=port)
    rr = Client(service.url, retries=8)
    try:
        first = rr.submit(PROBLEM, big, seed=SEED, max_nodes=budget, max_depth=deep)
        queued = [rr.submit(PROBLEM, PARAMS, seed=s, max_nodes=15) for s in range(3)]
        deadline = time.monotonic() + 300
        while rr.get(first.id).nodes < 1:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        children = children_of(service.proc.pid)
        assert children  # the worker process (and multiprocessing's helper)
    finally:
        assert service.stop(signal.SIGKILL) == -signal.SIGKILL
    with pytest.raises(httpx.ConnectError):  # nothing answers now
        httpx.get(f"{service.url}/healthz")
    deadline = time.monotonic() + 120
    while any(alive(pid) for pid in children):  # orphaned workers stop by themselves
        assert time.monotonic() < deadline, [pid for pid in children if alive(pid)]
        time.sleep(0.2)
    storage = SQLStorage(f"sqlite:///{tmp_path / 'ridgerider' / 'archive.db'}")
    killed = storage.get_job(first.id)
    storage.close()
    assert killed is not None and killed.status == "running" and killed.nodes < budget

    with serving(tmp_path, "--dev", "--workers", "2") as again:
        rr = Client(again.url)
        ids = [j.id for j in rr.list(limit=100).items]
        assert sorted(ids) == sorted([first.id, *(q.id for q in queued)])  # none lost
        done = rr.wait(first.id, timeout=600, poll_s=0.2)
        assert done.status == "succeeded" and done.nodes == budget
        p = create(PROBLEM, big)  # the uninterrupted single-process search
        ref = run_search(
            p,
            RRSettings(**{**p.default_settings(), "max_nodes": budget, "max_depth": deep}),
            seed=SEED,
        )
        tree = rr.tree(first.id)
        assert [(tuple(map(tuple, n.fingerprint)), n.loss) for n in tree.nodes] == [
            (n.fingerprint, n.loss) for n in ref.nodes
        ]
        for q in queued:
            assert rr.wait(q.id, timeout=300, poll_s=0.1).status == "succeeded"
            got = [tuple(map(tuple, n.fingerprint)) for n in rr.tree(q.id).nodes]
            want = [n.fingerprint for n in reference(seed=q.seed, max_nodes=15).nodes]
            assert got == want
