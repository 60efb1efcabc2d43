"""``GET /jobs/{id}/events`` and ``/metrics`` through the real app (SQLite and PostgreSQL).

Resuming with ``Last-Event-ID`` (every node exactly once, the union equal to the tree), one
archive poller per job whatever the number of streams, a slow stream dropped with a
``reconnect`` event while others go on, heartbeats, and the Prometheus text parsed back.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from ridgerider.api.feeds import Cursor
from ridgerider.core.settings import RRSettings
from ridgerider.workers.pools import start_local_workers

from .conftest import API, BODY

DURABLE = ("node", "solution", "status")


def read_events(response: Any) -> Iterator[dict[str, Any]]:
    """Parse a ``text/event-stream`` body as it arrives: one dict per event or comment."""
    event: dict[str, Any] = {}
    for line in response.iter_lines():
        if not line:
            if event:
                if "data" in event:
                    event["json"] = json.loads(event["data"])
                yield event
            event = {}
        elif line.startswith(":"):
            yield {"comment": line[1:].strip()}
        else:
            field, _, value = line.partition(":")
            event[field] = value.removeprefix(" ")
    if event:
        yield event


@contextmanager
def stream(c: TestClient, job_id: int, last_id: str | None = None) -> Iterator[Any]:
    headers = {"Last-Event-ID": last_id} if last_id is not None else {}
    with c.stream("GET", f"{API}/jobs/{job_id}/events", headers=headers) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        yield r


def metrics(c: TestClient) -> dict[str, Any]:
    """``/metrics`` parsed: sample name → list of (labels, value)."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(c.get("/metrics").text):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def value(samples: dict[str, Any], name: str, **labels: str) -> float:
    return sum(
        v for lab, v in samples.get(name, []) if all(lab.get(k) == w for k, w in labels.items())
    )


@contextmanager
def riding(c: TestClient) -> Iterator[None]:
    """One worker thread rides the app's jobs meanwhile (the app itself has none).

    One branch a claim: the nodes trickle in, so a reading stream keeps up with a small queue
    (claims sized automatically complete a level at once, a burst larger than the queue).
    """
    frontier = c.app.state.service.archive.frontier
    pool = start_local_workers(frontier, 1, poll_s=0.01, batch=1)
    try:
        yield
    finally:
        pool.stop(30)


def submit(c: TestClient) -> int:
    r = c.post(f"{API}/jobs", json=BODY)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_reconnecting_with_last_event_id_sends_every_node_once(make_client) -> None:
    """A client that drops the stream every few events and resumes from its last id gets the
    job's tree exactly, each node once, every solution once, and a final status last."""
    with make_client(dev=True, workers=1, events_poll_s=0.02) as c:
        job_id = submit(c)
        got: list[dict] = []
        last, sessions, ids, running = None, 0, [], 0
        while not (
            got and got[-1]["event"] == "status" and got[-1]["json"]["status"] == "succeeded"
        ):
            sessions += 1
            if sessions >= 200:  # what each side saw, to tell where the stream lost its end
                log = c.app.state.service.archive.storage.list_events(job_id, limit=100).items
                seen = [(e.get("event"), e.get("id")) for e in got]
                raise AssertionError(f"the stream never ended: got {seen}, log {log}")
            with stream(c, job_id, last) as r:
                for n, ev in enumerate(e for e in read_events(r) if e.get("event") in DURABLE):
                    got.append(ev)
                    last = ev["id"]
                    ids.append(last)
                    if n == 1:  # drop it after 2 events (after a solution's, at times)
                        break
            running += c.get(f"{API}/jobs/{job_id}").json()["status"] == "running"
        tree = c.get(f"{API}/jobs/{job_id}/tree").json()
        nodes = [e["json"] for e in got if e["event"] == "node"]
        assert len(tree["nodes"]) >= 8 and sessions > 5 and running  # dropped mid-job too
        assert nodes == tree["nodes"]  # each once, in rank order, as the tree shows them
        sols = [e["json"] for e in got if e["event"] == "solution"]
        assert sols == c.get(f"{API}/jobs/{job_id}/solutions").json() and sols
        assert any(Cursor.parse(i).solution for i in ids[:-1])  # resumed after a solution too
        statuses = [e["json"]["status"] for e in got if e["event"] == "status"]
        assert statuses == ["queued", "running", "succeeded"]
        assert got[-1]["json"]["stopped_by"] == c.get(f"{API}/jobs/{job_id}").json()["stopped_by"]
        assert len(set(ids)) == len(ids)  # every id names one place

        # a stream resumed from the end has nothing more to say
        with stream(c, job_id, last) as r:
            assert [e for e in read_events(r) if e.get("event") in DURABLE] == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the fan-out is storage-blind
