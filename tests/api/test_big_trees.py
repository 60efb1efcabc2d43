"""Big trees: the compact form, cursor pages, gzip and ETag/304 on data that cannot change."""

from __future__ import annotations

import gzip
import importlib.util
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update

from ridgerider.api import create_app
from ridgerider.config import Settings
from ridgerider.services.storage.sql import SQLStorage
from ridgerider.services.storage.tables import NODES

from .conftest import API, BODY, auth, user_token, wait_done

COLUMNS = [
    "id",
    "parent_id",
    "key",
    "depth",
    "rank",
    "status",
    "eigenvalue",
    "loss",
    "steps",
    "end_reason",
    "is_leaf",
    "is_solution",
    "metrics",
]
SMALL = BODY | {"settings": {"order": "dfs", "max_nodes": 12}}


def build_job(db_url: str, n: int) -> int:
    """A finished synthetic ``n``-node job (benchmarks/dashboard_render.py writes its rows)."""
    path = Path(__file__).parents[2] / "benchmarks" / "dashboard_render.py"
    spec = importlib.util.spec_from_file_location("dashboard_render", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return int(module.build_job(db_url, n, seed=1))


def compact_pages(c: Any, job_id: int, limit: int, **kw: Any) -> list[dict[str, Any]]:
    pages, after = [], None
    while True:
        params = {"limit": limit} | ({} if after is None else {"after": after})
        r = c.get(f"{API}/jobs/{job_id}/tree/compact", params=params, **kw)
        assert r.status_code == 200, r.text
        pages.append(r.json())
        after = pages[-1]["next_after"]
        if after is None:
            return pages


def rows(page: dict[str, Any]) -> list[dict[str, Any]]:
    assert all(len(page[c]) == page["count"] for c in COLUMNS)
    return [{c: page[c][i] for c in COLUMNS} for i in range(page["count"])]


def test_compact_equals_the_tree_field_by_field(make_client) -> None:
    with make_client(dev=True, workers=1) as c:
        job = wait_done(c, c.post(f"{API}/jobs", json=SMALL).json()["id"])
        tree = c.get(f"{API}/jobs/{job['id']}/tree").json()
        pages = compact_pages(c, job["id"], limit=3)
        assert job["nodes"] > 3 and len(pages) == -(-job["nodes"] // 3)
        got = [r for p in pages for r in rows(p)]
        assert got == [{k: n[k] for k in COLUMNS} for n in tree["nodes"]]
        assert len(got) == job["nodes"]
        assert {(p["job_id"], p["job_status"], p["complete"]) for p in pages} == {
            (job["id"], job["status"], True)
        }
        # /nodes (the same nodes, full records) still pages the same way
        items = c.get(f"{API}/jobs/{job['id']}/nodes", params={"limit": 1000}).json()["items"]
        assert items == tree["nodes"]


@contextmanager
def sqlite_client(url: str) -> Iterator[TestClient]:
    """The app on a SQLite archive written beforehand (synthetic rows: no search to run)."""
    with TestClient(create_app(Settings(database_url=url, dev=True, workers=0))) as client:
        yield client


def test_non_finite_values_are_null(sqlite_url: str) -> None:
    job_id = build_job(sqlite_url, 30)
    storage = SQLStorage(sqlite_url)
    with storage.db.session() as s:
        s.connection().execute(
            update(NODES)
            .where(NODES.c.job_id == job_id, NODES.c.rank == 3)
            .values(loss=float("inf"), eigenvalue=float("-inf"), metrics={"r": float("nan")})
        )
    storage.close()
    with sqlite_client(sqlite_url) as c:
        r = c.get(f"{API}/jobs/{job_id}/tree/compact")
        assert "NaN" not in r.text and "Infinity" not in r.text
        page = r.json()
        assert (page["loss"][3], page["eigenvalue"][3], page["metrics"][3]) == (
            None,
            None,
            {"r": None},
        )
        tree = c.get(f"{API}/jobs/{job_id}/tree").json()["nodes"]
        assert rows(page) == [{k: n[k] for k in COLUMNS} for n in tree]


def test_cursor_pages_cover_every_node_once_and_gzip_decodes_the_same(sqlite_url: str) -> None:
    job_id = build_job(sqlite_url, 2500)
    with sqlite_client(sqlite_url) as c:
        pages = compact_pages(c, job_id, limit=1000, headers={"Accept-Encoding": "gzip"})
        ids = [i for p in pages for i in p["id"]]
        ranks = [i for p in pages for i in p["rank"]]
        assert [p["count"] for p in pages] == [1000, 1000, 500]
        assert len(ids) == len(set(ids)) == 2500 and ranks == list(range(2500))
        tree = c.get(f"{API}/jobs/{job_id}/tree").json()["nodes"]
        assert ids == [n["id"] for n in tree]
        seen, after = [], None
        while True:
            q = {"limit": 1000} | ({} if after is None else {"after": after})
            page = c.get(f"{API}/jobs/{job_id}/nodes", params=q).json()
            seen += [n["id"] for n in page["items"]]
            if (after := page["next_after"]) is None:
                break
        assert seen == ids

        url = f"{API}/jobs/{job_id}/tree/compact"
        zipped = c.get(url, headers={"Accept-Encoding": "gzip"})
        plain = c.get(url, headers={"Accept-Encoding": "identity"})
        assert zipped.headers["content-encoding"] == "gzip"
        assert "content-encoding" not in plain.headers
        assert zipped.num_bytes_downloaded * 3 < plain.num_bytes_downloaded
        assert zipped.json() == plain.json()
        with c.stream("GET", url, headers={"Accept-Encoding": "gzip"}) as r:
            raw = b"".join(r.iter_raw())  # the bytes on the wire
        assert json.loads(gzip.decompress(raw)) == plain.json()
        for path in ("/tree", "/nodes", "/nodes.csv"):
            r = c.get(f"{API}/jobs/{job_id}{path}", headers={"Accept-Encoding": "gzip"})
            assert r.headers["content-encoding"] == "gzip", path
        small = c.get(f"{API}/jobs/{job_id}", headers={"Accept-Encoding": "gzip"})
        assert "content-encoding" not in small.headers  # only the tree listings


def test_etag_and_304_on_a_done_node_and_a_finished_tree(make_client) -> None:
    with make_client(dev=True, workers=1) as c:
        job = wait_done(c, c.post(f"{API}/jobs", json=SMALL).json()["id"])
        base = f"{API}/jobs/{job['id']}"
        node = c.get(f"{base}/tree").json()["nodes"][-1]
        for path in (
            f"/nodes/{node['id']}",
            f"/nodes/{node['id']}/trace",
            f"/nodes/{node['id']}/params",
            f"/nodes/{node['id']}/params?format=safetensors",
            "/tree",
            "/tree/compact",
            "/tree/compact?limit=5",
            "/nodes?limit=5",
        ):
            first = c.get(base + path)
            tag = first.headers["etag"]
            assert tag.startswith('W/"') and first.headers["cache-control"] == "private, no-cache"
            again = c.get(base + path, headers={"If-None-Match": tag})
            assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", tag)
            other = c.get(base + path, headers={"If-None-Match": 'W/"something-else"'})
            assert other.status_code == 200 and other.content == first.content
        tags = {c.get(base + p).headers["etag"] for p in ("/tree/compact", "/tree/compact?limit=5")}
        assert len(tags) == 2  # a page's tag names its range


def test_no_etag_while_the_tree_grows(make_client) -> None:
    with make_client(dev=True, workers=0) as c:  # no worker: the job stays queued
        job = c.post(f"{API}/jobs", json=BODY).json()
        base = f"{API}/jobs/{job['id']}"
        root = c.get(f"{base}/tree", params={"pending": True}).json()["nodes"][0]
        for path in ("/tree", "/tree/compact", "/nodes", f"/nodes/{root['id']}"):
            r = c.get(base + path, headers={"If-None-Match": "*"})
            assert r.status_code == 200 and "etag" not in r.headers, path
        assert c.get(f"{base}/tree/compact").json()["count"] == 0


def test_another_users_compact_tree_is_404(make_client, db_url: str) -> None:
    alice, bob = user_token(db_url, "alice"), user_token(db_url, "bob")
    with make_client(workers=0) as c:
        job_id = c.post(f"{API}/jobs", json=BODY, headers=auth(alice)).json()["id"]
        url = f"{API}/jobs/{job_id}/tree/compact"
        assert c.get(url, headers=auth(alice)).status_code == 200
        assert c.get(url).status_code == 401
        r = c.get(url, headers=auth(bob) | {"If-None-Match": "*"})
        assert (r.status_code, r.json()) == (404, {"detail": f"job {job_id} not found"})


def test_compact_page_size_is_bounded(make_client) -> None:
    with make_client(dev=True, workers=0) as c:
        job_id = c.post(f"{API}/jobs", json=BODY).json()["id"]
        for limit in (0, 10_001):
            r = c.get(f"{API}/jobs/{job_id}/tree/compact", params={"limit": limit})
            assert r.status_code == 422
