"""Names, tags and filters on /jobs; DELETE /jobs/{id}; the nodes as CSV."""

from __future__ import annotations

import csv
import io

from ridgerider.services.storage.sql import SQLStorage

from .conftest import API, BODY, auth, user_token, wait_done

SMALL = BODY | {"settings": {"order": "bfs", "max_nodes": 6}}


def test_names_and_tags_filter_the_listing(make_client) -> None:
    with make_client(dev=True, workers=0) as c:
        a = c.post(f"{API}/jobs", json=BODY | {"name": "Sweep A", "tags": ["x", "y", "x"]})
        assert a.status_code == 201, a.text
        assert (a.json()["name"], a.json()["tags"]) == ("Sweep A", ["x", "y"])
        b = c.post(f"{API}/jobs", json=BODY | {"name": "other", "tags": ["y"]}).json()["id"]
        plain = c.post(f"{API}/jobs", json=BODY | {"seed": 9}).json()
        assert (plain["name"], plain["tags"]) == (None, [])

        def ids(**q: str) -> list[int]:
            r = c.get(f"{API}/jobs", params=q)
            assert r.status_code == 200, r.text
            return [j["id"] for j in r.json()["items"]]

        assert ids(name="swee") == [a.json()["id"]]
        assert ids(tag="y") == [b, a.json()["id"]] and ids(tag="x", name="other") == []
        assert ids(problem="lever-game") == [] and len(ids(problem=BODY["problem"])) == 3
        assert ids(status="running", tag="x") == [a.json()["id"]]
        bad = c.get(f"{API}/jobs", params={"tag": "a b"})
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "tag"]


BAD = [
    ({"name": "n" * 129}, ["body", "name"]),
    ({"name": ""}, ["body", "name"]),
    ({"name": "two\nlines"}, ["body", "name"]),
    ({"tags": [f"t{i}" for i in range(17)]}, ["body", "tags"]),
    ({"tags": ["t" * 33]}, ["body", "tags", 0]),
    ({"tags": ["has space"]}, ["body", "tags", 0]),
]


def test_bad_names_and_tags_are_422_and_store_nothing(make_client, db_url: str) -> None:
    with make_client(dev=True, workers=0) as c:
        for extra, loc in BAD:
            r = c.post(f"{API}/jobs", json=BODY | extra)
            assert r.status_code == 422, extra
            assert [e["loc"] for e in r.json()["detail"]] == [loc]
    storage = SQLStorage(db_url, migrate=False)
    assert storage.list_jobs().items == []
    storage.close()


def test_csv_counts_and_delete(make_client, db_url: str) -> None:
    with make_client(dev=True, workers=1) as c:
        job_id = c.post(f"{API}/jobs", json=SMALL).json()["id"]
        job = wait_done(c, job_id)
        tree = c.get(f"{API}/jobs/{job_id}/tree").json()["nodes"]
        n_solutions = sum(n["is_solution"] for n in tree)
        assert job["solutions"] == n_solutions
        assert c.get(f"{API}/jobs").json()["items"][0]["solutions"] == n_solutions

        r = c.get(f"{API}/jobs/{job_id}/nodes.csv")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert [int(row["id"]) for row in rows] == [n["id"] for n in tree]
        assert [row["is_solution"] == "True" for row in rows] == [n["is_solution"] for n in tree]
        assert [float(row["loss"]) for row in rows] == [n["loss"] for n in tree]
        metrics = sorted(tree[-1]["metrics"])
        assert metrics and all(f"metric.{m}" in rows[0] for m in metrics)
        assert rows[0]["parent_id"] == "" and rows[1]["parent_id"] == str(tree[0]["id"])

        running = c.post(f"{API}/jobs", json=BODY).json()["id"]  # a worker is riding it
        for gone in (job_id, running):
            assert c.delete(f"{API}/jobs/{gone}").status_code == 204
            assert c.get(f"{API}/jobs/{gone}").status_code == 404
            assert c.get(f"{API}/jobs/{gone}/nodes.csv").status_code == 404
            assert c.delete(f"{API}/jobs/{gone}").status_code == 404
        assert c.get(f"{API}/jobs").json()["items"] == []
    storage = SQLStorage(db_url, migrate=False)
    assert storage.list_nodes(running, tree=False).items == []
    assert storage.list_events(running).items == []
    storage.close()


def test_another_users_job_cannot_be_deleted_or_exported(make_client, db_url: str) -> None:
    alice, bob = user_token(db_url, "alice"), user_token(db_url, "bob")
    with make_client(workers=0) as c:
        job_id = c.post(f"{API}/jobs", json=BODY, headers=auth(alice)).json()["id"]
        for method, path in [("DELETE", f"/jobs/{job_id}"), ("GET", f"/jobs/{job_id}/nodes.csv")]:
            r = c.request(method, API + path, headers=auth(bob))
            assert r.status_code == 404 and r.json() == {"detail": f"job {job_id} not found"}
        assert c.get(f"{API}/jobs/{job_id}", headers=auth(alice)).json()["status"] == "running"
        assert c.delete(f"{API}/jobs/{job_id}", headers=auth(alice)).status_code == 204
