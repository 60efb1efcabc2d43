"""One user's job that overflows must not stop another user's: non-finite numbers end a branch.

``toy2d`` with ``polish_lr=1e6`` (inside what the API accepts) sends every leaf's polish to
infinity. Before, PostgreSQL refused the NaN in the stored JSON and SQLite a NULL solution
loss, and every worker died within seconds. Now the leaves end ``diverged``, the job finishes,
and another user's job beside it gets its undisturbed tree.
"""

from __future__ import annotations

import math

from api.conftest import API, BODY, auth, reference, user_token, wait_done


def test_an_overflowing_job_beside_another_users_job(make_client, db_url: str) -> None:
    alice, bob = user_token(db_url, "alice"), user_token(db_url, "bob")
    with make_client(dev=False, workers=2) as client:
        bad = {"problem": "toy2d", "params": {}, "settings": {"polish_lr": 1e6}}
        r = client.post(f"{API}/jobs", json=bad, headers=auth(alice))
        assert r.status_code == 201, r.text
        bad_id = r.json()["id"]
        r = client.post(f"{API}/jobs", json=BODY, headers=auth(bob))
        assert r.status_code == 201, r.text
        good_id = r.json()["id"]

        good = wait_done(client, good_id, auth(bob))
        done = wait_done(client, bad_id, auth(alice))
        assert (good["status"], done["status"]) == ("succeeded", "succeeded")

        tree = client.get(f"{API}/jobs/{good_id}/tree", headers=auth(bob)).json()
        ref = reference()
        assert [n["key"] for n in tree["nodes"]] == [n.key for n in ref.nodes]
        assert [n["loss"] for n in tree["nodes"]] == [n.loss for n in ref.nodes]

        for path in ("tree", "nodes", "solutions"):
            r = client.get(f"{API}/jobs/{bad_id}/{path}", headers=auth(alice))
            assert r.status_code == 200, (path, r.text)
        nodes = client.get(f"{API}/jobs/{bad_id}/tree", headers=auth(alice)).json()["nodes"]
        leaves = [n for n in nodes if n["is_leaf"]]
        assert leaves and all(n["leaf_reason"] == "diverged" for n in leaves)
        assert not any(n["is_solution"] for n in nodes)
        assert all(n["loss"] is None or math.isfinite(n["loss"]) for n in nodes)
