"""Every route through HTTP against SQLite and PostgreSQL (development mode: auth in test_auth)."""

from __future__ import annotations

import io
import json
import time

import numpy as np
import pytest
import torch

from ridgerider.problems import available
from ridgerider.services.storage.sql import SQLStorage

from .conftest import API, BODY, PARAMS, PG, reference, wait_done


def tree_shape(nodes: list[dict]) -> list[tuple]:
    return [(tuple(map(tuple, n["fingerprint"])), n["loss"], n["steps"]) for n in nodes]


def test_submit_run_and_read_the_tree(make_client, db_url: str) -> None:
    ref = reference(order="dfs", max_nodes=12)
    with make_client(dev=True, workers=2) as c:
        r = c.post(f"{API}/jobs", json=BODY | {"settings": {"order": "dfs", "max_nodes": 12}})
        assert r.status_code == 201, r.text
        job_id = r.json()["id"]
        assert r.headers["location"] == f"{API}/jobs/{job_id}"
        job = wait_done(c, job_id)
        assert job["status"] == "succeeded" and job["nodes"] == len(ref.nodes)
        assert job["order"] == "dfs" and {k: job["params"][k] for k in PARAMS} == PARAMS

        tree = c.get(f"{API}/jobs/{job_id}/tree").json()
        assert tree["complete"] and tree["status"] == "succeeded"
        want = [(n.fingerprint, n.loss, n.steps) for n in ref.nodes]
        assert tree_shape(tree["nodes"]) == want
        ids = {n["id"] for n in tree["nodes"]}
        assert all(n["parent_id"] in ids for n in tree["nodes"][1:])
        assert tree["nodes"][0]["parent_id"] is None and tree["nodes"][0]["depth"] == 0
        assert [n["is_solution"] for n in tree["nodes"]] == [n.is_solution for n in ref.nodes]

        # nodes: the same tree, a page at a time
        pages, after = [], None
        while True:
            q = {"limit": 5} | ({"after": after} if after is not None else {})
            page = c.get(f"{API}/jobs/{job_id}/nodes", params=q).json()
            pages += page["items"]
            after = page["next_after"]
            if after is None:
                break
        assert pages == tree["nodes"]

        sols = c.get(f"{API}/jobs/{job_id}/solutions").json()
        assert [(tuple(map(tuple, s["fingerprint"])), s["loss"]) for s in sols] == [
            (n.fingerprint, n.loss) for n in ref.solutions
        ]
        node = tree["nodes"][-1]
        assert c.get(f"{API}/jobs/{job_id}/nodes/{node['id']}").json() == node

        # parameters: .npy and safetensors both decode to the stored θ
        storage = SQLStorage(db_url, migrate=False)
        theta = storage.node_theta(node["id"])
        storage.close()
        assert theta is not None
        npy = c.get(f"{API}/jobs/{job_id}/nodes/{node['id']}/params")
        assert npy.headers["content-type"] == "application/x-npy"
        assert torch.equal(torch.from_numpy(np.load(io.BytesIO(npy.content))), theta)
        st = c.get(
            f"{API}/jobs/{job_id}/nodes/{node['id']}/params",
            headers={"Accept": "application/vnd.safetensors"},
        ).content
        n = int.from_bytes(st[:8], "little")
        header = json.loads(st[8 : 8 + n])
        assert header["theta"]["dtype"] == "F64" and header["theta"]["shape"] == [theta.numel()]
        assert torch.equal(torch.frombuffer(bytearray(st[8 + n :]), dtype=torch.float64), theta)


def test_idempotency_key_returns_the_first_job(make_client) -> None:
    with make_client(dev=True, workers=0) as c:
        key = {"Idempotency-Key": "retry-1"}
        first = c.post(f"{API}/jobs", json=BODY, headers=key)
        again = c.post(f"{API}/jobs", json=BODY, headers=key)
        assert (first.status_code, again.status_code) == (201, 200)
        assert again.json()["id"] == first.json()["id"]
        other = c.post(f"{API}/jobs", json=BODY | {"seed": 4}, headers=key)
        assert other.status_code == 409
        fresh = c.post(f"{API}/jobs", json=BODY, headers={"Idempotency-Key": "retry-2"})
        assert fresh.status_code == 201 and fresh.json()["id"] != first.json()["id"]
        assert len(c.get(f"{API}/jobs").json()["items"]) == 2


