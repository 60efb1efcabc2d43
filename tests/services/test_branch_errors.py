"""A branch that raises fails that branch, never the worker or the job (after its attempts)."""

from __future__ import annotations

from ridgerider.core.expand import expand
from ridgerider.core.search import run_search
from ridgerider.core.settings import RRSettings
from ridgerider.problems import create
from ridgerider.schemas.enums import JobStatus
from ridgerider.services import jobs
from ridgerider.services.archive import open_archive
from ridgerider.workers.worker import Worker

PARAMS = {"depth": 4, "tree_seed": 2}
BAD = "1-"


def test_a_branch_that_always_raises_becomes_an_error_leaf(sqlite_url: str) -> None:
    problem = create("tree-rl", PARAMS)
    settings = RRSettings(**{**problem.default_settings(), "max_nodes": 10_000})
    ref = run_search(problem, settings, seed=1).nodes
    assert BAD in {n.key for n in ref} and any(n.key.startswith(BAD + ".") for n in ref)
    calls: list[str] = []

    def flaky(problem, settings, branch, on_step=None):
        if branch.key == BAD:
            calls.append(branch.key)
            raise FloatingPointError("the Hessian overflowed")
        return expand(problem, settings, branch, on_step=on_step)

    archive = open_archive(sqlite_url)
    job = jobs.submit(archive.storage, archive.frontier, "tree-rl", PARAMS, settings, seed=1)
    Worker(archive.frontier, job_id=job.id, expand_fn=flaky).run()

    final = archive.storage.get_job(job.id)
    assert final is not None and final.status == JobStatus.SUCCEEDED, final
    assert len(calls) == final.max_attempts  # retried, then recorded
    stored = {r.key: r for r in archive.storage.list_nodes(job.id, limit=10_000).items}
    bad = stored[BAD]
    assert (bad.leaf_reason, bad.end_reason, bad.is_solution) == ("error", "error", False)
    assert "FloatingPointError: the Hessian overflowed" in bad.metrics["error"]
    # every other node is the undisturbed one; the failed branch's subtree is not there
    kept = [n for n in ref if n.key != BAD and not n.key.startswith(BAD + ".")]
    assert set(stored) == {n.key for n in kept} | {BAD}
    assert all(stored[n.key].loss == n.loss for n in kept)
    archive.close()
