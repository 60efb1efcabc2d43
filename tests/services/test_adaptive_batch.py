"""Claim sizes chosen from measured ride and queue times (``Worker(batch="auto")``)."""

from __future__ import annotations

import itertools
import math

import pytest

from ridgerider.core.branch import Branch
from ridgerider.core.expand import Expansion
from ridgerider.core.settings import RRSettings
from ridgerider.problems import RegisteredProblem
from ridgerider.services.frontier.database import DatabaseFrontier
from ridgerider.services.storage.sql import SQLStorage
from ridgerider.workers.worker import AdaptiveBatch, Worker

from .synthetic import expansion, submit


def test_first_claim_is_one_branch() -> None:
    assert AdaptiveBatch().size == 1


def test_size_keeps_the_queue_share_at_the_target() -> None:
    sizer = AdaptiveBatch(smoothing=1.0)  # no averaging: the size follows the last round
    # 5 ms of queue per claim, 40 ms branches: k = ceil(0.005 / (0.05 * 0.04)) = 3
    assert sizer.observe(0.005, 0.040, 1) == 3
    assert 0.005 / (3 * 0.040) <= 0.05 < 0.005 / (2 * 0.040)
    # seconds-long branches: one at a time
    assert sizer.observe(0.005, 2.0, 1) == 1


def test_size_is_capped_by_max_batch_and_by_ride_time_per_claim() -> None:
    sizer = AdaptiveBatch(smoothing=1.0, max_batch=32, max_claim_s=0.5)
    assert sizer.observe(0.004, 0.0, 8) == 32  # branches that cost nothing
    # 50 ms branches with a slow queue (100 ms per claim) would want 40: 0.5 s caps it at 10
    assert sizer.observe(0.1, 0.05 * 4, 4) == 10


def test_rides_together_claim_the_cap() -> None:
    """Batched rides get cheaper per branch with each branch added: the next claim is the cap."""
    sizer = AdaptiveBatch(smoothing=1.0, max_batch=32, max_claim_s=0.5)
    # 5 ms of queue, 40 ms branches would want 3 alone; together, 0.5 s of riding: 12
    assert sizer.observe(0.005, 0.040 * 4, 4, together=True) == 12
    assert sizer.observe(0.005, 0.040 * 4, 4) == 3  # the next round alone: the model again
    assert sizer.observe(0.005, 0.002 * 4, 4, together=True) == 32  # cheap: max_batch
    assert sizer.observe(0.005, 2.0 * 4, 4, together=True) == 1  # seconds: one at a time


def test_running_means_smooth_one_odd_round() -> None:
    sizer = AdaptiveBatch(smoothing=0.3)
    for _ in range(20):
        sizer.observe(0.005, 0.040, 1)
    assert sizer.size == 3
    sizer.observe(0.005, 0.0004, 1)  # one branch 100x faster than usual
    t = 0.3 * 0.0004 + 0.7 * 0.040
    assert sizer.size == math.ceil(0.005 / (0.05 * t)) < 32


def test_per_branch_queue_cost_does_not_inflate_claims() -> None:
    """Rounds cost 4 ms per claim plus 3 ms per branch; 40 ms branches want claims of 2.

    Sizing by the whole round cost would run away here: each larger claim costs more per
    round (3 ms per branch is above 5 % of 40 ms), asking for a larger claim still.
    """
    sizer = AdaptiveBatch()
    sizes = []
    for _ in range(300):  # long after the rounds of other sizes have faded from the fit
        k = sizer.size
        sizer.observe(0.004 + 0.003 * k, 0.040 * k, k)
        sizes.append(sizer.size)
    assert sizer.fixed_cost() == pytest.approx(0.004, rel=1e-6)
    assert set(sizes[10:]) == {math.ceil(0.004 / (0.05 * 0.040))} == {2}


def test_empty_round_changes_nothing() -> None:
    sizer = AdaptiveBatch()
    assert sizer.observe(0.01, 0.0, 0) == 1


@pytest.mark.parametrize("bad", [0, -3, "many", 2.5, True])
def test_worker_rejects_a_bad_batch(bad: object) -> None:
    with pytest.raises(ValueError, match=r"^batch: "):
        Worker(None, batch=bad)  # type: ignore[arg-type]


def test_an_auto_worker_claims_more_when_branches_are_cheap(sqlite_url: str) -> None:
    """A real worker on a real archive: cheap branches grow the claims, every node completes."""
    frontier = DatabaseFrontier(SQLStorage(sqlite_url))
    job = submit(frontier, max_nodes=300)
    sizes: list[int] = []

    def cheap(
        problem: RegisteredProblem, settings: RRSettings, branch: Branch, on_step: object = None
    ) -> Expansion:
        sizes.append(worker.claim_size())
        return expansion(branch, 2, depth=50)

    worker = Worker(
        frontier, job_id=job, batch="auto", expand_fn=cheap, make_problem=lambda *_: None
    )  # type: ignore[arg-type,return-value]
    assert worker.run() == 300
    assert sizes[0] == 1 and max(sizes) > 1
    assert frontier.storage.count_nodes(job).get("done", 0) == 300
    frontier.close()


def test_a_lone_worker_claims_the_cap_after_riding_admitted_branches_together(
    sqlite_url: str,
) -> None:
    """lever-game's exact branches ride together: each next claim of a lone worker is the cap."""
    from ridgerider.problems import create
    from ridgerider.services import jobs

    frontier = DatabaseFrontier(SQLStorage(sqlite_url))
    problem = create("lever-game", {})
    s = RRSettings(**{**problem.default_settings(), "max_nodes": 80, "polish_steps": 0})
    job = jobs.submit(frontier.storage, frontier, "lever-game", {}, s, seed=0)
    claims: list[tuple[int, int, list[int | None]]] = []  # (asked, the cap then, ranks got)
    claim = frontier.claim

    def spy(worker_id: str, k: int = 1, **kw: object) -> list:
        sizer = worker._sizer
        assert sizer is not None
        per = max(sizer._branch_s or 1.0, 1e-6)
        cap = min(sizer.max_batch, max(1, int(sizer.max_claim_s / per)))
        leases = claim(worker_id, k, **kw)  # type: ignore[arg-type]
        claims.append((k, cap, [x.rank for x in leases]))
        return leases

    frontier.claim = spy  # type: ignore[method-assign]
    worker = Worker(frontier, job_id=job.id, batch="auto", alone=True)
    assert worker.run() == 80
    after_together = [
        (asked, cap)
        for (_, _, ranks), (asked, cap, _) in itertools.pairwise(claims)
        if len(ranks) > 1 and all(r is not None and r > 0 for r in ranks)
    ]
    assert after_together and all(asked == cap for asked, cap in after_together)
    frontier.close()
