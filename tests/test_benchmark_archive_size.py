"""``benchmarks/archive_size.py`` runs end to end on a tiny tree (SQLite, the current code)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _row(tmp_path: Path, *args: str) -> dict[str, Any]:
    """Run the benchmark on tree-rl and SQLite; its one row."""
    script = ROOT / "benchmarks" / "archive_size.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--cases", "tree-rl", "--databases", "sqlite", *args,
         "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    (row,) = json.loads((tmp_path / "archive_size.json").read_text())["rows"]
    return row


def test_archive_size_measures_a_compacted_job(tmp_path: Path) -> None:
    row = _row(tmp_path, "--nodes", "12", "--depth", "6")
    assert (row["case"], row["database"], row["code"]) == ("tree-rl", "sqlite", "now")
    assert row["nodes"] == 12 and row["status"] == "succeeded"
    assert row["bytes_per_node"] == round(row["bytes"] / 12) and row["vacuumed_bytes"] > 0
    cols = row["columns"]
    assert cols["done"]["rows"] == 12 and cols["done"]["theta"] == 12 * row["theta_bytes"]
    waiting = cols["waiting"]
    assert waiting["rows"] > 0 and waiting["branch"] / waiting["rows"] < 400  # headers only


def test_archive_size_runs_several_jobs_on_one_database(tmp_path: Path) -> None:
    row = _row(tmp_path, "--nodes", "6", "--depth", "4", "--jobs", "2")
    assert row["jobs"] == 2 and row["nodes"] == 12  # per node of both jobs
    assert row["columns"]["done"]["rows"] == 12
    first, second = row["bytes_after_each_job"]
    assert 0 < first < second == row["bytes"]
