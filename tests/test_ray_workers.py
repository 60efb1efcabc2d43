"""Ray workers: same solutions as in-process, and nothing lost when workers or Ray itself die.

One small local Ray (4 logical CPUs, no dashboard, 100 MB object store) serves the whole module; the
last test kills a whole local Ray mid-job and resumes the job on a Ray started on demand.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner
from sqlalchemy import select

from polling import wait_until
from ridgerider.cli import main
from ridgerider.core import RRSettings, run_search
from ridgerider.core.search import SearchResult
from ridgerider.problems import create
from ridgerider.services import jobs
from ridgerider.services.storage.sql import SQLStorage
from ridgerider.services.storage.tables import NODES
from ridgerider.workers import registry, runner

ray = pytest.importorskip("ray")

from ridgerider.workers.ray import (  # noqa: E402
    WorkerOptions,
    WorkerPool,
    start_workers,
)

pytestmark = [pytest.mark.ray, pytest.mark.slow]

TREE = {"depth": 6, "tree_seed": 2}


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    """One small local Ray for the module (skipped, saying why, if it cannot start)."""
    if not ray.is_initialized():
        try:
            ray.init(
                address="local",  # a new one, even beside a cluster `ray start` left here
                # logical CPUs: room for a replacement actor while Ray reclaims a killed one's
                num_cpus=4,
                include_dashboard=False,
                object_store_memory=100 * 2**20,
                log_to_driver=False,
            )
        except Exception as exc:
            pytest.skip(f"Ray cannot start here: {type(exc).__name__}: {exc}")
    yield
    if ray.is_initialized():
        ray.shutdown()


def assert_same_tree(store: SQLStorage, job_id: int, ref: SearchResult) -> None:
    """The stored tree is the reference's, every row done once, nothing duplicated."""
    rows = list(store.iter_nodes(job_id, tree=False))  # branches past the budget wait
    assert {r.status for r in rows} <= {"done", "waiting"}, [(r.key, r.status) for r in rows]
    keys = [r.key for r in rows]
    assert len(keys) == len(set(keys))  # no node or branch twice
    assert sum(r.status == "done" for r in rows) == len(ref.nodes)
    got = list(store.iter_nodes(job_id))
    assert [n.key for n in got] == [n.key for n in ref.nodes]
    for mine, theirs in zip(got, ref.nodes, strict=True):
        assert (mine.loss, mine.steps, mine.metrics) == (theirs.loss, theirs.steps, theirs.metrics)
        theta = store.node_theta(mine.id)
        assert theta is not None and torch.equal(theta, theirs.theta)
    sols = [s.key for s in store.solutions(job_id)]
    assert sols == [n.key for n in ref.solutions] and len(sols) == len(set(sols))
    job = store.get_job(job_id)
    assert job is not None and job.status == "succeeded" and job.nodes == len(ref.nodes)


def cli_run(tmp_path: Path, args: list[str], workers: int) -> dict[str, Any]:
    out = tmp_path / f"w{workers}.json"
    res = CliRunner().invoke(
        main, ["run", *args, "--workers", str(workers), "--quiet", "--json", str(out)]
    )
    assert res.exit_code == 0, res.output
    return json.loads(out.read_text())


@pytest.mark.parametrize(
    "args",
    [
        ["lever-game", "--seed", "7", "--max-nodes", "14"],
        ["tree-rl", "--set", "depth=6", "--set", "tree_seed=2", "--seed", "3", "--max-nodes", "16"],
    ],
    ids=["lever-game", "tree-rl"],
)
def test_two_ray_workers_find_the_same_solutions_as_in_process(
    tmp_path: Path, args: list[str]
) -> None:
    ray_report = cli_run(tmp_path, args, 2)
    local = cli_run(tmp_path, args, 0)
    assert ray_report["job_id"] != local["job_id"]
    assert ray_report["nodes"] == local["nodes"] > 1
    assert ray_report["solutions"] == local["solutions"]  # fingerprints, losses, metrics
    assert ray_report["solutions"]  # the budget reaches solutions


