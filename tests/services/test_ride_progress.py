"""Live progress of long rides: worker heartbeats write it, the archive and the runner show it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ridgerider.core import RRSettings
from ridgerider.core.branch import Branch
from ridgerider.core.expand import Expansion
from ridgerider.core.ridge import OnStep
from ridgerider.problems import RegisteredProblem
from ridgerider.services import jobs
from ridgerider.services.frontier.database import DatabaseFrontier
from ridgerider.services.storage.records import RideProgress
from ridgerider.services.storage.sql import SQLStorage
from ridgerider.workers import runner
from ridgerider.workers.worker import Worker

from .synthetic import expansion, submit


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_ride_in_flight_shows_its_steps_in_the_archive_before_it_finishes(
    sqlite_url: str,
) -> None:
    """A worker's heartbeats carry the steps its ride reports; the node joins the tree after."""
    frontier = DatabaseFrontier(SQLStorage(sqlite_url))
    job = submit(frontier, max_nodes=2, lease_s=30.0)
    release = threading.Event()

    def slow(
        problem: RegisteredProblem,
        settings: RRSettings,
        branch: Branch,
        on_step: OnStep | None = None,
    ) -> Expansion:
        if branch.direction is not None:  # the ride below the root: step, then hold
            assert on_step is not None
            for k in range(1, 41):
                on_step(k, 1.0 / k)
            release.wait(10)
        return expansion(branch, 1, depth=1)

    worker = Worker(
        frontier, job_id=job, expand_fn=slow, make_problem=lambda *_: None, progress_s=0.05
    )  # type: ignore[arg-type,return-value]
    thread = threading.Thread(target=worker.run)
    thread.start()
    storage = frontier.storage
    # Lease 30 s (heartbeat every 10 s), yet the ride's steps arrive within progress_s.
    wait_for(lambda: [r.steps for r in storage.rides(job)] == [40])
    (ride,) = storage.rides(job)
    assert ride.loss == 1.0 / 40 and ride.worker == worker.worker_id and ride.depth == 1
    assert worker.riding() == {ride.node_id: RideProgress(40, 1.0 / 40)}
    record = storage.get_job(job)
    assert record is not None and (record.nodes, record.steps) == (1, 0)  # only the root
    release.set()
    thread.join(10)
    assert storage.rides(job) == [] and worker.riding() == {}
    record = storage.get_job(job)
    assert record is not None and record.nodes == 2 and record.status == "succeeded"
    frontier.close()


def test_the_runner_reports_steps_of_a_real_ride_while_it_runs(sqlite_url: str) -> None:
    """Through the real engine: a 3,000-step ride on the 2-D surface reports its steps live."""
    settings = RRSettings(
        step_rule="fixed", alpha=1e-4, max_ride_steps=3000, max_nodes=2, max_depth=1
    )
    riding: list[int] = []
    nodes: list[int] = []
    report = runner.run(
        jobs.Submission.build("toy2d", {}, settings),
        database_url=sqlite_url,
        on_node=lambda node, steps: nodes.append(steps),
        on_riding=riding.append,
    )
    assert report["nodes"] == 2
    during = [s for s in riding if s > 0]
    # Several live reports, rising, before the node with its 3,000 steps joined the tree.
    assert len(during) >= 3 and during == sorted(during) and max(during) <= 3000
    assert nodes[-1] == 3000 and riding[-1] == 0