def test_list_filter_paginate_cancel_extend(make_client) -> None:
    with make_client(dev=True, workers=0) as c:  # no workers: jobs stay running
        ids = [c.post(f"{API}/jobs", json=BODY | {"seed": s}).json()["id"] for s in range(3)]
        page = c.get(f"{API}/jobs", params={"limit": 2}).json()
        assert [j["id"] for j in page["items"]] == ids[::-1][:2]
        rest = c.get(f"{API}/jobs", params={"limit": 2, "after": page["next_after"]}).json()
        assert [j["id"] for j in rest["items"]] == ids[:1] and rest["next_after"] is None

        cancelled = c.post(f"{API}/jobs/{ids[0]}/cancel").json()
        assert cancelled["status"] == "cancelled"
        assert c.post(f"{API}/jobs/{ids[0]}/cancel").status_code == 409
        listed = c.get(f"{API}/jobs", params={"status": "cancelled"}).json()["items"]
        assert [j["id"] for j in listed] == [ids[0]]
        running = c.get(f"{API}/jobs", params={"status": "running"}).json()["items"]
        assert sorted(j["id"] for j in running) == ids[1:]

        job = c.post(f"{API}/jobs/{ids[1]}/extend", json={"max_nodes": 5000}).json()
        assert job["max_nodes"] == 5000
        lower = c.post(f"{API}/jobs/{ids[1]}/extend", json={"max_nodes": 10})
        assert lower.status_code == 422
        assert lower.json()["detail"][0]["loc"] == ["body", "max_nodes"]
        assert c.post(f"{API}/jobs/{ids[1]}/extend", json={}).status_code == 422
        assert c.get(f"{API}/jobs/{ids[1]}").json()["max_nodes"] == 5000


def test_max_depth_none_is_no_limit(make_client) -> None:
    """``"none"`` is stored as the core's ``None`` (``null`` is the default: test_schemas)."""
    with make_client(dev=True, workers=0) as c:
        free = {"max_depth": "none", "max_nodes": 2}
        r = c.post(f"{API}/jobs", json=BODY | {"settings": free})
        assert r.status_code == 201, r.text
        assert r.json()["settings"]["max_depth"] is None


def test_extend_runs_a_budget_stopped_job_on(make_client) -> None:
    ref = reference(max_nodes=7)
    assert len(ref.nodes) == 7  # the budget, not the tree, ends the reference
    with make_client(dev=True, workers=1) as c:
        job_id = c.post(f"{API}/jobs", json=BODY | {"settings": {"max_nodes": 4}}).json()["id"]
        assert wait_done(c, job_id)["stopped_by"] == "max_nodes"
        c.post(f"{API}/jobs/{job_id}/extend", json={"max_nodes": 7})
        assert wait_done(c, job_id)["nodes"] == 7
        tree = c.get(f"{API}/jobs/{job_id}/tree").json()["nodes"]
        assert tree_shape(tree) == [(n.fingerprint, n.loss, n.steps) for n in ref.nodes]


def test_a_gpu_job_waits_for_gpu_workers(make_client) -> None:
    with make_client(dev=True, workers=1) as c:  # the service's own workers serve CPU jobs
        gpu = c.post(f"{API}/jobs", json=BODY | {"accelerator": "gpu"}).json()
        assert gpu["accelerator"] == "gpu"
        cpu = c.post(f"{API}/jobs", json=BODY).json()
        assert cpu["accelerator"] == "cpu"
        assert wait_done(c, cpu["id"])["status"] == "succeeded"  # not behind the older GPU job
        job = c.get(f"{API}/jobs/{gpu['id']}").json()
        assert job["status"] == "running" and job["nodes"] == 0


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"problem": "no-such-problem"}, ["body", "problem"]),
        ({"problem": "import os"}, ["body", "problem"]),
        (BODY | {"params": {"depth": 0}}, ["body", "params", "depth"]),
        (BODY | {"params": {"bogus": 1}}, ["body", "params", "bogus"]),
        (BODY | {"seed": -1}, ["body", "seed"]),
        (BODY | {"settings": {"n_ridges": 0}}, ["body", "settings", "n_ridges"]),
        (BODY | {"settings": {"max_nodes": 10**9}}, ["body", "settings", "max_nodes"]),
        (BODY | {"settings": {"order": "sideways"}}, ["body", "settings", "order"]),
        (BODY | {"settings": {"alpha": 0.1, "alpha_min": 1.0}}, ["body", "settings", "alpha_min"]),
        (BODY | {"settings": {"step_rule": "adaptive"}}, ["body", "settings", "step_rule"]),
        (BODY | {"settings": {"approx_steps": -1}}, ["body", "settings", "approx_steps"]),
        (BODY | {"settings": {"unknown": 1}}, ["body", "settings", "unknown"]),
        (BODY | {"settings": {"max_steps": False}}, ["body", "settings", "max_steps"]),
        (BODY | {"settings": {"max_depth": "unlimited"}}, ["body", "settings", "max_depth"]),
        (BODY | {"settings": {"max_depth": -1}}, ["body", "settings", "max_depth"]),
        (BODY | {"seed": "3"}, ["body", "seed"]),
        (BODY | {"wall_time_s": 0}, ["body", "wall_time_s"]),
        (BODY | {"device": "tpu"}, ["body", "device"]),
        (BODY | {"device": "cpu"}, ["body", "device"]),  # the worker's choice, not the job's
        (BODY | {"accelerator": "tpu"}, ["body", "accelerator"]),
        (BODY | {"extra": 1}, ["body", "extra"]),
        (
            {"problem": "digits-mlp", "settings": {"method": "exact"}},
            ["body", "settings", "method"],
        ),
        ({"problem": "toy2d", "settings": {"hvp_batch": 8}}, ["body", "settings", "hvp_batch"]),
        ({"problem": "toy2d", "settings": {"method": "ood"}}, ["body", "settings", "method"]),
        ({"problem": "gym-tabular", "params": {"env_id": "No-v0"}}, ["body", "params", "env_id"]),
    ],
)
def test_invalid_submissions_name_the_field_and_store_nothing(
    make_client, db_url: str, body: dict, loc: list
) -> None:
    with make_client(dev=True, workers=0) as c:
        r = c.post(f"{API}/jobs", json=body)
        assert r.status_code == 422, r.text
        assert [e["loc"] for e in r.json()["detail"]] == [loc]
        assert c.get(f"{API}/jobs").json()["items"] == []
    storage = SQLStorage(db_url, migrate=False)
    assert storage.list_jobs().items == []
    storage.close()