def node_state(store: SQLStorage, node_id: int) -> tuple[str, int]:
    """A node's status and how many leases it has had."""
    n = NODES.c
    with store.db.session(write=False) as s:
        row = s.connection().execute(select(n.status, n.attempts).where(n.id == node_id)).one()
    return row.status, row.attempts


def riding(pool: WorkerPool, store: SQLStorage, timeout: float = 180) -> tuple[int, int, int]:
    """(pid, node, the node's lease count) of a pool worker holding a lease on a branch now.

    Leases are read from the archive (what a ride holds), and pids from the actors; the actors
    are asked only when a worker is not yet known, so sampling never waits on a busy actor.
    """
    n = NODES.c
    pids: dict[str, int] = {}
    known = -1  # pool.replaced when pids was read: a replacement is a worker not yet known
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if len(pids) < pool.alive() or pool.replaced != known:
            known = pool.replaced
            pids = {i["worker_id"]: i["pid"] for i in pool.info()}
        with store.db.session(write=False) as s:
            rows = (
                s.connection()
                .execute(select(n.id, n.lease_owner, n.attempts).where(n.status == "leased"))
                .all()
            )
        for row in rows:
            if row.lease_owner in pids:
                return pids[row.lease_owner], row.id, row.attempts
        time.sleep(0.005)
    raise AssertionError("no worker riding")


def kill_mid_ride(pool: WorkerPool, store: SQLStorage, tries: int = 20) -> tuple[int, int]:
    """SIGKILL a worker while it rides a branch; the (pid, node) killed mid-ride.

    A kill landed mid-ride unless the worker finished the node under the lease it held: the
    node is then ``done`` with no further lease. (Whether it is still leased to the dead worker
    after the kill says nothing: the pool frees a dead process's leases at once.)
    """
    for _ in range(tries):
        pid, node_id, attempts = riding(pool, store)
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda pid=pid: not _alive(pid), 10, "the process to die", poll_s=0.02)
        after, attempts_after = node_state(store, node_id)
        if not (after == "done" and attempts_after == attempts):
            return pid, node_id
    raise AssertionError(f"no kill landed mid-ride in {tries} tries")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")


def submit(url: str, problem: str, params: dict[str, Any], seed: int, **kw: Any) -> tuple:
    prob = create(problem, params)
    s = RRSettings(**{**prob.default_settings(), **kw})
    store = SQLStorage(url)
    from ridgerider.services.frontier.database import DatabaseFrontier

    job = jobs.submit(store, DatabaseFrontier(store), problem, params, s, seed=seed, lease_s=3.0)
    return store, job.id, run_search(prob, s, seed=seed)


def test_a_worker_killed_mid_ride_loses_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'archive.db'}"
    # rides of ~0.1 s (tree-rl depth 10, no depth limit), so a kill can land inside one; one
    # branch a claim: claims sized automatically can ride the 24 nodes before a kill is tried
    big = {"depth": 10, "tree_seed": 1}
    store, job_id, ref = submit(url, "tree-rl", big, 4, max_nodes=24, max_depth=64)
    options = WorkerOptions(num_cpus=1, batch=1)
    pool = start_workers(url, None, 2, job_id=job_id, options=options)
    try:
        pid, node_id = kill_mid_ride(pool, store)
        assert pool.wait(180), "the job did not finish"
        assert pool.error is None and pool.replaced >= 1
        assert pid not in [i["pid"] for i in pool.info()]
        assert pool.problems_built() == 1  # one build shared by every worker, replacement too
    finally:
        pool.stop()
    assert_same_tree(store, job_id, ref)
    node = store.get_node(node_id)
    assert node is not None and node.status == "done" and node.attempts >= 2  # ridden again
    store.close()


