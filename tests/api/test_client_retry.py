"""The SDK's retries (backoff with jitter, ``Retry-After``), ``from_env`` and plain progress.

The server is an ``httpx.MockTransport`` (a real transport answering real requests); the SDK's
sleep is injected, so no test waits.
"""

from __future__ import annotations

import asyncio
import io
import random
import sys
from email.utils import formatdate

import httpx
import pytest

from ridgerider.client import AsyncClient, Backoff, Client, ServerError
from ridgerider.client._retry import DEFAULT_URL, parse_retry_after
from ridgerider.client.progress import JobProgress
from ridgerider.schemas import JobPublic

NOW = 1_800_000_000.0


def _job(status: str = "succeeded", nodes: int = 4) -> dict:
    return {
        "id": 1,
        "problem": "toy2d",
        "params": {},
        "seed": 0,
        "status": status,
        "stopped_by": "exhausted" if status == "succeeded" else None,
        "error": None,
        "method": "exact",
        "order": "bfs",
        "settings": {},
        "mis": {"loss": 1.0, "grad_norm": 0.0, "negative_eigenvalues": 2},
        "nodes": nodes,
        "steps": 10 * nodes,
        "max_nodes": 8,
        "max_steps": 1000,
        "wall_time_s": None,
        "elapsed_s": 0.5,
        "created_at": "2026-01-01T00:00:00Z",
        "started_at": None,
        "finished_at": None,
    }


class Server:
    """Answers each request with the next of ``answers`` (the last one repeats)."""

    def __init__(self, *answers: httpx.Response) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answers[min(len(self.requests), len(self.answers)) - 1]


def _client(server: Server, sleeps: list[float], **backoff: object) -> Client:
    http = httpx.Client(transport=httpx.MockTransport(server), base_url="http://t")
    policy = Backoff(clock=lambda: NOW, rng=random.Random(0), **backoff)  # type: ignore[arg-type]
    return Client(http=http, backoff=policy, sleep=sleeps.append)


@pytest.mark.parametrize(
    ("retry_after", "waited"),
    [("2", 2.0), (formatdate(NOW + 30, usegmt=True), 30.0), ("3600", 60.0)],
)
def test_a_429_is_retried_after_retry_after(retry_after: str, waited: float) -> None:
    """Seconds or an HTTP date, capped at ``max_retry_after_s`` (60 s)."""
    server = Server(
        httpx.Response(429, headers={"Retry-After": retry_after}, json={"detail": "slow down"}),
        httpx.Response(200, json=_job()),
    )
    sleeps: list[float] = []
    assert _client(server, sleeps).get(1).nodes == 4
    assert len(server.requests) == 2
    assert sleeps == [pytest.approx(waited)]


def test_a_503_backs_off_with_jitter_then_gives_up() -> None:
    server = Server(httpx.Response(503, json={"detail": "restarting"}))
    sleeps: list[float] = []
    with pytest.raises(ServerError):
        _client(server, sleeps, retries=3).get(1)
    assert len(server.requests) == 4  # the first attempt and three retries
    assert len(sleeps) == 3 and len(set(sleeps)) == 3  # jittered: no two waits alike
    for attempt, slept in enumerate(sleeps, start=1):
        assert 0.0 <= slept <= min(5.0, 0.25 * 2**attempt)


def test_a_429_without_retry_after_is_a_quota_raised_at_once() -> None:
    server = Server(httpx.Response(429, json={"detail": "4 runs queued"}), httpx.Response(200))
    sleeps: list[float] = []
    with pytest.raises(Exception, match="4 runs queued"):
        _client(server, sleeps).get(1)
    assert len(server.requests) == 1 and sleeps == []


def test_a_503_on_a_call_unsafe_to_repeat_is_not_retried() -> None:
    server = Server(httpx.Response(503, json={"detail": "down"}), httpx.Response(200))
    sleeps: list[float] = []
    with pytest.raises(ServerError):
        _client(server, sleeps).cancel(1)  # a POST without an idempotency key
    assert len(server.requests) == 1 and sleeps == []


def test_the_async_client_honours_retry_after() -> None:
    server = Server(
        httpx.Response(503, headers={"Retry-After": "7"}), httpx.Response(200, json=_job())
    )
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async def go() -> JobPublic:
        http = httpx.AsyncClient(transport=httpx.MockTransport(server), base_url="http://t")
        async with AsyncClient(http=http, sleep=sleep) as rr:
            return await rr.get(1)

    assert asyncio.run(go()).id == 1
    assert len(server.requests) == 2 and sleeps == [7.0]


def test_retry_after_parsing() -> None:
    assert parse_retry_after(None, NOW) is None
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after(" 12 ", NOW) == 12.0
    assert parse_retry_after(formatdate(NOW - 100, usegmt=True), NOW) == 0.0


@pytest.mark.parametrize("cls", [Client, AsyncClient])
def test_from_env(cls: type, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RIDGERIDER_URL", raising=False)
    monkeypatch.delenv("RIDGERIDER_TOKEN", raising=False)
    plain = cls.from_env()
    assert str(plain.http.base_url).rstrip("/") == DEFAULT_URL
    assert "Authorization" not in plain.http.headers
    monkeypatch.setenv("RIDGERIDER_URL", "http://rr.example:9000")
    monkeypatch.setenv("RIDGERIDER_TOKEN", "rr_secret")
    configured = cls.from_env(retries=5)
    assert str(configured.http.base_url).rstrip("/") == "http://rr.example:9000"
    assert configured.http.headers["Authorization"] == "Bearer rr_secret"
    assert configured.retries == 5


def test_wait_progress_prints_plain_lines_without_rich(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where ``import rich`` fails (the SDK's torch-free install), progress is plain text."""
    for name in ("rich", "rich.console", "rich.progress"):
        monkeypatch.setitem(sys.modules, name, None)  # importing it now raises ImportError
    stream = io.StringIO()
    with JobProgress(1, True, stream=stream) as bar:
        for job in (_job("running", 2), _job("running", 2), _job("succeeded", 4)):
            bar.update(JobPublic.model_validate(job), riding=5)
    assert stream.getvalue().splitlines() == [
        "job 1: running, 2/8 nodes, 25 steps",
        "job 1: succeeded, 4/8 nodes, 45 steps",
    ]


def test_client_wait_with_progress_works_without_rich(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("rich", "rich.console", "rich.progress"):
        monkeypatch.setitem(sys.modules, name, None)
    server = Server(
        httpx.Response(200, json=_job("running", 1)),
        httpx.Response(200, json=[]),  # GET /rides
        httpx.Response(200, json=_job("succeeded", 4)),
    )
    rr = _client(server, [])
    assert rr.wait(1, poll_s=0, progress=True).status == "succeeded"
    assert "job 1: succeeded, 4/8 nodes" in capsys.readouterr().err