def test_body_size_limit(make_client) -> None:
    with make_client(dev=True, workers=0, max_body_bytes=2048) as c:
        big = BODY | {"params": {"x": "y" * 4096}}
        r = c.post(f"{API}/jobs", json=big)
        assert r.status_code == 413 and r.json()["detail"][0]["loc"] == ["body"]

        def chunks():
            yield json.dumps(big).encode()

        r = c.post(f"{API}/jobs", content=chunks(), headers={"Content-Type": "application/json"})
        assert r.status_code == 413
        assert c.get(f"{API}/jobs").json()["items"] == []


def test_405_lists_every_method_of_the_path(make_client) -> None:
    with make_client(dev=True, workers=0) as c:
        r = c.request("DELETE", f"{API}/jobs")
        assert r.status_code == 405 and r.headers["allow"] == "GET, POST"
        assert c.request("PUT", f"{API}/jobs/1/tree").headers["allow"] == "GET"


def test_missing_things_are_404(make_client) -> None:
    with make_client(dev=True, workers=0) as c:
        assert c.get(f"{API}/jobs/999").status_code == 404
        job_id = c.post(f"{API}/jobs", json=BODY).json()["id"]
        assert c.get(f"{API}/jobs/{job_id}/nodes/999999").status_code == 404
        root = c.get(f"{API}/jobs/{job_id}/tree", params={"pending": True}).json()["nodes"][0]
        assert root["status"] in ("waiting", "leased")  # not ridden: no parameters yet
        assert c.get(f"{API}/jobs/{job_id}/nodes/{root['id']}/params").status_code == 404


def sse(text: str) -> list[tuple[str, dict]]:
    """The (event, data) pairs of an event stream's body (comments and ids left out)."""
    out = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.split("\n") if not line.startswith(":"))
        if "event" in fields:
            out.append((fields["event"], json.loads(fields["data"])))
    return out


def test_events_stream_nodes_solutions_and_status(make_client) -> None:
    with make_client(dev=True, workers=1, events_poll_s=0.05) as c:
        job_id = c.post(f"{API}/jobs", json=BODY).json()["id"]
        with c.stream("GET", f"{API}/jobs/{job_id}/events") as s:
            events = sse(s.read().decode())
        final = c.get(f"{API}/jobs/{job_id}").json()
        assert events[-1] == ("status", {"status": "succeeded", "stopped_by": final["stopped_by"]})
        nodes = [d for k, d in events if k == "node"]
        assert nodes == c.get(f"{API}/jobs/{job_id}/tree").json()["nodes"]
        solutions = [d["key"] for k, d in events if k == "solution"]
        assert solutions == [s["key"] for s in c.get(f"{API}/jobs/{job_id}/solutions").json()]