def test_worker_command_serves_every_running_job(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'archive.db'}"
    address = ray.get_runtime_context().gcs_address
    log = (tmp_path / "worker.log").open("w")
    cmd = [sys.executable, "-c", "from ridgerider.cli import main; main()", "worker"]
    args = ["--ray-address", address, "--database-url", url, "--num-workers", "1"]
    proc = subprocess.Popen([*cmd, *args], stdout=log, stderr=subprocess.STDOUT)
    try:
        submitted = [submit(url, "tree-rl", TREE, seed, max_nodes=6) for seed in (1, 2)]
        for store, job_id, _ in submitted:
            wait_until(
                lambda s=store, j=job_id: s.get_job(j).status != "running", 120, "jobs", poll_s=0.02
            )
        assert proc.poll() is None  # still serving
        # `run --workers N` hands its whole request to the pool's intake (cli.intake).
        wait_until(lambda: any(p.intake for p in registry.find_pools(url)), 60, "the intake")
        out = tmp_path / "run.json"
        handed = CliRunner().invoke(main, ["run", "tree-rl", "--set", "depth=6", "--set",
                                           "tree_seed=2", "--seed", "1", "--max-nodes", "6",
                                           "--workers", "1", "--database-url", url,
                                           "--json", str(out)])  # fmt: skip
        assert handed.exit_code == 0, handed.output
        assert "riding on the running worker pool" in " ".join(handed.output.split())
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
        log.close()
    assert code == 0, (tmp_path / "worker.log").read_text()
    for store, job_id, ref in submitted:
        assert_same_tree(store, job_id, ref)
    store, job_id, ref = submitted[0]
    assert_same_tree(store, json.loads(out.read_text())["job_id"], ref)  # seed 1's tree again
    for store, _, _ in submitted:
        store.close()


def _ride_on_a_ray_of_its_own(url: str, job_id: int) -> None:
    """Ride a job with two Ray workers on a local Ray this process starts (killed mid-job).

    One branch a claim: claims sized automatically could finish the 30 nodes between the
    test's look and its kill.
    """
    options = WorkerOptions(batch=1)
    runner.resume(job_id, database_url=url, ray=runner.RayPlan(2, options=options))


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process below it (Ray's GCS, raylet and worker processes)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # exited while we looked
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(parents.get(p, []))
    return out


def test_killing_the_whole_ray_mid_job_then_resuming_finishes_the_tree(tmp_path: Path) -> None:
    """A driver and its whole local Ray (GCS, raylet, workers) SIGKILLed mid-job; then resume.

    The job is ridden by a spawned process with a Ray of its own; the test kills that process
    and every process below it at once, as a machine losing its Ray would, and resumes the job
    here on a Ray started on demand.
    """
    if ray.is_initialized():
        ray.shutdown()  # the module's Ray is done with; resume starts its own
    url = f"sqlite:///{tmp_path / 'archive.db'}"
    store, job_id, ref = submit(url, "tree-rl", TREE, 5, max_nodes=30)
    child = multiprocessing.get_context("spawn").Process(
        target=_ride_on_a_ray_of_its_own, args=(url, job_id)
    )
    child.start()
    try:
        wait_until(lambda: (store.get_job(job_id).nodes or 0) >= 3, 300, "a few nodes", poll_s=0.02)
    finally:
        family = process_tree(child.pid)
        for pid in family:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        child.join(30)
    assert len(family) > 3  # the driver, Ray's own processes and its workers
    job = store.get_job(job_id)
    assert job is not None and job.status == "running" and job.nodes < len(ref.nodes)
    seen: list[str] = []
    out = runner.resume(  # on a Ray started on demand
        job_id, database_url=url, ray=runner.RayPlan(2), on_node=lambda n, _: seen.append(n.key)
    )
    assert not ray.is_initialized()  # the on-demand Ray was shut down again
    assert_same_tree(store, job_id, ref)
    assert out["nodes"] == len(ref.nodes)
    keys = [n.key for n in ref.nodes]
    assert seen and seen == keys[len(keys) - len(seen) :]  # progress: each new node, in order
    store.close()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_gpu_worker_grows_the_same_tree(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'archive.db'}"
    store, job_id, ref = submit(url, "tree-rl", TREE, 6, max_nodes=8)
    options = WorkerOptions(num_cpus=0, num_gpus=1, device="cuda")
    pool = start_workers(url, None, 1, job_id=job_id, options=options)
    try:
        assert pool.wait(180) and pool.error is None
    finally:
        pool.stop()
    assert_same_tree(store, job_id, ref)
    store.close()
