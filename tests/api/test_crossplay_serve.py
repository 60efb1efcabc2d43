"""``ridgerider serve`` stopped (SIGTERM, SIGKILL) in a cross-play: the next start finishes it.

The run was accepted (stored) before the kill; the restarted service resumes it from the start
and its report equals ``run_crossplay`` called directly with the same arguments.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest

from ridgerider.client import Client
from ridgerider.services.crossplay_runs import get_run
from ridgerider.services.storage.sql import SQLStorage

from .test_crossplay import GAME, direct, timeless
from .test_serve_e2e import Service, serving

pytestmark = pytest.mark.slow


def first_replicate_then(home: Path, service: Service, run_id: int, sig: int) -> dict[str, Any]:
    """Stop ``service`` with ``sig`` once the run has a replicate done; the stored row."""
    rr = Client(service.url, retries=8)
    try:
        deadline = time.monotonic() + 300
        while rr.crossplay_status(run_id).done < 1:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        code = service.stop(sig)
    assert code == -sig  # uvicorn raises a caught SIGTERM again once it has shut down
    if sig == signal.SIGTERM:  # a graceful stop: the lifespan (and the executor) finished
        assert "Application shutdown complete" in Path(service.log.name).read_text()
    storage = SQLStorage(f"sqlite:///{home / 'ridgerider' / 'archive.db'}")
    row = get_run(storage, run_id)
    storage.close()
    assert row is not None
    return row


def test_sigterm_and_sigkill_mid_crossplay_lose_nothing(tmp_path: Path) -> None:
    request = {"problem": GAME, "replicates": 4, "seed": 4}
    service = Service(tmp_path, "--dev", "--workers", "0")
    run = Client(service.url).crossplay(GAME, replicates=4, seed=4, wait=False)
    # SIGTERM: the run stops after its current replicate and stays for the next start.
    stopped = first_replicate_then(tmp_path, service, run.id, signal.SIGTERM)
    assert stopped["status"] == "running" and stopped["result"] is None
    # The next start resumes it from the start; SIGKILL it again after a replicate.
    again = Service(tmp_path, "--dev", "--workers", "0")
    killed = first_replicate_then(tmp_path, again, run.id, signal.SIGKILL)
    assert killed["status"] == "running" and killed["result"] is None

    with serving(tmp_path, "--dev", "--workers", "0") as last:
        rr = Client(last.url)
        assert [r.id for r in rr.crossplays().items] == [run.id]
        deadline = time.monotonic() + 600
        while not rr.crossplay_status(run.id).finished:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert timeless(rr.crossplay_result(run.id)) == direct(**request)
