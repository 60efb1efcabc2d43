"""Warm worker pools: ``ridgerider worker`` registers, ``run --workers N`` leaves its job to it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from ridgerider.cli import main
from ridgerider.core import RRSettings
from ridgerider.problems import create
from ridgerider.services import jobs
from ridgerider.services.archive import open_archive
from ridgerider.workers import registry, runner
from ridgerider.workers.pools import start_local_workers

RUN = ["run", "tree-rl", "--set", "depth=6", "--set", "tree_seed=2", "--order", "priority"]


def test_a_pool_is_found_by_the_archive_it_serves(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with registry.Registration("sqlite:///archive.db", cpu_workers=2) as reg:
        (found,) = registry.find_pools(f"sqlite:///{tmp_path / 'archive.db'}")  # same file
        assert found.pid == os.getpid() and found.workers("cpu") == 2
        assert registry.find_pools("sqlite:///archive.db", "gpu") == []  # no GPU workers
        assert registry.find_pools("sqlite:///other.db") == []
        assert reg.path.parent == registry.pools_dir()
    assert registry.find_pools("sqlite:///archive.db") == [] and not reg.path.exists()


def test_a_registration_never_holds_the_url() -> None:
    url = "postgresql+psycopg://rr:s3cret-pw@db.internal:5432/rr"
    with registry.Registration(url, cpu_workers=0, gpu_workers=3) as reg:
        text = reg.path.read_text()
        assert "s3cret" not in text and "db.internal" not in text and "rr" not in reg.path.name
        (found,) = registry.find_pools(url, "gpu")
        assert found.workers("gpu") == 3 and registry.find_pools(url, "cpu") == []


def test_pools_that_died_are_not_found_and_their_files_go(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    now = time.time()
    folder = registry.pools_dir()
    folder.mkdir(parents=True)
    key = registry.archive_key(url)
    dead = {"pid": int(gone.stdout), "cpu_workers": 1, "gpu_workers": 0}
    dead |= {"started": now, "beat": now}
    stale = {**dead, "pid": os.getpid(), "beat": now - registry.STALE_S - 1}  # SIGKILLed pool
    for name, entry in (("1", dead), ("2", stale)):
        (folder / f"{key}-{name}.json").write_text(json.dumps(entry))
    (folder / f"{key}-3.json").write_text("{half a fi")  # being written: skipped, kept
    assert registry.find_pools(url) == []
    assert sorted(p.name for p in folder.iterdir()) == [f"{key}-3.json"]


class Pool:
    """A warm pool in this process: the service's worker threads (every job), registered."""

    def __init__(self, url: str, n: int) -> None:
        self.archive = open_archive(url)
        self.workers = start_local_workers(self.archive.frontier, n, poll_s=0.05)
        self.registration = registry.Registration(url, cpu_workers=n)

    def close(self) -> None:
        self.registration.close()
        self.workers.stop()
        self.archive.close()


def test_run_leaves_its_job_to_a_running_pool_and_gets_the_same_tree(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'archive.db'}"
    here, there = tmp_path / "here.json", tmp_path / "there.json"
    cli = CliRunner()
    alone = cli.invoke(main, [*RUN, "--database-url", url, "--json", str(here), "-q"])
    assert alone.exit_code == 0, alone.output
    pool = Pool(url, 2)
    try:
        result = cli.invoke(main, [*RUN, "--workers", "3", "--database-url", url,
                                   "--json", str(there)])  # fmt: skip
    finally:
        pool.close()
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert f"riding on the running worker pool (pid {os.getpid()}): 2 workers" in said
    assert "(--workers 3 asked for)" in said
    a, b = json.loads(here.read_text()), json.loads(there.read_text())
    assert b["status"] == "succeeded" and b["job_id"] == a["job_id"] + 1
    assert (b["nodes"], b["solutions"], b["mis"]) == (a["nodes"], a["solutions"], a["mis"])
    assert pool.workers.completed == b["nodes"]  # the pool rode every branch


def test_a_job_left_to_a_pool_has_its_mis_found_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command stores the job at once; a warm pool worker finds the MIS (the same one)."""
    url = f"sqlite:///{tmp_path / 'archive.db'}"
    problem = create("tree-rl", {"depth": 5, "tree_seed": 3})
    submission = jobs.Submission(problem, RRSettings(**problem.default_settings()), seed=4)
    alone = runner.run(submission, database_url=url)  # one worker in this process
    found_by: list[str] = []
    real = jobs.branch_point

    def branch_point(*args, **kwargs):
        found_by.append(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(jobs, "branch_point", branch_point)
    pool = Pool(url, 2)
    try:
        pooled = runner.run(submission, database_url=url, ray=runner.RayPlan(2))
    finally:
        pool.close()
    assert len(found_by) == 1 and found_by[0] != threading.main_thread().name
    assert pool.workers.completed == pooled["nodes"]
    for key in ("mis", "nodes", "solutions", "status"):
        assert pooled[key] == alone[key], key


def test_without_the_pool_or_when_it_stops_the_job_starts_its_own_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--no-pool`` starts Ray workers; so does a job whose pool stops before it ends.

    Starting Ray is made to raise (as in ``test_runner``): the job then fails naming it, which
    shows that the runner went on to start its own workers.
    """
    import ridgerider.workers.ray as ray_workers

    def no_ray(*args, **kwargs):
        raise RuntimeError("own Ray workers asked for")

    monkeypatch.setattr(ray_workers, "start_workers", no_ray)
    url = f"sqlite:///{tmp_path / 'archive.db'}"
    idle = registry.Registration(url, cpu_workers=1)  # registered, but nobody rides
    try:
        result = CliRunner().invoke(main, [*RUN, "--workers", "1", "--no-pool", "--database-url",
                                           url, "-q"])  # fmt: skip
        assert result.exit_code == 1 and "own Ray workers asked for" in result.output
        seen: list[int] = []
        closed: list[float] = []

        def close() -> None:
            closed.append(time.monotonic())
            idle.close()

        def left_to_pool(pools: list[registry.PoolEntry], n: int) -> None:
            # The pool stops once the job was left to it (a fixed delay raced the MIS search
            # on a loaded machine: the pool was gone before the runner looked).
            seen.append(n)
            threading.Timer(0.5, close).start()

        problem = create("tree-rl", {"depth": 4})
        settings = RRSettings(**problem.default_settings())
        out = runner.run(
            jobs.Submission(problem, settings, seed=1),
            database_url=url,
            ray=runner.RayPlan(1, on_pool=left_to_pool),
        )
        done = time.monotonic()
    finally:
        idle.close()
    assert seen == [1]  # left to the pool first
    assert out["status"] == "failed" and "own Ray workers asked for" in out["error"]
    assert closed and done - closed[0] < registry.BEAT_S + 5  # noticed at the next look


@pytest.mark.parametrize(
    ("extra", "option"),
    [(["--num-gpus", "1"], "--num-gpus"), (["--gpu-workers", "1"], "--gpu-workers"),
     (["--device", "cuda"], "--device"), (["--ray-address", "auto"], "--ray-address")],
)  # fmt: skip
def test_a_pool_without_ray_refuses_what_needs_ray(extra: list[str], option: str) -> None:
    result = CliRunner().invoke(main, ["worker", "--no-ray", *extra])
    assert result.exit_code == 2 and f"{option}: needs Ray" in result.output
    assert not registry.pools_dir().exists()  # nothing started, nothing registered
