"""A submission builds its problem once, however it arrives (API spec, CLI, runner)."""

from __future__ import annotations

import pytest

from ridgerider.core.settings import RRSettings
from ridgerider.problems.tree_rl import TreeRL
from ridgerider.services.frontier.database import DatabaseFrontier
from ridgerider.services.jobs import Submission
from ridgerider.services.storage.sql import SQLStorage
from ridgerider.services.submission import submit_spec
from ridgerider.workers import runner

PARAMS = {"depth": 3, "tree_seed": 1}


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Records every construction of a tree-rl problem from parameters."""
    calls: list[dict] = []
    original = TreeRL.from_params.__func__  # type: ignore[attr-defined]

    def counting(cls, params=None):
        calls.append(dict(params or {}))
        return original(cls, params)

    monkeypatch.setattr(TreeRL, "from_params", classmethod(counting))
    return calls


def test_a_spec_from_outside_builds_the_problem_once(tmp_path, builds) -> None:
    storage = SQLStorage(f"sqlite:///{tmp_path / 'a.db'}")
    try:
        job, created = submit_spec(
            storage, DatabaseFrontier(storage), "tree-rl", PARAMS, {"max_nodes": 3}
        )
    finally:
        storage.close()
    assert created and job.problem == "tree-rl"
    assert len(builds) == 1


def test_the_runner_builds_nothing_again(tmp_path, builds) -> None:
    submission = Submission.build("tree-rl", PARAMS, RRSettings(max_nodes=2), seed=1)
    assert len(builds) == 1
    out = runner.run(submission, database_url=f"sqlite:///{tmp_path / 'b.db'}")
    assert out["problem"] == "tree-rl" and out["params"] == submission.problem.params_dict()
    # the in-process worker builds the problem for its rides: that is the worker's, not the
    # submission's, and it happens once per job
    assert len(builds) == 2
