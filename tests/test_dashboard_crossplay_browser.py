"""The cross-play page ``/crossplay/{id}`` in headless Chromium: progress, then the report's figure.

A real run goes through the API (``POST /api/v1/crossplay``); the page's heatmap, bars and
summary are compared with the report the API answers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason=f"{CHROMIUM} is absent (apt-get install -y chromium chromium-driver)",
    ),
]

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

from dashboard.browser import (  # noqa: E402
    Server,
    api,
    browser,
    db_url,
    dev_server,
    page,
    shot,
)

__all__ = ["api", "browser", "db_url", "dev_server", "page"]  # fixtures


def test_crossplay_page_draws_the_report(
    page: Any, dev_server: Server, api: Any, tmp_path: Path
) -> None:
    body = {"problem": "lever-game", "replicates": 2, "fingerprints": 2, "seed": 1}
    r = api.post("/crossplay", json=body)
    assert r.status_code == 201, r.text
    run_id = r.json()["id"]
    page.goto(f"{dev_server.url}/crossplay/{run_id}")
    page.wait_for_selector("#crossplay-view:not([hidden])")
    page.wait_for_selector("#xp-run:not([hidden])", timeout=300_000)
    report = api.get(f"/crossplay/{run_id}/result").json()
    labels, values = report["matrix"]["labels"], report["matrix"]["values"]
    assert page.text_content("#xp-status") == "succeeded"
    assert page.text_content("#xp-progress").startswith("2 of 2 replicates")
    cells = page.eval_on_selector_all(
        "#xp-run .xp-heatmap rect.cell",
        "els => els.map(e => [+e.dataset.row, +e.dataset.col, e.textContent])",
    )
    assert len(cells) == len(labels) ** 2
    for i, j, title in cells:
        assert title.startswith(f"{labels[i]} × {labels[j]}: ")
        assert float(title.split(": ")[1]) == pytest.approx(values[i][j], abs=1e-3)
    bars = page.eval_on_selector_all(
        "#xp-run .xp-bars rect.bar", "els => els.map(e => e.textContent)"
    )
    assert [b.split(":")[0] for b in bars] == [f["fingerprint"] for f in report["fingerprints"]]
    assert f"Chosen fingerprint {report['chosen']['fingerprint']}:" in page.text_content(
        "#xp-chosen"
    )
    shot(page, tmp_path, "dashboard-crossplay-run", "#crossplay-view")
    page.goto(f"{dev_server.url}/crossplay/{run_id + 1000}")
    page.wait_for_selector("#error:not([hidden])")
    assert page.text_content("#error") == "Not found."
