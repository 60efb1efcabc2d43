"""A ``method="ood"`` job through the service: accepted first, its branch point found later."""

from __future__ import annotations

import torch

from core.test_ood import FAST, TINY
from ridgerider.core import RRSettings, run_search
from ridgerider.problems import create

from .conftest import API, wait_done

PARAMS, SETTINGS = TINY, FAST  # the core tests' tiny ood search


def test_an_ood_job_gives_the_in_process_tree(make_client, db_url: str) -> None:
    problem = create("colored-digits", PARAMS)
    ref = run_search(problem, RRSettings(**{**problem.default_settings(), **SETTINGS}), seed=5)
    body = {"problem": "colored-digits", "params": PARAMS, "settings": SETTINGS, "seed": 5}
    with make_client(dev=True, workers=1) as c:
        r = c.post(f"{API}/jobs", json=body)
        assert r.status_code == 201, r.text
        job = wait_done(c, r.json()["id"])
        assert job["status"] == "succeeded" and job["nodes"] == len(ref.nodes) == 3
        nodes = c.get(f"{API}/jobs/{job['id']}/tree").json()["nodes"]
    assert [n["loss"] for n in nodes] == [n.loss for n in ref.nodes]
    solutions = [n for n in nodes if n["is_solution"]]
    assert len(solutions) == 2
    for n in solutions:
        assert {"train_accuracy", "validation_accuracy", "test_accuracy"} <= set(n["metrics"])
    assert torch.isfinite(ref.mis.theta).all()
