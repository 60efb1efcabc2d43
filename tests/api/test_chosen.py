"""``GET /jobs/{id}/chosen`` and the reports' ``chosen``: the solution held-out data pick."""

from __future__ import annotations

import pytest

from api.conftest import API, BODY, wait_done
from ridgerider.services import jobs
from ridgerider.services.storage.sql import SQLStorage

pytest.importorskip("sklearn")

COLORED = {
    "problem": "colored-digits",
    "params": {"hidden": "4"},
    "seed": 0,
    "settings": {"method": "exact", "max_depth": 1, "n_ridges": 2, "max_nodes": 5},
}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the route is SQL-agnostic
def test_the_chosen_solution_has_the_highest_validation_accuracy(make_client, db_url: str) -> None:
    with make_client(dev=True, workers=1) as c:
        job_id = c.post(f"{API}/jobs", json=COLORED).json()["id"]
        assert wait_done(c, job_id)["status"] == "succeeded"
        sols = c.get(f"{API}/jobs/{job_id}/solutions").json()
        body = c.get(f"{API}/jobs/{job_id}/chosen").json()
        other = c.post(f"{API}/jobs", json=BODY).json()["id"]
        wait_done(c, other)
        plain = c.get(f"{API}/jobs/{other}/chosen").json()
    assert len(sols) >= 2 and body["by"] == "validation_accuracy"
    best = max(s["metrics"]["validation_accuracy"] for s in sols)
    first_best = next(s for s in sols if s["metrics"]["validation_accuracy"] == best)
    assert body["chosen"] == first_best
    assert {"train_accuracy", "validation_accuracy", "test_accuracy"} <= set(
        body["chosen"]["metrics"]
    )
    assert plain == {"by": "validation_accuracy", "chosen": None}  # tree-rl holds nothing out

    # the CLI's report (``ridgerider run/show --json``) names the same solution
    storage = SQLStorage(db_url, migrate=False)
    try:
        report = jobs.job_result(storage, job_id)
        assert "chosen" not in jobs.job_result(storage, other)
    finally:
        storage.close()
    assert report["chosen"]["fingerprint"] == first_best["fingerprint"]
    assert report["chosen"]["metrics"]["test_accuracy"] == first_best["metrics"]["test_accuracy"]
    assert list(report["chosen"]["metrics"])[:3] == [
        "train_accuracy",
        "validation_accuracy",
        "test_accuracy",
    ]


def test_chosen_of_a_missing_job_is_404(make_client) -> None:
    with make_client(dev=True, workers=0) as c:
        assert c.get(f"{API}/jobs/999/chosen").status_code == 404
