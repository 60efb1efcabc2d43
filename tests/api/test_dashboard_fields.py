"""What the dashboard's charts read: the MIS spectrum and each ride's per-step losses."""

from __future__ import annotations

import pytest

from .conftest import API, BODY, reference, wait_done


def test_mis_spectrum_and_node_traces_match_the_reference_search(make_client) -> None:
    ref = reference(order="dfs", max_nodes=8)
    with make_client(dev=True, workers=1) as c:
        job_id = c.post(f"{API}/jobs", json=BODY | {"settings": {"order": "dfs", "max_nodes": 8}})
        job = wait_done(c, job_id.json()["id"])
        assert job["mis"]["spectrum"] == pytest.approx(ref.mis.spectrum, rel=1e-9, abs=1e-12)
        assert sum(v < 0 for v in job["mis"]["spectrum"]) >= job["mis"]["negative_eigenvalues"]

        nodes = c.get(f"{API}/jobs/{job['id']}/tree").json()["nodes"]
        assert len(nodes) == len(ref.nodes)
        for got, want in zip(nodes, ref.nodes, strict=True):
            trace = c.get(f"{API}/jobs/{job['id']}/nodes/{got['id']}/trace")
            assert trace.status_code == 200, trace.text
            t = trace.json()
            assert t["node_id"] == got["id"]
            assert t["losses"] == pytest.approx(want.losses, rel=1e-9, abs=1e-12)
            assert t["losses"][0] == pytest.approx(got["loss_start"], rel=1e-12)
            assert t["spectrum"] == pytest.approx(want.spectrum, rel=1e-9, abs=1e-12)


def test_trace_of_a_missing_node_is_404(make_client) -> None:
    with make_client(dev=True, workers=0) as c:
        job = c.post(f"{API}/jobs", json=BODY).json()
        assert c.get(f"{API}/jobs/{job['id']}/nodes/999999/trace").status_code == 404
        # The root is only a branch until a worker rides it: no trace yet.
        root = c.get(f"{API}/jobs/{job['id']}/tree", params={"pending": True}).json()["nodes"][0]
        assert c.get(f"{API}/jobs/{job['id']}/nodes/{root['id']}/trace").status_code == 404
        assert c.get(f"{API}/jobs/{job['id'] + 1}/nodes/{root['id']}/trace").status_code == 404
