"""Integer path and query parameters are bounded by the columns they are compared with.

A value over a column's range is refused by PostgreSQL (a 500 once it reaches the query), so
every integer parameter of the API declares a maximum the column holds, and a value one over it
is a 422 naming the parameter. Checked on PostgreSQL, for every integer parameter the OpenAPI
document declares (a new one is covered without touching this file).
"""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import BigInteger, Integer
from sqlalchemy.dialects import postgresql

from ridgerider import schemas
from ridgerider.api import create_app
from ridgerider.config import Settings
from ridgerider.services.storage.models import CrossplayRun, Job, Node

from .conftest import API, BODY, PG, auth, user_token


def integer_parameters() -> list[tuple[str, str, str, int]]:
    """``(method, path, parameter, maximum)`` of every integer path or query parameter."""
    spec = create_app(Settings(database_url="sqlite://", workers=0)).openapi()
    found = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            for p in op.get("parameters", []):
                schema = p["schema"]
                options = schema.get("anyOf", [schema])
                ints = [s for s in options if s.get("type") == "integer"]
                if p["in"] in ("path", "query") and ints:
                    assert "maximum" in ints[0], f"{method} {path}: {p['name']} is unbounded"
                    found.append((method.upper(), path, p["name"], ints[0]["maximum"]))
    return found


PARAMETERS = integer_parameters()


def test_the_bounds_are_what_the_columns_hold() -> None:
    pg = postgresql.dialect()
    for column in (Job.id, Node.id, CrossplayRun.id):  # SQLite's INTEGER is 64-bit too
        assert isinstance(column.type.dialect_impl(pg), BigInteger)
    assert type(Node.rank.type) is Integer  # 32-bit on PostgreSQL
    assert schemas.ID_MAX == 2**63 - 1 and schemas.RANK_MAX == 2**31 - 1
    names = {(path, name) for _, path, name, _ in PARAMETERS}
    assert (f"{API}/jobs/{{job_id}}/nodes", "after") in names  # the rank cursor
    assert len(PARAMETERS) >= 20


@PG
def test_over_the_column_is_422_naming_the_parameter(pg_url: str) -> None:
    """At its maximum no parameter fails the query; one over, it is refused naming it."""
    wrong = []
    app = create_app(Settings(database_url=pg_url, dev=True, workers=0))
    with TestClient(app, raise_server_exceptions=False) as c:
        job = c.post(f"{API}/jobs", json=BODY).json()["id"]
        node = c.get(f"{API}/jobs/{job}/tree", params={"pending": True}).json()["nodes"][0]["id"]
        real = {"job_id": job, "node_id": node, "run_id": 1}
        for method, path, name, maximum in PARAMETERS:
            where = "path" if f"{{{name}}}" in path else "query"
            body = {"max_nodes": 5000} if path.endswith("/extend") else None
            for value in (maximum, maximum + 1):
                url = path.format(**real | ({name: value} if where == "path" else {}))
                query = {name: value} if where == "query" else {}
                r = c.request(method, url, params=query, json=body)
                refused = r.status_code == 422 and r.json()["detail"][0]["loc"] == [where, name]
                if r.status_code >= 500 or (value > maximum and not refused):
                    wrong.append((method, url, query, r.status_code, r.text[:200]))
    assert wrong == []


@PG
def test_schemathesis_finding_node_page_after_2_to_the_31(pg_url: str) -> None:
    """What schemathesis found in token mode: ``?after=2147483648`` on the nodes page was a 500
    (PostgreSQL: integer out of range); it is a 422 naming ``after``, one less an empty page."""
    token = user_token(pg_url, "fuzzer")
    app = create_app(Settings(database_url=pg_url, workers=0))
    with TestClient(app, raise_server_exceptions=False) as c:
        job = c.post(f"{API}/jobs", json=BODY, headers=auth(token)).json()["id"]
        url = f"{API}/jobs/{job}/nodes?after=2147483648&limit=500"
        r = c.get(url, headers=auth(token))
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "after"]
        last = c.get(url.replace("2147483648", "2147483647"), headers=auth(token))
        assert last.status_code == 200 and last.json() == {"items": [], "next_after": None}
