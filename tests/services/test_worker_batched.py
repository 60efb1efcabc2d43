"""A worker claiming several branches rides them together and grows exactly the one-by-one tree."""

from __future__ import annotations

from typing import Any

import pytest

from ridgerider.core import RRSettings
from ridgerider.problems import create
from ridgerider.services import jobs
from ridgerider.services.frontier.base import Frontier, Lease
from ridgerider.services.storage.records import RideProgress
from ridgerider.workers import worker as worker_module
from ridgerider.workers.worker import Worker

from .conftest import make_frontier


def tree(frontier: Frontier, job_id: int) -> dict[str, Any]:
    """Every node of a job by key: fingerprint, loss, steps, end, metrics and θ's bytes."""
    out = {}
    for n in frontier.storage.iter_nodes(job_id):
        theta = frontier.storage.node_theta(n.id)
        assert theta is not None
        out[n.key] = (
            n.loss.hex(),
            n.steps,
            n.end_reason,
            n.leaf_reason,
            n.n_children,
            n.metrics,
            theta.numpy().tobytes(),
        )
    return out


def grow(
    request: pytest.FixtureRequest, problem: str, params: dict, batch: int, **kw: Any
) -> tuple[dict[str, Any], int]:
    """A job run by one worker claiming ``batch`` branches at once: its tree and record."""
    frontier = make_frontier("sqlite", request)
    p = create(problem, params)
    settings = RRSettings(**{**p.default_settings(), **kw.pop("settings", {})})
    job = jobs.submit(frontier.storage, frontier, problem, params, settings, seed=5)
    Worker(frontier, job_id=job.id, batch=batch, **kw).run()
    record = frontier.storage.get_job(job.id)
    assert record is not None and record.status == "succeeded", record
    got = tree(frontier, job.id), record.steps
    frontier.close()
    return got


CASES = [
    ("lever-game", {}, {"max_nodes": 60}),
    ("tree-rl", {"depth": 10, "tree_seed": 5555}, {"max_nodes": 60}),
    ("tree-rl", {"depth": 6, "tree_seed": 10}, {"max_nodes": 10_000}),
]


@pytest.mark.parametrize(("problem", "params", "settings"), CASES)
def test_batch_8_grows_the_one_by_one_tree(
    problem: str,
    params: dict,
    settings: dict,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []
    real = worker_module.expand_each

    def counted(problem, settings, branches, on_step=None):  # type: ignore[no-untyped-def]
        calls.append(len(branches))
        return real(problem, settings, branches, on_step)

    monkeypatch.setattr(worker_module, "expand_each", counted)
    together = grow(request, problem, params, 8, settings=settings)
    assert calls and max(calls) > 1  # the batched path ran
    alone = grow(request, problem, params, 1, settings=settings, ride_together=False)
    assert len(together[0]) > 10
    assert together == alone


def test_live_progress_reaches_every_branch(request: pytest.FixtureRequest) -> None:
    seen: dict[str, list[int]] = {}

    def on_ride(lease: Lease, progress: RideProgress) -> None:
        seen.setdefault(lease.branch.key, []).append(progress.steps)

    nodes, _ = grow(
        request, "tree-rl", {"depth": 6, "tree_seed": 10}, 8, settings={"max_nodes": 20},
        on_ride=on_ride,
    )  # fmt: skip
    for key, (_, steps, *_rest) in nodes.items():
        if steps:
            assert seen[key][:steps] == list(range(1, steps + 1)), key


def test_a_failing_branch_in_a_batch_fails_alone(request: pytest.FixtureRequest) -> None:
    params, settings = {"depth": 6, "tree_seed": 10}, {"max_nodes": 10_000}
    ref, _ = grow(request, "tree-rl", params, 1, settings=settings, ride_together=False)
    bad = next(
        k for k, v in ref.items() if "." not in k and v[1] > 0 and any(
            j.startswith(k + ".") for j in ref
        )
    )  # fmt: skip

    def on_ride(lease: Lease, progress: RideProgress) -> None:
        if lease.branch.key == bad:
            raise FloatingPointError("the ride overflowed")

    got, _ = grow(request, "tree-rl", params, 8, settings=settings, on_ride=on_ride)
    assert got[bad][2:4] == ("error", "error")
    assert "FloatingPointError: the ride overflowed" in got[bad][5]["error"]
    kept = {k: v for k, v in ref.items() if k != bad and not k.startswith(bad + ".")}
    assert {k: v for k, v in got.items() if k != bad} == kept


def test_a_batched_expansion_that_breaks_rides_one_by_one(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not one branch's error (those come back per branch): the claim is ridden alone."""

    def broken(*args: Any, **kw: Any) -> Any:
        raise RuntimeError("a bug in the batched path")

    params, settings = {"depth": 6, "tree_seed": 10}, {"max_nodes": 40}
    ref = grow(request, "tree-rl", params, 1, settings=settings, ride_together=False)
    monkeypatch.setattr(worker_module, "expand_each", broken)
    assert grow(request, "tree-rl", params, 8, settings=settings) == ref
