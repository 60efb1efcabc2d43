"""``POST /jobs`` stores the job and returns; finding the MIS is the job's first task."""

from __future__ import annotations

from ridgerider.services.archive import open_archive
from ridgerider.workers.worker import Worker

from .conftest import API, BODY, reference


def test_a_job_is_accepted_before_its_mis_and_a_worker_finds_it(make_client, db_url: str) -> None:
    ref = reference()
    with make_client(dev=True, workers=0) as c:  # no worker: nothing can find the MIS yet
        r = c.post(f"{API}/jobs", json=BODY)
        assert r.status_code == 201, r.text
        job = r.json()
        assert (job["status"], job["phase"], job["mis"]) == ("running", "mis", None)
        pending = c.get(f"{API}/jobs/{job['id']}/tree?pending=true").json()["nodes"]
        assert [n["status"] for n in pending] == ["waiting"]  # the root, not ridden
        archive = open_archive(db_url)
        try:  # one worker claims the root: the MIS first, then the search
            Worker(archive.frontier, job_id=job["id"]).run()
        finally:
            archive.close()
        done = c.get(f"{API}/jobs/{job['id']}").json()
        assert (done["status"], done["phase"]) == ("succeeded", None)
        assert done["mis"]["negative_eigenvalues"] == ref.mis.negative_eigenvalues
        assert done["mis"]["loss"] == ref.mis.loss
        assert done["mis"]["spectrum"] == ref.mis.spectrum
        tree = c.get(f"{API}/jobs/{job['id']}/tree").json()["nodes"]
        assert [(n["key"], n["loss"]) for n in tree] == [(n.key, n.loss) for n in ref.nodes]
        root = c.get(f"{API}/jobs/{job['id']}/nodes/{tree[0]['id']}").json()
        assert root["loss"] == ref.nodes[0].loss  # the root node sits at the MIS
