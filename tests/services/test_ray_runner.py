"""The runner on Ray: live progress of a ride; a local Ray started and stopped on demand."""

from __future__ import annotations

import pytest

from ridgerider.core import RRSettings
from ridgerider.services import jobs
from ridgerider.workers import runner

ray = pytest.importorskip("ray")


@pytest.mark.ray
@pytest.mark.slow
def test_ray_workers_report_a_long_ride_while_it_runs(sqlite_url: str) -> None:
    """A Ray worker's heartbeats carry its ride's steps; the runner reports them live."""
    if ray.is_initialized():
        pytest.skip("needs to start its own local Ray")
    s = RRSettings(step_rule="fixed", alpha=1e-4, max_ride_steps=6000, max_nodes=2, max_depth=1)
    riding: list[int] = []
    out = runner.run(
        jobs.Submission.build("toy2d", {}, s),
        database_url=sqlite_url,
        on_riding=riding.append,
        ray=runner.RayPlan(1),
    )
    assert out["nodes"] == 2
    during = [x for x in riding if x > 0]
    assert during and during == sorted(during) and max(during) < 6000
    assert riding[-1] == 0  # the ride joined the tree
