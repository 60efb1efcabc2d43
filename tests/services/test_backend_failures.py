"""Workers outlive their backends: lost connections, Redis flushed or restarted, dead workers.

Each test runs a real job on the real servers, breaks a backend mid-run and checks that the job
still ends with the tree of an undisturbed run (keys and losses, bit for bit): a failure costs
at most the attempt in hand.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import make_url
from tests.services.conftest import PG, REDIS

from ridgerider.core.search import run_search
from ridgerider.core.settings import RRSettings
from ridgerider.problems import create
from ridgerider.schemas.enums import JobStatus
from ridgerider.services import jobs
from ridgerider.services.archive import Archive, open_archive, recover
from ridgerider.workers.pools import WorkerPool, start_local_workers
from ridgerider.workers.processes import start_process_workers

PARAMS = {"depth": 8, "tree_seed": 11}
SEED = 5


def _settings(max_nodes: int = 60) -> RRSettings:
    problem = create("tree-rl", PARAMS)
    return RRSettings(**{**problem.default_settings(), "order": "bfs", "max_nodes": max_nodes})


def _reference(max_nodes: int = 60) -> dict[str, float]:
    result = run_search(create("tree-rl", PARAMS), _settings(max_nodes), seed=SEED)
    return {n.key: n.loss for n in result.nodes}


def _tree(archive: Archive, job_id: int) -> dict[str, float | None]:
    try:
        return _read_tree(archive, job_id)
    except Exception:  # this test's own pooled connection was cut: the next one is fresh
        return _read_tree(archive, job_id)


def _read_tree(archive: Archive, job_id: int) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    cursor = None
    while True:
        page = archive.storage.list_nodes(job_id, cursor=cursor, tree=True)
        out.update({r.key: r.loss for r in page.items})
        if page.next_cursor is None:
            return out
        cursor = page.next_cursor


def _wait(archive: Archive, job_id: int, until: Callable[..., bool], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            job = archive.storage.get_job(job_id)
            if job is not None and until(job):
                return
        except Exception:  # this test's own connections are cut too
            pass
        time.sleep(0.05)
    raise AssertionError(f"job {job_id}: timed out ({archive.storage.get_job(job_id)})")


def _terminate_connections(url: str) -> int:
    """``pg_terminate_backend`` on every connection to the test database but this one."""
    u = make_url(url)
    with psycopg.connect(
        host=u.host, port=u.port or 5432, user=u.username, dbname="postgres", autocommit=True
    ) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (u.database,),
        ).fetchall()
    return sum(bool(r[0]) for r in rows)


def _pool(kind: str, archive: Archive, url: str, redis_url: str | None = None) -> WorkerPool:
    if kind == "threads":
        return start_local_workers(archive.frontier, 2, poll_s=0.02)
    archive.frontier.start_reaper()  # the service's job; worker processes do not reap
    return start_process_workers(url, redis_url, 2, poll_s=0.02)


@PG
@pytest.mark.slow
@pytest.mark.parametrize("kind", ["threads", "processes"])
def test_terminated_connections_cost_at_most_the_attempt_in_hand(pg_url: str, kind: str) -> None:
    archive = open_archive(pg_url)
    job = jobs.submit(
        archive.storage, archive.frontier, "tree-rl", PARAMS, _settings(), seed=SEED, lease_s=2.0
    )
    pool = _pool(kind, archive, pg_url)
    try:
        killed = []
        for at in (8, 25):
            _wait(archive, job.id, lambda j, at=at: j.nodes >= at)
            killed.append(_terminate_connections(pg_url))
        _wait(archive, job.id, lambda j: j.finished)
        alive = pool.alive()
    finally:
        pool.stop(30)
    final = archive.storage.get_job(job.id)
    assert sum(killed) >= 2, "the test did cut connections"
    assert final is not None and final.status == JobStatus.SUCCEEDED, final
    assert alive == 2
    assert _tree(archive, job.id) == _reference()
    archive.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Redis:
    """A private redis-server on a free loopback port, stopped and started by the test."""

    def __init__(self, folder: Path) -> None:
        self.port = _free_port()
        self.folder = folder
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        cmd = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        cmd += ["--appendonly", "no", "--dir", str(self.folder)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.proc = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[_Redis]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed: the Redis restart test needs its own server")
    server = _Redis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@PG
@REDIS
@pytest.mark.slow
def test_redis_flushed_and_restarted_mid_run_loses_nothing(pg_url: str, private_redis) -> None:
    archive = open_archive(pg_url, private_redis.url)
    job = jobs.submit(
        archive.storage, archive.frontier, "tree-rl", PARAMS, _settings(), seed=SEED, lease_s=2.0
    )
    pool = _pool("threads", archive, pg_url)
    try:
        _wait(archive, job.id, lambda j: j.nodes >= 10)
        archive.frontier.redis.flushdb()  # type: ignore[attr-defined]
        _wait(archive, job.id, lambda j: j.nodes >= 25)
        private_redis.stop()
        # Accepted while Redis is down: stored in the database, indexed when Redis is back.
        second = jobs.submit(
            archive.storage, archive.frontier, "tree-rl", PARAMS, _settings(30), seed=SEED
        )
        time.sleep(1.0)
        private_redis.start()
        _wait(archive, job.id, lambda j: j.finished)
        _wait(archive, second.id, lambda j: j.finished)
        alive = pool.alive()
    finally:
        pool.stop(30)
    assert alive == 2
    for job_id, nodes in ((job.id, 60), (second.id, 30)):
        final = archive.storage.get_job(job_id)
        assert final is not None and final.status == JobStatus.SUCCEEDED, final
        assert _tree(archive, job_id) == _reference(nodes)
    archive.close()


def test_a_restart_starts_jobs_stored_but_never_started(sqlite_url: str) -> None:
    archive = open_archive(sqlite_url)
    job = jobs.submit(
        archive.storage, archive.frontier, "tree-rl", PARAMS, _settings(20), seed=SEED,
        start_now=False,
    )  # fmt: skip
    assert archive.storage.get_job(job.id).status == JobStatus.QUEUED  # type: ignore[union-attr]
    recover(archive.frontier)
    pool = start_local_workers(archive.frontier, 1, poll_s=0.02)
    try:
        _wait(archive, job.id, lambda j: j.finished)
    finally:
        pool.stop(30)
    assert _tree(archive, job.id) == _reference(20)
    archive.close()


@pytest.mark.slow
def test_a_killed_worker_process_is_replaced_and_stop_still_returns(sqlite_url: str) -> None:
    archive = open_archive(sqlite_url)
    job = jobs.submit(
        archive.storage, archive.frontier, "tree-rl", PARAMS, _settings(), seed=SEED, lease_s=2.0
    )
    pool = start_process_workers(sqlite_url, None, 2, poll_s=0.02)
    archive.frontier.start_reaper()
    try:
        _wait(archive, job.id, lambda j: j.nodes >= 5)
        victim = pool.processes[0]
        os.kill(victim.pid, signal.SIGKILL)
        _wait(archive, job.id, lambda j: pool.restarts >= 1 and pool.alive() == 2, timeout=30)
        _wait(archive, job.id, lambda j: j.finished)
    finally:
        stopper = threading.Thread(target=pool.stop, args=(30,))
        stopper.start()
        stopper.join(60)
    assert not stopper.is_alive(), "stop() hung after a worker process was killed"
    assert _tree(archive, job.id) == _reference()
    archive.close()


@PG
@pytest.mark.ray
@pytest.mark.slow
def test_terminated_connections_on_ray_workers(pg_url: str) -> None:
    """The same on Ray actors: the runner (a local Ray on demand) rides while connections die."""
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        pytest.skip("needs to start its own local Ray")
    from ridgerider.workers import runner

    created: list[int] = []
    result: dict = {}

    def drive() -> None:
        submission = jobs.Submission.build("tree-rl", PARAMS, _settings(), seed=SEED)
        result.update(
            runner.run(
                submission,
                database_url=pg_url,
                on_created=lambda job_id, _: created.append(job_id),
                ray=runner.RayPlan(2),
            )
        )

    thread = threading.Thread(target=drive)
    thread.start()
    archive = open_archive(pg_url)
    deadline = time.monotonic() + 120
    while not created and time.monotonic() < deadline:
        time.sleep(0.05)
    killed = []
    for at in (8, 25):
        _wait(archive, created[0], lambda j, at=at: j.nodes >= at)
        killed.append(_terminate_connections(pg_url))
    thread.join(300)
    assert not thread.is_alive()
    assert sum(killed) >= 2
    assert result["status"] == "succeeded", result
    assert _tree(archive, created[0]) == _reference()
    archive.close()
