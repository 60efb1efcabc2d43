"""The Ray worker's building blocks without a Ray runtime: options, the actor body, the CLI."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from ridgerider.cli import main
from ridgerider.core import RRSettings, run_search
from ridgerider.problems import create
from ridgerider.services import jobs
from ridgerider.services.frontier.database import DatabaseFrontier
from ridgerider.services.storage.sql import SQLStorage

pytest.importorskip("ray")

from ridgerider.workers.ray import WorkerHost, WorkerOptions, start_workers

PARAMS = {"depth": 6, "tree_seed": 2}


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"num_cpus": -1}, "num_cpus"),
        ({"num_gpus": -0.5}, "num_gpus"),
        ({"torch_threads": 0}, "torch_threads"),
        ({"device": "tpu"}, "device"),
        ({"batch": 0}, "batch"),
    ],
)
def test_worker_options_name_the_bad_field(kw: dict, field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}: "):
        WorkerOptions(**kw)


def test_start_workers_needs_a_worker() -> None:
    with pytest.raises(ValueError, match=r"^n: "):
        start_workers("sqlite:///unused.db", None, 0)


def test_the_actor_body_runs_a_job_like_the_engine(sqlite_url: str) -> None:
    problem = create("tree-rl", PARAMS)
    s = RRSettings(**{**problem.default_settings(), "order": "bfs", "max_nodes": 7})
    store = SQLStorage(sqlite_url)
    job = jobs.submit(store, DatabaseFrontier(store), "tree-rl", PARAMS, s, seed=2)
    host = WorkerHost(sqlite_url, None, job.id, WorkerOptions())
    info = host.info()
    assert info["pid"] == os.getpid() and info["completed"] == 0 and info["holding"] == []
    assert host.run() == 7
    ref = run_search(problem, s, seed=2)
    assert [n.key for n in store.iter_nodes(job.id)] == [n.key for n in ref.nodes]
    assert [x.key for x in store.solutions(job.id)] == [n.key for n in ref.solutions]
    store.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["worker", "--device", "tpu"], "--device: 'cpu' or 'cuda[:i]'"),
        (["worker", "--num-workers", "0"], "--num-workers"),
        (["worker", "--batch", "0"], "--batch: an integer >= 1 or 'auto'"),
        (["worker", "--batch", "many"], "--batch: an integer >= 1 or 'auto'"),
        (["run", "toy2d", "--workers", "-1"], "--workers"),
        (["run", "toy2d", "--ray-address", "auto"], "--ray-address needs --workers"),
        (["resume", "1", "--ray-address", "auto"], "--ray-address needs --workers"),
    ],
)
def test_bad_worker_options_exit_2_naming_the_option(args: list[str], message: str) -> None:
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 2 and message in res.output, res.output
