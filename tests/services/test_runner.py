"""The functions the CLI calls: run, show, jobs, resume, extend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ridgerider.core import RRSettings, run_search
from ridgerider.core.search import coverage
from ridgerider.problems import create
from ridgerider.services import archive as archive_mod
from ridgerider.services import jobs, listing
from ridgerider.services.frontier.database import DatabaseFrontier
from ridgerider.services.storage.sql import SQLStorage
from ridgerider.workers import runner

from .conftest import PG, REDIS, REDIS_URL

PARAMS = {"depth": 6, "tree_seed": 2}
PROBLEM = create("tree-rl", PARAMS)
SHAPE = {
    "job_id",
    "problem",
    "params",
    "seed",
    "method",
    "order",
    "mis",
    "nodes",
    "solutions",
    "elapsed_s",
    "coverage",
    "status",
    "stopped_by",
    "error",
}


def settings(**kw: Any) -> RRSettings:
    return RRSettings(**{**PROBLEM.default_settings(), **kw})


def expected(s: RRSettings, seed: int) -> dict[str, Any]:
    ref = run_search(PROBLEM, s, seed=seed)
    return {
        "nodes": len(ref.nodes),
        "solutions": [
            {"fingerprint": [list(c) for c in n.fingerprint], "loss": n.loss, "metrics": n.metrics}
            for n in ref.solutions
        ],
        "coverage": coverage(PROBLEM, ref.nodes),
        "mis": {
            "loss": ref.mis.loss,
            "grad_norm": ref.mis.grad_norm,
            "negative_eigenvalues": ref.mis.negative_eigenvalues,
            "spectrum": ref.mis.spectrum,
        },
    }


def test_run_show_jobs_resume(sqlite_url: str) -> None:
    s = settings(order="dfs", max_nodes=6)
    created: list[tuple[int, str]] = []
    seen: list[str] = []
    out = runner.run(
        jobs.Submission.build("tree-rl", PARAMS, s, seed=3),
        database_url=sqlite_url,
        on_created=lambda job_id, where: created.append((job_id, where)),
        on_node=lambda node, steps: seen.append(node.key),
    )
    assert set(out) == SHAPE
    assert created == [(out["job_id"], sqlite_url.removeprefix("sqlite:///"))]
    assert {k: out[k] for k in ("nodes", "solutions", "coverage", "mis")} == expected(s, 3)
    assert out["problem"] == "tree-rl" and out["params"] == PROBLEM.params_dict()
    assert out["order"] == "dfs" and out["method"] == "exact" and out["seed"] == 3
    assert len(seen) == out["nodes"] and out["elapsed_s"] > 0
    assert runner.show(out["job_id"], database_url=sqlite_url) == out
    (listed,) = listing.list_jobs(database_url=sqlite_url)
    assert listed["job_id"] == out["job_id"] and listed["status"] == "succeeded"
    assert listed["stopped_by"] == "max_nodes" and listed["nodes"] == 6
    assert runner.resume(out["job_id"], database_url=sqlite_url) == out  # nothing left to do
    with pytest.raises(runner.JobNotFoundError):
        runner.show(404, database_url=sqlite_url)


def runner_tree(url: str, job_id: int) -> list[Any]:
    """The job's tree in rank order, as stored."""
    storage = SQLStorage(url)
    try:
        return list(storage.list_nodes(job_id, cursor=0, tree=True, limit=10_000).items)
    finally:
        storage.close()


