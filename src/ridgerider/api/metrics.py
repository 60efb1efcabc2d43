"""Prometheus metrics of one app (``GET /metrics``), with ``prometheus_client``.

Each app has its own :class:`~prometheus_client.CollectorRegistry` (never the process-global
one), so several apps in one process — tests, an embedded service — do not collide.

Recorded as they happen: requests by method, route template (``/api/v1/jobs/{job_id}``, not
the raw path; ``unmatched`` for 404s outside any route) and status, their latency histogram by
method and route template, jobs submitted, branches claimed by this process's worker threads.
Read when scraped (cheap: counters in memory, plus two counts over the archive's partial
indexes of waiting and leased branches): workers, nodes completed, the queue (branches
waiting, by their job's status), leases held (rides in flight, all workers), and the event
streams (subscribers, pollers, polls, slow streams dropped). Nothing secret is exposed: no
URL, token or user name.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from ridgerider.api.state import Service

__all__ = ["BUCKETS", "Metrics", "MetricsMiddleware", "route_template"]

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds (seconds) of the request-duration histogram."""


class Metrics:
    """An app's registry of metrics.

    Requests are recorded as they happen; the service's state is read on scrape, once
    :meth:`bind` gave it the running service.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "ridgerider_http_requests",
            "HTTP requests by method, route template and status.",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "ridgerider_http_request_duration_seconds",
            "Time to answer a request (a stream: until it ends), by method and route template.",
            ("method", "route"),
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.submitted = Counter(
            "ridgerider_jobs_submitted", "Jobs stored by this process.", registry=self.registry
        )
        self.claims = Counter(
            "ridgerider_claims",
            "Branches claimed (leased) by this process's worker threads.",
            registry=self.registry,
        )
        self.service: Service | None = None
        self.registry.register(_ServiceCollector(self))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Record one request."""
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def job_submitted(self) -> None:
        """Count a newly stored job."""
        self.submitted.inc()

    def bind(self, service: Service | None) -> None:
        """Read this running service's state on scrape (``None``: stopped)."""
        self.service = service

    def count_claims(self, claim: Callable[..., list[Any]]) -> Callable[..., list[Any]]:
        """``claim`` (a frontier's) counting the branches it leases."""

        def counted(*args: Any, **kw: Any) -> list[Any]:
            leases = claim(*args, **kw)
            if leases:
                self.claims.inc(len(leases))
            return leases

        return counted


class _ServiceCollector(Collector):
    """Gauges and counters read from the running service at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self._lock = threading.Lock()

    def describe(self) -> Iterable[Metric]:
        return []  # dynamic: nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        service = self.metrics.service
        if service is None:
            return
        pool = service.pool
        yield _gauge(
            "ridgerider_workers", "Workers started by this process.", pool.size if pool else 0
        )
        yield _gauge(
            "ridgerider_workers_alive", "Workers running now.", pool.alive() if pool else 0
        )
        yield CounterMetricFamily(
            "ridgerider_nodes_completed",
            "Nodes completed by this process's workers.",
            value=pool.completed if pool else 0,
        )
        with self._lock:  # concurrent scrapes: one count at a time
            counts = service.archive.storage.branch_counts()
        queue = GaugeMetricFamily(
            "ridgerider_queue_branches",
            "Branches waiting to be ridden (all workers), by their job's status.",
            labels=("job_status",),
        )
        waiting = {"queued": 0, "running": 0}
        waiting |= {job: n for (job, status), n in counts.items() if status == "waiting"}
        for job_status, n in sorted(waiting.items()):
            queue.add_metric((job_status,), n)
        yield queue
        leased = sum(n for (_, status), n in counts.items() if status == "leased")
        yield _gauge("ridgerider_leases_held", "Branches leased now: rides in flight.", leased)
        feeds = service.feeds
        yield _gauge("ridgerider_sse_subscribers", "Event streams open now.", feeds.subscribers)
        yield _gauge("ridgerider_sse_pollers", "Job event pollers running now.", feeds.pollers)
        yield CounterMetricFamily(
            "ridgerider_sse_polls", "Archive reads by the job event pollers.", value=feeds.polls
        )
        yield CounterMetricFamily(
            "ridgerider_sse_dropped",
            "Event streams dropped for falling behind (told to reconnect).",
            value=feeds.dropped,
        )


def _gauge(name: str, text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, text, value=value)


class MetricsMiddleware:
    """Times every HTTP request and records it under its route template (not the raw path)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, noting its status and duration."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        t0 = time.perf_counter()

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            template = route_template(scope)
            self.metrics.observe(scope["method"], template, status, time.perf_counter() - t0)


def route_template(scope: Scope) -> str:
    """The full template of the route that served a request (``unmatched``: none did).

    FastAPI leaves the route as declared (``/jobs/{job_id}``) in the scope, without the
    prefixes of the routers including it; they are the raw path's leading segments, one
    segment per template segment after them (a template with a ``:path`` parameter, which
    may span segments, is taken as it is).
    """
    path = getattr(scope.get("route"), "path", None)
    if not path:
        return "unmatched"
    if ":path}" in path:
        return str(path)
    raw = scope["path"].strip("/").split("/")
    own = path.strip("/").split("/")
    prefix = raw[: max(len(raw) - len(own), 0)]
    return "/" + "/".join(prefix) + path if prefix else str(path)
