"""The Ray worker's building blocks without a Ray runtime: options, the URL handover, the actor
body, the CLI."""

from __future__ import annotations

import os
import pickle
import stat
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from ridgerider.cli import main
from ridgerider.core import RRSettings, run_search
from ridgerider.problems import create
from ridgerider.services import jobs
from ridgerider.services.archive import mask_url
from ridgerider.services.frontier.database import DatabaseFrontier
from ridgerider.services.storage.sql import SQLStorage

pytest.importorskip("ray")

from ridgerider.workers.ray import (
    Handover,
    WorkerConfigError,
    WorkerHost,
    WorkerOptions,
    start_workers,
)
from ridgerider.workers.ray import handover as handover_mod

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


def test_the_handover_sends_no_url_through_ray(tmp_path, monkeypatch) -> None:
    url, redis_url = "postgresql://rr:hunter2@db/rr?sslpassword=key2", "redis://u:pw3@r:6379/0"
    handover = Handover(url, redis_url)
    sources = [handover.database, handover.redis]
    sent = pickle.dumps(sources)  # what Ray would store as the actor's arguments
    assert not any(secret in sent for secret in (b"hunter2", b"key2", b"pw3"))
    assert [s.shown for s in sources] == [mask_url(url), mask_url(redis_url)]
    folder = Path(handover.database.path).parent
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(Path(s.path).stat().st_mode) == 0o600 for s in sources)
    monkeypatch.setenv("RIDGERIDER_DATABASE_URL", "postgresql://rr:other@db/elsewhere")
    assert handover.database.resolve() == url  # the driver's file, where it exists
    handover.close()
    assert not folder.exists()
    with pytest.raises(WorkerConfigError) as info:  # a node configured for another archive
        handover.database.resolve()
    assert "postgresql://rr:***@db/elsewhere" in str(info.value)
    assert mask_url(url) in str(info.value) and "other" not in str(info.value)
    monkeypatch.setenv("RIDGERIDER_DATABASE_URL", url)  # a node configured by its operator
    assert handover.database.resolve() == url
    secret = tmp_path / "url"
    secret.write_text(redis_url)
    monkeypatch.setenv("RIDGERIDER_REDIS_URL_FILE", str(secret))
    assert handover.redis is not None and handover.redis.resolve() == redis_url
    monkeypatch.delenv("RIDGERIDER_DATABASE_URL")
    with pytest.raises(WorkerConfigError, match="RIDGERIDER_DATABASE_URL_FILE") as info:
        handover.database.resolve()  # a node with nothing configured
    assert "hunter2" not in str(info.value)


def test_the_actor_body_reads_its_urls_from_the_handover(sqlite_url: str) -> None:
    store = SQLStorage(sqlite_url)
    s = RRSettings(**{**create("tree-rl", PARAMS).default_settings(), "max_nodes": 3})
    job = jobs.submit(store, DatabaseFrontier(store), "tree-rl", PARAMS, s, seed=1)
    handover = Handover(sqlite_url)
    try:
        assert WorkerHost(handover.database, None, job.id, WorkerOptions()).run() == 3
    finally:
        handover.close()
        store.close()


def test_a_handover_deletes_what_a_killed_driver_left(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(handover_mod, "SHM", tmp_path)
    gone = subprocess.Popen(["true"])
    gone.wait()  # a driver SIGKILLed before it could delete its folder
    left = tmp_path / f"{handover_mod.PREFIX}{gone.pid}-abc"
    alive = tmp_path / f"{handover_mod.PREFIX}{os.getppid()}-def"
    for folder in (left, alive):
        folder.mkdir()
        (folder / "database_url").write_text("postgresql://rr:hunter2@db/rr")
    handover = Handover("sqlite:///a.db")
    try:
        assert not left.exists() and alive.exists()
        mine = Path(handover.database.path).parent
        assert mine.parent == tmp_path and mine.name.startswith(
            f"ridgerider-handover-{os.getpid()}-"
        )
    finally:
        handover.close()