@pytest.mark.parametrize("db_url", [pytest.param("postgres", marks=PG)], indirect=True)
def test_a_long_ride_shows_live_progress_in_rides_and_events(make_client) -> None:
    """A ride of thousands of steps reports its steps and loss before it joins the tree.

    On PostgreSQL (the SDK's test of the same runs on SQLite; every storage keeps ride progress
    in the frontier contract)."""
    long_ride = {"step_rule": "fixed", "alpha": 1e-4, "max_ride_steps": 6000, "max_nodes": 2}
    body = {"problem": "toy2d", "params": {}, "seed": 0, "settings": long_ride}
    with make_client(dev=True, workers=1, events_poll_s=0.05) as c:
        job_id = c.post(f"{API}/jobs", json=body).json()["id"]
        deadline = time.monotonic() + 60
        rides: list[dict] = []
        while not (rides and rides[0]["steps"] > 0):
            assert time.monotonic() < deadline, "no live progress"
            rides = c.get(f"{API}/jobs/{job_id}/rides").json()
            time.sleep(0.05)
        (ride,) = rides
        assert ride["depth"] == 1 and ride["attempts"] == 1 and ride["steps"] < 6000
        assert ride["loss"] is not None and ride["loss_start"] is not None
        job = c.get(f"{API}/jobs/{job_id}").json()
        assert (job["nodes"], job["steps"]) == (1, 0)  # the tree has only its root yet
        with c.stream("GET", f"{API}/jobs/{job_id}/events") as s:
            text = s.read().decode()
        riding = [d for k, d in sse(text) if k == "riding"]
        assert riding[0]["rides"] == 1 and riding[0]["steps"] > 0
        done = wait_done(c, job_id)
        assert done["nodes"] == 2 and done["steps"] > riding[0]["steps"]
        assert c.get(f"{API}/jobs/{job_id}/rides").json() == []


def test_problems_health_ready_metrics(make_client) -> None:
    with make_client(dev=True, workers=1) as c:
        problems = {p["name"]: p for p in c.get(f"{API}/problems").json()}
        assert "depth" in problems["tree-rl"]["params_schema"]["properties"]
        assert problems["toy2d"]["default_settings"]["n_ridges"] == 2
        assert c.get("/healthz").json() == {"status": "ok"}
        ready = c.get(f"{API}/readyz").json()
        checks = {"database": "ok", "frontier": "ok", "workers": "ok"}
        assert ready == {"ready": True, "checks": checks}
        c.post(f"{API}/jobs", json=BODY)
        text = c.get("/metrics").text  # parsed and checked in test_events
        assert "ridgerider_jobs_submitted_total 1.0" in text
        requests = 'ridgerider_http_requests_total{method="POST",route="/api/v1/jobs",status="201"}'
        assert f"{requests} 1.0" in text
        assert "ridgerider_workers 1.0" in text


@pytest.mark.slow
def test_worker_processes_build_the_same_tree(make_client) -> None:
    ref = reference(max_nodes=8)
    with make_client(dev=True, workers=2, worker_processes=True) as c:
        job_id = c.post(f"{API}/jobs", json=BODY | {"settings": {"max_nodes": 8}}).json()["id"]
        assert wait_done(c, job_id)["status"] == "succeeded"
        tree = c.get(f"{API}/jobs/{job_id}/tree").json()["nodes"]
        assert tree_shape(tree) == [(n.fingerprint, n.loss, n.steps) for n in ref.nodes]
        assert c.get(f"{API}/readyz").json()["checks"]["workers"] == "ok"
        pool = c.app.state.service.pool
        deadline = time.monotonic() + 30  # a worker counts its node after the commit that
        while pool.completed < 8 and time.monotonic() < deadline:  # ended the job
            time.sleep(0.02)
        assert pool.completed == 8
    assert pool.alive() == 0  # stopped with the app


def test_operation_ids_are_stable(make_client) -> None:
    """Clients generated from the schema depend on these names: changing one is a break."""
    with make_client(dev=True, workers=0) as c:
        spec = c.get(f"{API}/openapi.json").json()
    ids = {op["operationId"] for ops in spec["paths"].values() for op in ops.values()}
    assert ids == {
        "submit_job",
        "list_jobs",
        "get_job",
        "cancel_job",
        "extend_job",
        "delete_job",
        "export_nodes_csv",
        "list_nodes",
        "get_tree",
        "get_tree_compact",
        "list_solutions",
        "get_chosen",
        "get_node",
        "get_node_params",
        "get_node_trace",
        "list_rides",
        "job_events",
        "list_problems",
        "healthz",
        "readyz",
        "metrics",
        "submit_crossplay",
        "list_crossplay",
        "get_crossplay",
        "get_crossplay_result",
    }
    assert all(path.startswith(API) for path in spec["paths"])
    problem = spec["components"]["schemas"]["JobCreate"]["properties"]["problem"]
    assert problem["enum"] == sorted(available())