def test_a_hundred_streams_share_one_poller(make_client) -> None:
    with make_client(dev=True, workers=0, events_poll_s=0.05) as c:
        job_id = submit(c)
        service = c.app.state.service
        storage = service.archive.storage
        reads = {"n": 0}
        get_job = storage.get_job

        def counted(job: int) -> Any:
            reads["n"] += 1
            return get_job(job)

        storage.get_job = counted  # every poll reads the job first
        with ExitStack() as stack:
            streams = [stack.enter_context(stream(c, job_id)) for _ in range(100)]
            deadline = time.monotonic() + 10
            while service.feeds.subscribers < 100 or any(
                f.refs and f.head is None for f in service.feeds.feeds.values()
            ):
                assert time.monotonic() < deadline
                time.sleep(0.02)
            m = metrics(c)
            assert value(m, "ridgerider_sse_pollers") == 1
            assert value(m, "ridgerider_sse_subscribers") == 100
            assert len(service.feeds.feeds) == 1
            # while 100 streams wait: the archive is read by one poller, not 100
            before, t0 = reads["n"], time.monotonic()
            time.sleep(0.5)
            polls = reads["n"] - before
            assert polls <= (time.monotonic() - t0) / 0.05 + 2, polls

            readers = [[] for _ in streams]

            def drain(i: int) -> None:
                readers[i] = [
                    (e["event"], e["id"], e["data"])
                    for e in read_events(streams[i])
                    if e.get("event") in DURABLE
                ]

            with riding(c):
                threads = [threading.Thread(target=drain, args=(i,)) for i in range(100)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(60)
        tree = c.get(f"{API}/jobs/{job_id}/tree").json()["nodes"]
        assert all(r == readers[0] for r in readers)  # all 100 got the same events
        assert [json.loads(d) for k, _, d in readers[0] if k == "node"] == tree
        m = metrics(c)
        assert (
            value(m, "ridgerider_sse_pollers") == 0 and value(m, "ridgerider_sse_subscribers") == 0
        )


def test_a_slow_stream_is_dropped_and_told_to_reconnect(make_client) -> None:
    with make_client(dev=True, workers=0, events_poll_s=0.02, events_queue=8) as c:
        job_id = submit(c)
        with stream(c, job_id) as fast:
            events = read_events(fast)
            first = [next(events), next(events)]  # queued, running: now at the head
            assert [e["json"]["status"] for e in first] == ["queued", "running"]
            fast_got: list[dict] = []

            def drain() -> None:
                fast_got.extend(e for e in events if e.get("event") in DURABLE)

            with stream(c, job_id, first[-1]["id"]) as slow:  # subscribed, never read meanwhile
                deadline = time.monotonic() + 10
                while c.app.state.service.feeds.subscribers < 2:
                    assert time.monotonic() < deadline
                    time.sleep(0.01)
                reader = threading.Thread(target=drain)
                reader.start()
                with riding(c):
                    reader.join(60)
                slow_got = [e for e in read_events(slow) if "event" in e and e["event"] != "riding"]
        tree = c.get(f"{API}/jobs/{job_id}/tree").json()["nodes"]
        # the fast stream went on to the end
        assert [e["json"] for e in fast_got if e["event"] == "node"] == tree
        assert fast_got[-1]["json"]["status"] == "succeeded"
        # the slow one got what was in flight, then the documented final event, then its end
        *before, final = slow_got
        assert final["event"] == "reconnect" and "id" not in final
        resume = final["json"]["last_event_id"]
        assert resume == ([e["id"] for e in before if "id" in e] or [first[-1]["id"]])[-1]
        assert value(metrics(c), "ridgerider_sse_dropped_total") == 1
        # resuming where it was told to gives the rest, nothing twice
        with stream(c, job_id, resume) as r:
            rest = [e for e in read_events(r) if e.get("event") in DURABLE]
        nodes = [e["json"] for e in [*before, *rest] if e.get("event") == "node"]
        assert nodes == tree


def test_heartbeats_keep_an_idle_stream_alive(make_client) -> None:
    with make_client(dev=True, workers=0, events_heartbeat_s=0.05) as c:
        job_id = submit(c)
        with stream(c, job_id) as r:
            seen: list[dict] = []
            for e in read_events(r):
                seen.append(e)
                if sum("comment" in x for x in seen) == 3:
                    break
        assert [e["json"]["status"] for e in seen if e.get("event") == "status"] == [
            "queued",
            "running",
        ]
        assert all(x["comment"].startswith("ping") for x in seen if "comment" in x)


def test_metrics_parse_with_histograms_per_route_template(make_client) -> None:
    with make_client(dev=True, workers=0) as c, make_client(dev=True, workers=0) as other:
        ids = [submit(c), submit(c)]
        for job_id in [*ids, ids[0]]:
            assert c.get(f"{API}/jobs/{job_id}").status_code == 200
        assert c.get(f"{API}/jobs/999999").status_code == 404
        assert c.get("/nowhere").status_code == 404
        m = metrics(c)
        route = f"{API}/jobs/{{job_id}}"
        hist = "ridgerider_http_request_duration_seconds"
        # one series per route template (not per job id), counts as made
        assert value(m, f"{hist}_count", method="GET", route=route) == 4
        assert value(m, f"{hist}_bucket", method="GET", route=route, le="+Inf") == 4
        assert not any(f"/jobs/{ids[0]}" in lab["route"] for lab, _ in m[f"{hist}_count"])
        requests = "ridgerider_http_requests_total"
        assert value(m, requests, method="GET", route=route, status="200") == 3
        assert value(m, requests, method="GET", route=route, status="404") == 1
        assert value(m, requests, method="GET", route="unmatched") == 1
        assert value(m, requests, method="POST", route=f"{API}/jobs", status="201") == 2
        assert value(m, "ridgerider_jobs_submitted_total") == 2
        assert (
            value(m, "ridgerider_queue_branches", job_status="running")
            + value(m, "ridgerider_queue_branches", job_status="queued")
            == 2
        )  # each job's root waits: no workers
        assert value(m, "ridgerider_leases_held") == 0
        for name in ("ridgerider_workers", "ridgerider_claims_total", "ridgerider_sse_pollers"):
            assert name in m
        # another app in the same process has its own registry
        assert value(metrics(other), "ridgerider_jobs_submitted_total") == 0
        text = c.get("/metrics").text
        assert "sqlite" not in text and "postgresql" not in text and "Bearer" not in text


@contextmanager
def finishing_during(db_url: str, read: str) -> Iterator[tuple[Any, int]]:
    """A stored toy2d job (storage, id) whose whole search runs at the storage's first ``read``."""
    from ridgerider.services import jobs
    from ridgerider.services.archive import open_archive
    from ridgerider.workers.worker import Worker

    archive = open_archive(db_url)
    try:
        storage = archive.storage
        job = jobs.submit(storage, archive.frontier, "toy2d", {}, RRSettings())
        real = getattr(storage, read)
        fired = []

        def finish_then_read(*args: Any, **kwargs: Any) -> Any:
            if not fired:
                fired.append(True)
                Worker(archive.frontier, job_id=job.id).run()  # the whole search, right now
            return real(*args, **kwargs)

        setattr(storage, read, finish_then_read)
        yield storage, job.id
    finally:
        archive.close()


def kinds_of(items: list[Any]) -> list[tuple[str, str | None]]:
    return [(i.kind, json.loads(i.data).get("status")) for i in items]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("finish_during", ["list_events", "get_job"])
def test_a_poll_never_sends_the_final_status_before_a_node(db_url: str, finish_during: str) -> None:
    """The job finishes between a poll's reads (at its first log read, or its job read): the
    poll still has every node, and the final status after them."""
    from ridgerider.api.eventlog import poll

    with finishing_during(db_url, finish_during) as (storage, job_id):
        got = poll(storage, job_id, Cursor())
        assert got is not None and got.finished
        kinds = kinds_of(got.items)
        nodes = [k for k in kinds if k[0] == "node"]
        assert len(nodes) == storage.get_job(job_id).nodes == 5
        assert kinds[-1] == ("status", "succeeded")  # after every node


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("finish_during", ["list_events", "get_job"])
def test_a_feed_starting_as_the_job_ends_never_sends_the_final_status_before_a_node(
    db_url: str, finish_during: str
) -> None:
    """The job ends between the reads of a new feed's head: a stream caught up to that head
    gets every node, then the final status (the head once had the final status and not the
    last nodes; seen as a stream that never ended, under load on PostgreSQL)."""
    import asyncio

    from ridgerider.api.eventlog import catch_up, head_of

    async def caught_up(storage: Any, job_id: int, until: Cursor) -> list[Any]:
        return [item async for item in catch_up(storage, job_id, Cursor(), until)]

    with finishing_during(db_url, finish_during) as (storage, job_id):
        start = head_of(storage, job_id)
        assert start is not None
        head, over = start
        kinds = kinds_of(asyncio.run(caught_up(storage, job_id, head)))
        assert over and head.nodes == storage.get_job(job_id).nodes == 5
        assert [k[0] for k in kinds].count("node") == 5
        assert kinds[-1] == ("status", "succeeded")  # after every node
