"""When the SDK sends a request again: exponential backoff with jitter, ``Retry-After`` honoured.

A connection error or a ``503 Service Unavailable`` is retried for calls safe to send twice
(``Call.retry``: reads, and submissions made idempotent by their key). A ``429 Too Many
Requests`` is retried for every call (the server did not act on it), but only when it says when
(``Retry-After``): a 429 without one is a quota (e.g. too many cross-play runs queued) that
waiting seconds does not lift, so it is raised at once. The wait is the response's
``Retry-After`` (seconds or an HTTP date) when it has one, capped at
:attr:`Backoff.max_retry_after_s`; otherwise a random time up to ``base_s * 2**attempt``, capped
at :attr:`Backoff.cap_s` ("full jitter", so clients that failed together do not retry together).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

import httpx

from ridgerider.client._base import Call

__all__ = [
    "DEFAULT_URL",
    "RETRY_STATUSES",
    "SDK_VARIABLES",
    "Backoff",
    "env_connection",
    "parse_retry_after",
]

DEFAULT_URL = "http://127.0.0.1:8000"
"""Where ``ridgerider serve`` listens by default (and ``from_env`` looks without a URL)."""

RETRY_STATUSES = (429, 503)

SDK_VARIABLES = ("RIDGERIDER_URL", "RIDGERIDER_TOKEN")
"""What ``from_env`` reads: the SDK's own variables, not settings of the service."""


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or an HTTP date).

    ``now``: the current Unix time, for a date. ``None`` for a missing or unreadable value; a
    date in the past is 0.
    """
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - now)


@dataclass
class Backoff:
    """The retry policy of a client: how often, and how long to wait before each new attempt."""

    retries: int = 3
    """Attempts after the first."""
    base_s: float = 0.25
    cap_s: float = 5.0
    max_retry_after_s: float = 60.0
    """The longest a ``Retry-After`` is honoured for."""
    rng: random.Random = field(default_factory=random.Random)
    clock: Callable[[], float] = time.time

    def jittered(self, attempt: int) -> float:
        """A random wait in ``[0, min(cap_s, base_s * 2**attempt)]``."""
        return self.rng.uniform(0.0, min(self.cap_s, self.base_s * 2**attempt))

    def after_error(self, call: Call, attempt: int) -> float | None:
        """The wait before attempt ``attempt + 1`` after a connection error; ``None``: give up."""
        if not call.retry or attempt > self.retries:
            return None
        return self.jittered(attempt)

    def after_response(self, call: Call, response: httpx.Response, attempt: int) -> float | None:
        """The wait before sending ``call`` again after ``response``; ``None``: use it."""
        status = response.status_code
        if status not in RETRY_STATUSES or attempt > self.retries:
            return None
        if status == 503 and not call.retry:
            return None
        hinted = parse_retry_after(response.headers.get("Retry-After"), self.clock())
        if hinted is None:
            return None if status == 429 else self.jittered(attempt)
        return min(hinted, self.max_retry_after_s)


def env_connection() -> tuple[str, str | None]:
    """``RIDGERIDER_URL`` (default :data:`DEFAULT_URL`) and ``RIDGERIDER_TOKEN`` (or ``None``)."""
    url_variable, token_variable = SDK_VARIABLES
    url = os.environ.get(url_variable, "").strip() or DEFAULT_URL
    token = os.environ.get(token_variable, "").strip() or None
    return url, token
