"""Every auth rule: no token 401, bad token 401, revoked 401, another user's job 404, dev mode."""

from __future__ import annotations

from click.testing import CliRunner

from ridgerider.cli import main

from .conftest import API, BODY, auth, user_token


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_no_token_is_401_on_every_route_but_health(make_client) -> None:
    with make_client(workers=0) as c:
        openapi = c.get(f"{API}/openapi.json").json()
        for path, ops in openapi["paths"].items():
            for method in ops:
                url = path.replace("{job_id}", "1").replace("{node_id}", "1")
                r = c.request(method.upper(), url, json=BODY if method == "post" else None)
                if path.endswith(("/healthz", "/readyz", "/metrics")):
                    assert r.status_code in (200, 503), path
                else:
                    assert r.status_code == 401, (method, path, r.text)
                    assert r.headers["www-authenticate"] == "Bearer"


def test_a_bad_token_is_401(make_client) -> None:
    with make_client(workers=0) as c:
        r = c.get(f"{API}/jobs", headers=auth("rr_not-a-token"))
        assert r.status_code == 401


def test_another_users_job_is_404(make_client, db_url: str) -> None:
    alice, bob = user_token(db_url, "alice"), user_token(db_url, "bob")
    with make_client(workers=0) as c:
        r = c.post(f"{API}/jobs", json=BODY, headers=auth(alice))
        assert r.status_code == 201
        job_id = r.json()["id"]
        node_id = c.get(f"{API}/jobs/{job_id}/tree?pending=true", headers=auth(alice)).json()[
            "nodes"
        ][0]["id"]
        for method, path in [
            ("GET", f"/jobs/{job_id}"),
            ("GET", f"/jobs/{job_id}/tree"),
            ("GET", f"/jobs/{job_id}/nodes"),
            ("GET", f"/jobs/{job_id}/nodes/{node_id}"),
            ("GET", f"/jobs/{job_id}/nodes/{node_id}/params"),
            ("GET", f"/jobs/{job_id}/solutions"),
            ("GET", f"/jobs/{job_id}/events"),
            ("POST", f"/jobs/{job_id}/cancel"),
        ]:
            r = c.request(method, API + path, headers=auth(bob))
            assert r.status_code == 404, (path, r.text)
            assert r.json() == {"detail": f"job {job_id} not found"}
        extend = c.post(f"{API}/jobs/{job_id}/extend", json={"max_nodes": 50}, headers=auth(bob))
        assert extend.status_code == 404
        assert c.get(f"{API}/jobs", headers=auth(bob)).json()["items"] == []
        # alice's job is untouched by bob's attempts, and she sees it
        job = c.get(f"{API}/jobs/{job_id}", headers=auth(alice)).json()
        assert job["status"] == "running" and job["max_nodes"] != 50
        assert [j["id"] for j in c.get(f"{API}/jobs", headers=auth(alice)).json()["items"]] == [
            job_id
        ]
        # the same idempotency key of two users makes two jobs
        key = {"Idempotency-Key": "k"}
        a = c.post(f"{API}/jobs", json=BODY, headers=auth(alice) | key).json()["id"]
        b = c.post(f"{API}/jobs", json=BODY, headers=auth(bob) | key).json()["id"]
        assert a != b


def test_token_cli_create_and_revoke(make_client, db_url: str) -> None:
    code, out = cli("token", "create", "--user", "carol", "--database-url", db_url)
    assert code == 0, out
    secret = out.strip().splitlines()[-1]
    assert secret.startswith("rr_")
    with make_client(workers=0) as c:
        assert c.get(f"{API}/jobs", headers=auth(secret)).status_code == 200
        code, out = cli("token", "revoke", secret, "--database-url", db_url)
        assert code == 0, out
        assert c.get(f"{API}/jobs", headers=auth(secret)).status_code == 401
    assert cli("token", "revoke", secret, "--database-url", db_url)[0] == 2
    code, out = cli("token", "create", "--user", "carol", "--database-url", db_url)
    second = out.strip().splitlines()[-1]
    code, out = cli("token", "revoke", "--id", "2", "--database-url", db_url)
    assert code == 0, out
    with make_client(workers=0) as c:
        assert c.get(f"{API}/jobs", headers=auth(second)).status_code == 401
    assert cli("token", "revoke", "--database-url", db_url)[0] == 2
    assert cli("token", "create", "--user", "", "--database-url", db_url)[0] == 2


def test_dev_mode_needs_no_token(make_client) -> None:
    with make_client(dev=True, workers=0) as c:
        assert c.post(f"{API}/jobs", json=BODY).status_code == 201
        assert len(c.get(f"{API}/jobs").json()["items"]) == 1


def test_cli_jobs_belong_to_local_and_admins_see_every_job(make_client, db_url: str) -> None:
    """One ownership model: `run` stores jobs as `local`; admins and dev mode see all jobs."""
    code, out = cli("run", "toy2d", "--max-nodes", "2", "-q", "--database-url", db_url)
    assert code == 0, out
    alice, local = user_token(db_url, "alice"), user_token(db_url, "local")
    code, out = cli("token", "create", "--user", "root", "--admin", "--database-url", db_url)
    assert code == 0 and "(administrator)" in out, out
    admin = out.strip().splitlines()[-1]
    with make_client(workers=0) as c:
        r = c.post(f"{API}/jobs", json=BODY, headers=auth(alice))
        assert r.status_code == 201
        mine = r.json()["id"]

        def listed(token: str) -> list[int]:
            return [j["id"] for j in c.get(f"{API}/jobs", headers=auth(token)).json()["items"]]

        cli_job = listed(local)
        assert len(cli_job) == 1 and cli_job[0] != mine  # local sees its CLI job only
        assert listed(alice) == [mine]
        assert listed(admin) == [mine, cli_job[0]]
        assert c.get(f"{API}/jobs/{cli_job[0]}", headers=auth(alice)).status_code == 404
        got = c.get(f"{API}/jobs/{mine}", headers=auth(admin))
        assert got.status_code == 200 and got.json()["problem"] == BODY["problem"]
    with make_client(dev=True, workers=0) as c:
        assert [j["id"] for j in c.get(f"{API}/jobs").json()["items"]] == [mine, cli_job[0]]