@pytest.mark.parametrize(("update", "ahead"), [("exact", True), ("fixed", False)])
def test_one_worker_here_rides_ahead_where_it_rides_its_claims_together(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, update: str, ahead: bool
) -> None:
    """dfs: the lone worker claims the rides the order wants next with its rank (exact rides
    are batched); rides of ``update="fixed"`` are one by one, so it claims admitted ones only."""
    claimed: list[int | None] = []
    claim = DatabaseFrontier.claim

    def spy(self: DatabaseFrontier, *args: Any, **kwargs: Any) -> Any:
        leases = claim(self, *args, **kwargs)
        claimed.extend(x.rank for x in leases)
        return leases

    monkeypatch.setattr(DatabaseFrontier, "claim", spy)
    s = settings(order="dfs", max_nodes=12, update=update)
    seen: list[str] = []
    out = runner.run(
        jobs.Submission.build("tree-rl", PARAMS, s, seed=3),
        database_url=sqlite_url,
        on_node=lambda node, steps: seen.append(node.key),
    )
    assert (None in claimed) is ahead
    # The progress reports the tree's nodes, in rank order, not the rides done ahead.
    tree = [n.key for n in runner_tree(sqlite_url, out["job_id"])]
    assert seen == tree and len(tree) == out["nodes"]
    assert {k: out[k] for k in ("nodes", "solutions")} == {
        k: v for k, v in expected(s, 3).items() if k in ("nodes", "solutions")
    }


def test_extend_runs_on_to_the_larger_budget(sqlite_url: str) -> None:
    s = settings(order="bfs", max_nodes=4)
    out = runner.run(
        jobs.Submission.build("tree-rl", PARAMS, s, seed=5),
        database_url=sqlite_url,
    )
    more = runner.extend(out["job_id"], max_nodes=9, database_url=sqlite_url)
    assert {k: more[k] for k in ("nodes", "solutions")} == {
        k: v
        for k, v in expected(settings(order="bfs", max_nodes=9), 5).items()
        if k in ("nodes", "solutions")
    }


def test_resume_finishes_a_job_whose_process_died(sqlite_url: str) -> None:
    s = settings(order="priority", max_nodes=8)
    store = SQLStorage(sqlite_url)

    job = jobs.submit(store, DatabaseFrontier(store), "tree-rl", PARAMS, s, seed=2)
    store.close()  # "the process died" before any worker ran
    out = runner.resume(job.id, database_url=sqlite_url, workers=2)
    assert out["nodes"] == 8 and out["solutions"] == expected(s, 2)["solutions"]


@pytest.mark.usefixtures("redis_server")
@PG
@REDIS
def test_run_with_postgres_and_redis(pg_url: str) -> None:
    s = settings(order="random", max_nodes=7)
    out = runner.run(
        jobs.Submission.build("tree-rl", PARAMS, s, seed=9),
        database_url=pg_url,
        redis_url=REDIS_URL,
        workers=2,
    )
    assert {k: out[k] for k in ("nodes", "solutions")} == {
        k: v for k, v in expected(s, 9).items() if k in ("nodes", "solutions")
    }
    assert runner.show(out["job_id"], database_url=pg_url) == out
    archive = archive_mod.open_archive(pg_url, REDIS_URL)
    ns = archive.frontier.ns  # type: ignore[attr-defined]
    assert ns.startswith("rr:") and ns != "rr"  # named after the database
    client = archive.frontier.redis  # type: ignore[attr-defined]
    keys = list(client.scan_iter(f"{ns}:*"))
    assert keys  # the run used this namespace
    client.delete(*keys)
    archive.close()


def test_default_database_is_a_file_in_the_user_data_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    url = archive_mod.default_database_url()
    assert url == f"sqlite:///{tmp_path / 'ridgerider' / 'archive.db'}"
    archive = archive_mod.open_archive()
    assert archive.location == str(tmp_path / "ridgerider" / "archive.db")
    archive.close()
    assert (tmp_path / "ridgerider" / "archive.db").is_file()


def test_workers_that_cannot_start_fail_the_job_with_the_reason(sqlite_url, monkeypatch) -> None:
    """A Ray that cannot start leaves no job ``running`` for ever: it fails, saying why.

    (Starting a real Ray against an unreachable address retries for minutes, so the start is
    made to raise here; everything after it is the real runner and archive.)
    """
    import ridgerider.workers.ray as ray_workers

    def no_ray(*args, **kwargs):
        raise RuntimeError("Ray could not be started: no GCS at the address")

    monkeypatch.setattr(ray_workers, "start_workers", no_ray)
    out = runner.run(
        jobs.Submission.build("tree-rl", PARAMS, settings(max_nodes=3), seed=1),
        database_url=sqlite_url,
        ray=runner.RayPlan(1),
    )
    assert out["status"] == "failed"
    assert "Ray could not be started" in out["error"]
