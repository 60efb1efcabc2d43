"""``ridgerider serve`` killed (SIGKILL) in the middle of a cross-play: the next start finishes it.

The run was accepted (stored) before the kill; the restarted service resumes it from the start
and its report equals ``run_crossplay`` called directly with the same arguments.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from ridgerider.client import Client
from ridgerider.services.crossplay_runs import get_run
from ridgerider.services.storage.sql import SQLStorage

from .test_crossplay import GAME, direct, timeless
from .test_serve_e2e import Service, serving

pytestmark = pytest.mark.slow


def test_sigkill_mid_crossplay_loses_nothing(tmp_path: Path) -> None:
    request = {"problem": GAME, "replicates": 6, "seed": 4}
    service = Service(tmp_path, "--dev", "--workers", "0")
    rr = Client(service.url, retries=8)
    try:
        run = rr.crossplay(GAME, replicates=6, seed=4, wait=False)
        deadline = time.monotonic() + 300
        while rr.crossplay_status(run.id).done < 1:  # killed after its first replicate
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        assert service.stop(signal.SIGKILL) == -signal.SIGKILL
    storage = SQLStorage(f"sqlite:///{tmp_path / 'ridgerider' / 'archive.db'}")
    killed = get_run(storage, run.id)
    storage.close()
    assert killed is not None and killed["status"] == "running" and killed["result"] is None

    with serving(tmp_path, "--dev", "--workers", "0") as again:
        rr = Client(again.url)
        assert [r.id for r in rr.crossplays().items] == [run.id]
        deadline = time.monotonic() + 600
        while not rr.crossplay_status(run.id).finished:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert timeless(rr.crossplay_result(run.id)) == direct(**request)
