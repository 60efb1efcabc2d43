"""Ray workers on the production backends: PostgreSQL archive, Redis frontier."""

from __future__ import annotations

import pytest

from ridgerider.core import RRSettings, run_search
from ridgerider.problems import create
from ridgerider.services import archive as archive_mod
from ridgerider.services import jobs
from ridgerider.workers import runner

from .conftest import PG, REDIS, REDIS_URL

ray = pytest.importorskip("ray")

PARAMS = {"depth": 6, "tree_seed": 2}


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.usefixtures("redis_server")
@PG
@REDIS
def test_ray_workers_with_postgres_and_redis(pg_url: str) -> None:
    if ray.is_initialized():
        pytest.skip("needs to start its own local Ray")
    problem = create("tree-rl", PARAMS)
    s = RRSettings(**{**problem.default_settings(), "order": "bfs", "max_nodes": 9})
    out = runner.run(
        jobs.Submission.build("tree-rl", PARAMS, s, seed=6),
        database_url=pg_url,
        redis_url=REDIS_URL,
        ray=runner.RayPlan(2),
    )
    assert not ray.is_initialized()  # the local Ray started on demand is shut down again
    ref = run_search(problem, s, seed=6)
    assert out["nodes"] == len(ref.nodes)
    assert [s["fingerprint"] for s in out["solutions"]] == [
        [list(c) for c in n.fingerprint] for n in ref.solutions
    ]
    assert [s["loss"] for s in out["solutions"]] == [n.loss for n in ref.solutions]
    archive = archive_mod.open_archive(pg_url, REDIS_URL)
    client, ns = archive.frontier.redis, archive.frontier.ns  # type: ignore[attr-defined]
    keys = list(client.scan_iter(f"{ns}:*"))
    assert keys  # the job ran through this archive's Redis namespace
    client.delete(*keys)
    archive.close()


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
