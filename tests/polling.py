"""Waiting in tests for something another process or thread does."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(
    predicate: Callable[[], bool], timeout: float, what: str, poll_s: float = 0.05
) -> None:
    """Poll ``predicate`` every ``poll_s`` until true (fail, naming ``what``, after ``timeout``)."""
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(poll_s)
