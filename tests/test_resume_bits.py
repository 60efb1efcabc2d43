"""A job killed mid-run and resumed computes every node bit for bit as an undisturbed run.

``run`` and ``resume`` follow one thread policy (``core.threads``); with torch's default thread
count a resumed process computed the eigendecompositions of these 112-parameter Hessians on two
threads and 24 of 25 nodes' θ differed in their last bits.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ridgerider.core.search import run_search
from ridgerider.core.settings import RRSettings
from ridgerider.problems import create
from ridgerider.services.archive import open_archive

PARAMS = {"depth": 10, "tree_seed": 9201}
MAX_NODES = 40


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "ridgerider.cli", *args]


@pytest.mark.slow
def test_sigkill_then_resume_gives_the_undisturbed_bits(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    env["PYTHONUNBUFFERED"] = "1"
    run = _cli("run", "tree-rl", "--set", "depth=10", "--set", "tree_seed=9201", "--seed", "2")
    run += ["--max-nodes", str(MAX_NODES), "--quiet", "--database-url", url]
    proc = subprocess.Popen(run, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stderr is not None
    assert "job 1 stored" in proc.stderr.readline()
    archive = open_archive(url)
    deadline = time.monotonic() + 120
    while (archive.storage.get_job(1).nodes or 0) < 8:  # type: ignore[union-attr]
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = archive.storage.get_job(1).nodes  # type: ignore[union-attr]
    assert killed_at < MAX_NODES, "the kill came before the end"
    resumed = subprocess.run(
        _cli("resume", "1", "--quiet", "--database-url", url), env=env, capture_output=True
    )
    assert resumed.returncode == 0, resumed.stderr

    problem = create("tree-rl", PARAMS)
    settings = RRSettings(**{**problem.default_settings(), "max_nodes": MAX_NODES})
    ref = run_search(problem, settings, seed=2).nodes
    page = archive.storage.list_nodes(1, tree=True, limit=10_000)
    assert [r.key for r in page.items] == [n.key for n in ref]
    for record, node in zip(page.items, ref, strict=True):
        theta = archive.storage.node_theta(record.id)
        assert theta is not None and torch.equal(theta, node.theta), record.key
        assert record.loss == node.loss, record.key
    archive.close()
