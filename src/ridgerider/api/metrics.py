"""Request metrics in the Prometheus text format (no global registry: one per app)."""

from __future__ import annotations

import bisect
import threading
import time
from collections import defaultdict

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BUCKETS", "Metrics", "MetricsMiddleware"]

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds (seconds) of the request-duration histogram."""


class Metrics:
    """Counters and a latency histogram per (method, route, status)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.buckets: dict[tuple[str, str], list[int]] = {}
        self.sums: dict[tuple[str, str], float] = defaultdict(float)
        self.counts: dict[tuple[str, str], int] = defaultdict(int)
        self.submitted = 0

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Record one request."""
        key = (method, route)
        with self._lock:
            self.requests[(method, route, status)] += 1
            counts = self.buckets.setdefault(key, [0] * (len(BUCKETS) + 1))
            counts[bisect.bisect_left(BUCKETS, seconds)] += 1
            self.sums[key] += seconds
            self.counts[key] += 1

    def job_submitted(self) -> None:
        """Count a newly stored job."""
        with self._lock:
            self.submitted += 1

    def render(self, gauges: dict[str, tuple[str, float]]) -> str:
        """Everything as Prometheus text; ``gauges``: name → (help, value)."""
        lines = [
            "# HELP ridgerider_http_requests_total HTTP requests by method, route and status.",
            "# TYPE ridgerider_http_requests_total counter",
        ]
        with self._lock:
            for (method, route, status), n in sorted(self.requests.items()):
                labels = f'method="{method}",route="{route}",status="{status}"'
                lines.append(f"ridgerider_http_requests_total{{{labels}}} {n}")
            lines += [
                "# HELP ridgerider_http_request_duration_seconds Time to answer a request.",
                "# TYPE ridgerider_http_request_duration_seconds histogram",
            ]
            for (method, route), counts in sorted(self.buckets.items()):
                base = f'method="{method}",route="{route}"'
                total = 0
                for bound, n in zip((*map(str, BUCKETS), "+Inf"), counts, strict=True):
                    total += n
                    lines.append(
                        f'ridgerider_http_request_duration_seconds_bucket{{{base},le="{bound}"}}'
                        f" {total}"
                    )
                key = (method, route)
                lines.append(
                    f"ridgerider_http_request_duration_seconds_sum{{{base}}} {self.sums[key]}"
                )
                lines.append(
                    f"ridgerider_http_request_duration_seconds_count{{{base}}} {self.counts[key]}"
                )
            gauges = {
                "ridgerider_jobs_submitted_total": ("Jobs stored by this process.", self.submitted),
                **gauges,
            }
        for name, (text, value) in gauges.items():
            kind = "counter" if name.endswith("_total") else "gauge"
            lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", f"{name} {value}"]
        return "\n".join(lines) + "\n"


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
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            self.metrics.observe(scope["method"], path, status, time.perf_counter() - t0)
